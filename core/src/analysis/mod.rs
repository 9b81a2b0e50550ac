//! Representation analyses (Kornblith et al. 2021, sections 3.2–3.4 and Appendices C–F), each
//! running on a burn device through [`Compute`](crate::compute::Compute).

pub mod agreement;
pub mod angles;
pub mod cka;
pub mod classes;
pub mod collapse;
mod eigen;
pub mod minibatch_cka;
pub(crate) mod products;
pub mod separation;
pub mod sparsity;
pub mod spectrum;
pub mod stats;
pub mod streaming;

pub use angles::{Histogram, angular_visual_hardness, cosine_distance_histograms};
pub use cka::{CkaConfig, CkaEstimator, CkaForm, CkaResult, linear_cka};
pub use classes::Classes;
pub use collapse::{Collapse, SimplexGeometry, neural_collapse};
pub use minibatch_cka::{CkaMatrix, MinibatchCkaConfig, minibatch_cka};
pub use separation::{Distance, Separation, class_separation};
pub use sparsity::fraction_nonzero;
pub use spectrum::{Spectra, Spectrum, singular_values, spectra};
pub use stats::{MeanSd, Spearman, TTest, mean_sd, spearman, ties_with_best, welch_t_test};
pub use streaming::StreamingSeparation;
