//! Activation sparsity: the fraction of activations that are not exactly zero
//! (Kornblith et al. 2021, section 3.2 and Fig. 3: after each block's residual add and ReLU, and
//! in the penultimate layer).

use crate::compute::Compute;
use crate::error::Result;
use crate::features::Layer;

/// Largest count an `f32` sum holds exactly.
const EXACT_F32_COUNT: usize = 1 << 24;

/// Fraction of the layer's activations (all examples, all features) that are non-zero, in
/// `[0, 1]`.
pub async fn fraction_nonzero(compute: &Compute, layer: &Layer) -> Result<f64> {
    // Counts are summed in f32 on the device: chunks stay below 2²⁴ elements to keep them exact.
    let chunked = compute
        .clone()
        .with_chunk_elements(compute.chunk_elements.min(EXACT_F32_COUNT));
    let mut nonzero = 0.0f64;
    for rows in chunked.row_chunks(layer.rows, layer.cols) {
        let x = compute.upload_rows(layer, rows.start, rows.end); // [n_c, P]
        nonzero += compute.scalar(x.not_equal_elem(0.0).float().sum()).await?;
    }
    Ok(nonzero / (layer.rows * layer.cols) as f64)
}
