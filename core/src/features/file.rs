//! A feature file: named activation arrays (one per tapped layer), optional `labels`, and
//! optional JSON metadata, read from `.npy`, `.npz` or `.safetensors` and written as `.npz` or
//! `.safetensors`.

use std::path::{Path, PathBuf};

use super::array::{Array, ArrayData};
use super::layer::Layer;
use super::npy::{npy_bytes, npy_bytes_u8, parse_npy};
use super::npz::{npz_bytes, parse_npz};
use super::safetensors::{parse_safetensors, safetensors_bytes};
use crate::error::{Error, Result};

/// Name of the labels array.
pub const LABELS: &str = "labels";
/// Name of the metadata member of an `.npz` (UTF-8 JSON stored as a `uint8` array).
pub const METADATA: &str = "__metadata__";
/// Name under which final-layer (classifier) weights may be stored, shape `[classes, features]`.
pub const WEIGHTS: &str = "weights";
/// Name of the classifier bias, shape `[classes]`.
pub const BIAS: &str = "bias";

/// Container formats losslens reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One NumPy array (`.npy`, read only).
    Npy,
    /// A NumPy archive of named arrays (`.npz`).
    Npz,
    /// A safetensors file (`.safetensors`).
    Safetensors,
}

impl Format {
    /// The format a file name implies.
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("npy") => Ok(Format::Npy),
            Some("npz") => Ok(Format::Npz),
            Some("safetensors" | "st") => Ok(Format::Safetensors),
            _ => Err(Error::format(
                path,
                "unknown file type: expected .npy, .npz or .safetensors",
            )),
        }
    }
}

/// Named arrays from one file, in file order.
#[derive(Debug, Clone)]
pub struct FeatureFile {
    /// Where the arrays came from (labels errors).
    pub path: PathBuf,
    /// The arrays, in file order (`.npz` member order, safetensors data order).
    pub arrays: Vec<(String, Array)>,
    /// JSON metadata written by losslens (model, objective, seed, dataset, split, ...).
    pub metadata: Option<serde_json::Value>,
}

