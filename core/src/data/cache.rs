//! The decoded-image cache: a dataset decoded once (JPEG/PNG, CIFAR records, IDX) is kept as one
//! safetensors file of `uint8` pixels (image after image, each `[height, width, channels]`), the
//! `int64` `[height, width]` of each image and `int64` labels, with a JSON manifest in its
//! metadata, so later runs and epochs never decode images again.

use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::data::images::ImageSet;
use crate::error::{Error, Result};

/// Version of the cache layout; a cache of another version is rebuilt. Version 2 keeps each
/// image's own size (version 1 held centre squares).
pub const CACHE_VERSION: u32 = 2;

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
    /// Pixel values of all images together.
    pub values: usize,
    /// The shortest side of any image (the stored size of an ImageFolder cache).
    pub shorter_side: usize,
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
    let sizes: Vec<u8> = set
        .sizes()
        .iter()
        .flatten()
        .flat_map(|&v| (v as i64).to_le_bytes())
        .collect();
    let bad = |e: safetensors::SafeTensorError| Error::format("<cache>", format!("cannot encode the cache: {e}"));
    let images = TensorView::new(Dtype::U8, vec![set.pixels.len()], &set.pixels).map_err(bad)?;
    let sizes_view = TensorView::new(Dtype::I64, vec![set.len(), 2], &sizes).map_err(bad)?;
    let labels_view = TensorView::new(Dtype::I64, vec![set.len()], &labels).map_err(bad)?;
    let info = Some(
        [(
            MANIFEST_KEY.to_string(),
            serde_json::to_string(manifest).expect("manifest serialises"),
        )]
        .into_iter()
        .collect(),
    );
    safetensors::serialize(
        [("images", images), ("sizes", sizes_view), ("labels", labels_view)],
        info,
    )
    .map_err(bad)
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
    let sizes = tensors.tensor("sizes").map_err(|e| bad(e.to_string()))?;
    let labels = tensors.tensor("labels").map_err(|e| bad(e.to_string()))?;
    if images.dtype() != Dtype::U8
        || images.shape() != [manifest.values]
        || sizes.dtype() != Dtype::I64
        || sizes.shape() != [manifest.count, 2]
        || labels.dtype() != Dtype::I64
        || labels.shape() != [manifest.count]
    {
        return Err(bad(format!(
            "cache arrays {:?} {:?} / {:?} {:?} / {:?} {:?} do not match the manifest ({} images, {} values)",
            images.dtype(),
            images.shape(),
            sizes.dtype(),
            sizes.shape(),
            labels.dtype(),
            labels.shape(),
            manifest.count,
            manifest.values
        )));
    }
    let integers = |bytes: &[u8]| -> Vec<usize> {
        bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")).max(0) as usize)
            .collect()
    };
    let sizes: Vec<[usize; 2]> = integers(sizes.data()).chunks_exact(2).map(|s| [s[0], s[1]]).collect();
    let set = ImageSet::new(
        sizes,
        manifest.channels,
        images.data().to_vec(),
        integers(labels.data()),
        manifest.classes.clone(),
        manifest.source.clone(),
    );
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
        values: set.pixels.len(),
        shorter_side: set.shorter_side(),
        channels: set.channels,
        skipped,
        fingerprint,
    }
}
