//! Datasets in the formats users have, decoded once into a cache of `uint8` images.
//!
//! - [`cifar`]: CIFAR-10/100 binary batches;
//! - [`folder`]: ImageFolder trees of JPEG/PNG images (native only);
//! - [`idx`]: IDX files (MNIST, Fashion-MNIST);
//! - [`label_file`]: multi-label datasets, images listed in a CSV label file (native only);
//! - [`procedural`]: a generated dataset that needs no download;
//! - [`images`]: the in-memory [`ImageSet`] they all produce;
//! - [`cache`]: the decoded-image cache file;
//! - [`source`]: where a dataset lives and its format (native only);
//! - [`augment`]: batched augmentation, evaluation crops and normalisation on the device;
//! - [`corrupt`]: ImageNet-C's common corruptions at five severities (native only);
//! - [`autoaugment`]: AutoAugment's policies and image operations;
//! - [`mixup`]: Mixup of training batches and their targets.

pub mod augment;
pub mod autoaugment;
pub mod cache;
pub mod cifar;
#[cfg(not(target_arch = "wasm32"))]
pub mod corrupt;
#[cfg(not(target_arch = "wasm32"))]
pub mod folder;
pub mod idx;
pub mod images;
#[cfg(not(target_arch = "wasm32"))]
pub mod label_file;
pub mod mixup;
pub mod procedural;
#[cfg(not(target_arch = "wasm32"))]
pub mod source;

pub use cifar::Split;
pub use images::ImageSet;
pub use procedural::{ProceduralConfig, procedural};
#[cfg(not(target_arch = "wasm32"))]
pub use source::DatasetSource;