impl FeatureFile {
    /// Reads a feature file from disk; the extension picks the format.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let format = Format::from_path(path)?;
        let bytes = crate::input::read_file(path)?;
        Self::from_bytes(path, format, &bytes)
    }

    /// Decodes a feature file held in memory (the browser's uploads). `path` labels errors.
    pub fn from_bytes(path: impl Into<PathBuf>, format: Format, bytes: &[u8]) -> Result<Self> {
        let path = path.into();
        let (mut arrays, metadata_text) = match format {
            Format::Npy => {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("features")
                    .to_string();
                (vec![(stem.clone(), parse_npy(bytes, &path, &stem)?)], None)
            }
            Format::Npz => {
                let mut arrays = parse_npz(bytes, &path)?;
                let meta = arrays
                    .iter()
                    .position(|(n, _)| n == METADATA)
                    .map(|i| arrays.remove(i).1);
                let text = match meta {
                    Some(Array {
                        data: ArrayData::I64(bytes),
                        ..
                    }) => Some(
                        String::from_utf8(bytes.iter().map(|&b| b as u8).collect())
                            .map_err(|_| Error::format(&path, "`__metadata__` is not UTF-8 JSON"))?,
                    ),
                    Some(_) => {
                        return Err(Error::format(
                            &path,
                            "`__metadata__` must be a uint8 array of UTF-8 JSON",
                        ));
                    }
                    None => None,
                };
                (arrays, text)
            }
            Format::Safetensors => parse_safetensors(bytes, &path)?,
        };
        let metadata = match metadata_text {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| Error::format(&path, format!("metadata is not valid JSON: {e}")))?,
            ),
            None => None,
        };
        arrays.retain(|(name, _)| name != METADATA);
        Ok(Self { path, arrays, metadata })
    }

    /// A file from layers, labels and metadata, ready to [`save`](Self::save).
    pub fn new(path: impl Into<PathBuf>, arrays: Vec<(String, Array)>, metadata: Option<serde_json::Value>) -> Self {
        Self {
            path: path.into(),
            arrays,
            metadata,
        }
    }

    /// Encodes the file in `format` (`.npz` or `.safetensors`).
    pub fn to_bytes(&self, format: Format) -> Result<Vec<u8>> {
        let metadata = self.metadata.as_ref().map(|m| m.to_string());
        match format {
            Format::Npz => {
                let mut members: Vec<(String, Vec<u8>)> = self
                    .arrays
                    .iter()
                    .map(|(name, a)| (name.clone(), npy_bytes(a)))
                    .collect();
                if let Some(text) = &metadata {
                    members.push((METADATA.to_string(), npy_bytes_u8(text.as_bytes())));
                }
                npz_bytes(&members)
            }
            Format::Safetensors => safetensors_bytes(&self.arrays, metadata.as_deref()),
            Format::Npy => Err(Error::format(
                &self.path,
                "losslens writes .npz or .safetensors, not .npy",
            )),
        }
    }

    /// Writes the file to `path` atomically (a temporary file renamed into place), in the format
    /// its extension names.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes(Format::from_path(path)?)?;
        crate::atomic::write(path, &bytes)
    }

    /// Names of the feature arrays: floating-point arrays of rank ≥ 2 other than the reserved
    /// `labels`, `weights` and `bias`.
    pub fn layer_names(&self) -> Vec<String> {
        self.arrays
            .iter()
            .filter(|(name, a)| {
                a.data.is_float() && a.shape.len() >= 2 && ![LABELS, WEIGHTS, BIAS].contains(&name.as_str())
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The array called `name`, if present.
    pub fn array(&self, name: &str) -> Option<&Array> {
        self.arrays.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// The name of the feature array `name` selects: `name` itself, or the only feature array.
    fn resolve_layer(&self, name: Option<&str>) -> Result<String> {
        let available = self.layer_names();
        match name {
            Some(name) if self.array(name).is_some() => Ok(name.to_string()),
            Some(name) => Err(Error::MissingArray {
                path: self.path.clone(),
                name: name.to_string(),
                available,
            }),
            None => match available.as_slice() {
                [only] => Ok(only.clone()),
                [] => Err(self.no_feature_array()),
                _ => Err(Error::AmbiguousLayer {
                    path: self.path.clone(),
                    available,
                }),
            },
        }
    }

    /// Why a file holds no feature array: an array that would be the features but has fewer
    /// than two dimensions, or nothing that could be.
    fn no_feature_array(&self) -> Error {
        let reserved = |name: &str| [LABELS, WEIGHTS, BIAS].contains(&name);
        match self.arrays.iter().find(|(n, a)| a.shape.len() < 2 && !reserved(n)) {
            Some((name, array)) => Error::Shape {
                path: self.path.clone(),
                array: name.clone(),
                shape: array.shape.clone(),
                expected: "features need a 2-D or larger array: [examples, features] or [examples, C, H, W]".into(),
            },
            None => Error::NoFeatureArray {
                path: self.path.clone(),
                available: self.arrays.iter().map(|(n, a)| format!("{n} {:?}", a.shape)).collect(),
            },
        }
    }

    /// One layer as an `[examples, features]` matrix: `name`, or the only feature array when
    /// `name` is `None`. 4-D activations `[N, C, H, W]` are flattened per example. Copies the
    /// elements; [`take_layer`](Self::take_layer) moves them.
    pub fn layer(&self, name: Option<&str>) -> Result<Layer> {
        let name = self.resolve_layer(name)?;
        let array = self.array(&name).expect("resolved").clone();
        Layer::from_array(&self.path, &name, array)
    }

    /// Like [`layer`](Self::layer), but moves the array out of the file (no copy of large
    /// activations).
    pub fn take_layer(&mut self, name: Option<&str>) -> Result<Layer> {
        let name = self.resolve_layer(name)?;
        let index = self.arrays.iter().position(|(n, _)| *n == name).expect("resolved");
        let (_, array) = self.arrays.remove(index);
        Layer::from_array(&self.path, &name, array)
    }

    /// Every feature array, in file order; an error when there is none.
    pub fn layers(&self) -> Result<Vec<Layer>> {
        let names = self.layer_names();
        if names.is_empty() {
            return Err(self.no_feature_array());
        }
        names.iter().map(|n| self.layer(Some(n))).collect()
    }

    /// Every feature array, in file order, moved out of the file; an error when there is none.
    pub fn take_layers(&mut self) -> Result<Vec<Layer>> {
        let names = self.layer_names();
        if names.is_empty() {
            return Err(self.no_feature_array());
        }
        names.iter().map(|n| self.take_layer(Some(n))).collect()
    }

    /// The integer class labels, checked to be non-negative.
    pub fn labels(&self) -> Result<Vec<usize>> {
        let array = self.array(LABELS).ok_or_else(|| {
            Error::format(
                &self.path,
                "no `labels` array: this analysis needs one class label per example",
            )
        })?;
        labels_from_array(&self.path, LABELS, array)
    }

    /// Classifier weights `[classes, features]` stored under `name`.
    pub fn weights(&self, name: &str) -> Result<Layer> {
        let array = self.array(name).ok_or_else(|| Error::MissingArray {
            path: self.path.clone(),
            name: name.to_string(),
            available: self.arrays.iter().map(|(n, _)| n.clone()).collect(),
        })?;
        Layer::from_array(&self.path, name, array.clone())
    }
}

/// Labels from an integer array (or a float array holding whole numbers).
pub fn labels_from_array(path: &Path, name: &str, array: &Array) -> Result<Vec<usize>> {
    if array.shape.len() != 1 {
        return Err(Error::Shape {
            path: path.to_path_buf(),
            array: name.to_string(),
            shape: array.shape.clone(),
            expected: "labels must be one integer per example (1-D)".into(),
        });
    }
    let values: Vec<f64> = match &array.data {
        ArrayData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        ArrayData::F32(v) => v.iter().map(|&x| x as f64).collect(),
        ArrayData::F64(v) => v.clone(),
    };
    values
        .iter()
        .enumerate()
        .map(|(index, &v)| {
            if !v.is_finite() || v.fract() != 0.0 {
                Err(Error::format(
                    path,
                    format!("label {v} of example {index} is not an integer class index"),
                ))
            } else if v < 0.0 {
                Err(Error::format(
                    path,
                    format!("label {v} of example {index} is out of range: class labels are non-negative integers"),
                ))
            } else {
                Ok(v as usize)
            }
        })
        .collect()
}
