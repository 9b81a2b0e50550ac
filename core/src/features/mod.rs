//! Feature files: what users bring (`.npy`, `.npz`, safetensors) and what losslens writes.

mod array;
mod file;
mod layer;
mod npy;
mod npz;
mod safetensors;

pub use array::{Array, ArrayData, NamedArrays};
pub use file::{BIAS, FeatureFile, Format, LABELS, METADATA, WEIGHTS, labels_from_array};
pub use layer::{FloatData, Layer};
pub use npy::{npy_bytes, parse_npy};
pub use npz::{npz_bytes, parse_npz};
pub use safetensors::{parse_safetensors, safetensors_bytes};
