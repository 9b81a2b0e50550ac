//! # losslens-core
//!
//! The library behind losslens, an instrument for one question: how does the training objective
//! of an image classifier shape its features, and why do objectives that raise accuracy give
//! features that transfer worse (Kornblith, Chen, Lee & Norouzi, NeurIPS 2021)?
//!
//! - [`features`]: feature files users bring (`.npy`, `.npz`, safetensors) and that losslens
//!   writes;
//! - [`analysis`]: CKA (full and minibatch), class separation R², activation sparsity,
//!   neural-collapse geometry, singular value spectra and the statistics of the study tables;
//! - [`probe`]: transfer probes on fixed features (linear, kNN) and their metrics;
//! - [`data`]: datasets in their standard formats, decoded into one in-memory image set, and the
//!   augmentation applied on the device;
//! - [`objective`]: the nine training objectives of the paper;
//! - [`model`]: ResNet v1.5 (18/34/50), Inception v3 and a small network, with taps on every block;
//! - [`inference`]: running a trained network over a dataset in batches (features, outputs);
//! - [`train`]: the paper's training recipe, its resumable run folder (native, `train` feature);
//! - [`study`]: the whole comparison (train, measure, fine-tune every objective × seed), its
//!   versioned `results.json`, its tables and figures;
//! - [`figure`]: the SVG charts of reports and the explorer;
//! - [`compute`]: the burn device (CPU `flex`, wgpu on GPUs, WebGPU in the browser) and the
//!   precision analyses run in;
//! - [`device`]: choosing that device;
//! - [`error`]: every error as data;
//! - [`atomic`]: files written atomically (native); `input`: untrusted files read with bounds;
//! - [`rng`]: the seeded random streams behind every shuffle and sample.
//!
//! Every analysis reads tensors back asynchronously, so the same code serves the command line
//! (which blocks on it) and the browser.

pub mod analysis;
#[cfg(not(target_arch = "wasm32"))]
pub mod atomic;
pub mod compute;
pub mod data;
pub mod device;
pub mod error;
pub mod features;
pub mod figure;
#[cfg(not(target_arch = "wasm32"))]
pub mod inference;
mod input;
pub mod model;
pub mod objective;
pub mod probe;
pub mod rng;
pub mod study;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub mod train;

pub use compute::{Compute, NoPause, Pacer, Precision};
pub use error::{Error, Result};
