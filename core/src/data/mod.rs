//! Datasets in the formats users have.
//!
//! - [`idx`]: IDX files (MNIST, Fashion-MNIST).

pub mod idx;
