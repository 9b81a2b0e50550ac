//! A feature file read in the browser: decoded, checked, and split into layers and labels.

use std::path::{Path, PathBuf};

use losslens_core::features::{FeatureFile, Format, Layer};

/// A decoded feature file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file name.
    pub name: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// Its feature layers, in file order (each checked: rank ≥ 2, non-empty, finite).
    pub layers: Vec<Layer>,
    /// Its class labels, if it has a valid `labels` array.
    pub labels: Option<Vec<usize>>,
    /// Why there are no labels (shown where an analysis needs them).
    pub labels_error: Option<String>,
}

impl Loaded {
    /// Decodes `bytes` named `name`; the extension picks the format (`.npy`, `.npz`,
    /// `.safetensors`).
    ///
    /// # Errors
    /// A message naming the file and what is wrong: unknown extension, truncated or corrupt
    /// file, no floating-point array of rank ≥ 2, non-finite values, labels whose count does
    /// not match the layers.
    pub fn decode(name: &str, bytes: &[u8]) -> Result<Self, String> {
        let path = PathBuf::from(name);
        let format = Format::from_path(Path::new(name)).map_err(|e| e.to_string())?;
        let mut file = FeatureFile::from_bytes(path, format, bytes).map_err(|e| e.to_string())?;
        let (labels, labels_error) = match file.labels() {
            Ok(labels) => (Some(labels), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let layers = file.take_layers().map_err(|e| e.to_string())?;
        if let Some(labels) = &labels
            && let Some(bad) = layers.iter().find(|l| l.rows != labels.len())
        {
            return Err(format!(
                "{name}: layer {} has {} rows but there are {} labels",
                bad.name,
                bad.rows,
                labels.len()
            ));
        }
        Ok(Self {
            name: name.to_string(),
            bytes: bytes.len(),
            layers,
            labels,
            labels_error,
        })
    }

    /// The layer called `name`, or the first.
    pub fn layer(&self, name: Option<&str>) -> &Layer {
        name.and_then(|n| self.layers.iter().find(|l| l.name == n))
            .unwrap_or(&self.layers[0])
    }

    /// The labels, or the reason there are none.
    pub fn labels(&self) -> Result<&[usize], String> {
        self.labels.as_deref().ok_or_else(|| {
            self.labels_error
                .clone()
                .unwrap_or_else(|| format!("{} has no labels", self.name))
        })
    }

    /// One line about the file: `feats.npz: 5 layers, 2,000 examples, labels (10 classes)`.
    pub fn summary(&self) -> String {
        let labels = match &self.labels {
            Some(l) => format!("labels ({} classes)", l.iter().max().map_or(0, |m| m.saturating_add(1))),
            None => "no labels".into(),
        };
        format!(
            "{}: {} layer{}, {} examples, {}",
            self.name,
            self.layers.len(),
            if self.layers.len() == 1 { "" } else { "s" },
            self.layers[0].rows,
            labels
        )
    }
}
