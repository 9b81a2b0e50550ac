//! The decoded-image cache: a dataset decoded once (JPEG/PNG, CIFAR records, IDX) is kept as one
//! safetensors file of `uint8` pixels `[count, height, width, channels]` and `int64` labels, with a
//! JSON manifest in its metadata, so later runs and epochs never decode images again.

use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::data::images::ImageSet;
use crate::error::{Error, Result};

/// Version of the cache layout; a cache of another version is rebuilt.
pub const CACHE_VERSION: u32 = 1;

const MANIFEST_KEY: &str = "losslens_dataset";

/// What a cache holds and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`CACHE_VERSION`] when written.
    pub version: u32,
    /// The dataset it was decoded from (path or generator).
    pub source: String,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Number of images.
    pub count: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels.
    pub channels: usize,
    /// Files that could not be decoded and were left out, with the reason.
    pub skipped: Vec<String>,
    /// A fingerprint of the source (file names, sizes and modification times, or the generator's
    /// settings); a cache whose fingerprint differs from the source's is rebuilt.
    pub fingerprint: String,
}

/// Encodes a set and its manifest as safetensors bytes.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn encode(set: &ImageSet, manifest: &Manifest) -> Result<Vec<u8>> {
    let labels: Vec<u8> = set.labels.iter().flat_map(|&l| (l as i64).to_le_bytes()).collect();
    let bad = |e: safetensors::SafeTensorError| Error::format("<cache>", format!("cannot encode the cache: {e}"));
    let images = TensorView::new(
        Dtype::U8,
        vec![set.len(), set.height, set.width, set.channels],
        &set.pixels,
    )
    .map_err(bad)?;
    let labels_view = TensorView::new(Dtype::I64, vec![set.len()], &labels).map_err(bad)?;
    let info = Some(
        [(
            MANIFEST_KEY.to_string(),
            serde_json::to_string(manifest).expect("manifest serialises"),
        )]
        .into_iter()
        .collect(),
    );
    safetensors::serialize([("images", images), ("labels", labels_view)], info).map_err(bad)
}

/// Decodes a cache; `path` is only for messages.
pub fn decode(bytes: &[u8], path: &Path) -> Result<(ImageSet, Manifest)> {
    let bad = |reason: String| Error::Format {
        path: path.into(),
        reason,
    };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a dataset cache: {e}")))?;
    let manifest: Manifest = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(MANIFEST_KEY))
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| bad("no losslens dataset manifest".into()))?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("corrupt dataset cache: {e}")))?;
    let images = tensors.tensor("images").map_err(|e| bad(e.to_string()))?;
    let labels = tensors.tensor("labels").map_err(|e| bad(e.to_string()))?;
    let expected = [manifest.count, manifest.height, manifest.width, manifest.channels];
    if images.dtype() != Dtype::U8
        || images.shape() != expected
        || labels.dtype() != Dtype::I64
        || labels.shape() != [manifest.count]
    {
        return Err(bad(format!(
            "cache arrays {:?} {:?} / {:?} {:?} do not match the manifest {expected:?}",
            images.dtype(),
            images.shape(),
            labels.dtype(),
            labels.shape()
        )));
    }
    let labels: Vec<usize> = labels
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")).max(0) as usize)
        .collect();
    let set = ImageSet {
        height: manifest.height,
        width: manifest.width,
        channels: manifest.channels,
        pixels: images.data().to_vec(),
        labels,
        classes: manifest.classes.clone(),
        source: manifest.source.clone(),
    };
    set.validate()?;
    Ok((set, manifest))
}

/// Writes a cache atomically (a killed write never leaves a partial cache behind).
#[cfg(not(target_arch = "wasm32"))]
pub fn save(path: &Path, set: &ImageSet, manifest: &Manifest) -> Result<()> {
    crate::atomic::write(path, &encode(set, manifest)?)
}

/// Reads a cache.
#[cfg(not(target_arch = "wasm32"))]
pub fn load(path: &Path) -> Result<(ImageSet, Manifest)> {
    let bytes = crate::input::read_file(path)?;
    decode(&bytes, path)
}

/// The manifest of a freshly decoded set.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn manifest_for(set: &ImageSet, skipped: Vec<String>, fingerprint: String) -> Manifest {
    Manifest {
        version: CACHE_VERSION,
        source: set.source.clone(),
        classes: set.classes.clone(),
        count: set.len(),
        height: set.height,
        width: set.width,
        channels: set.channels,
        skipped,
        fingerprint,
    }
}
