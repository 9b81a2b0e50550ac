//! Activation sparsity: the fraction of activations that are not exactly zero
//! (Kornblith et al. 2021, section 3.2 and Fig. 3: after each block's residual add and ReLU, and
//! in the penultimate layer).

use crate::compute::Compute;
use crate::error::Result;
use crate::features::Layer;

/// Elements uploaded per step, bounding device memory for wide convolutional layers.
const CHUNK_ELEMENTS: usize = 1 << 24;

/// Fraction of the layer's activations (all examples, all features) that are non-zero, in
/// `[0, 1]`.
pub async fn fraction_nonzero(compute: &Compute, layer: &Layer) -> Result<f64> {
    let rows_per_chunk = (CHUNK_ELEMENTS / layer.cols.max(1)).max(1);
    let mut nonzero = 0.0f64;
    let mut start = 0;
    while start < layer.rows {
        let end = (start + rows_per_chunk).min(layer.rows);
        let x = compute.upload_rows(layer, start, end); // [end - start, P]
        nonzero += compute.scalar(x.not_equal_elem(0.0).float().sum()).await?;
        start = end;
    }
    Ok(nonzero / (layer.rows * layer.cols) as f64)
}
