//! The dense matrix products the analyses are made of (CKA's cross-products and Gram matrices,
//! minibatch CKA's per-batch Gram matrices, the kNN probe's similarities).
//!
//! On a GPU they are burn's `matmul`. On the CPU device they run through faer's matrix kernels
//! (runtime-dispatched AVX-512/AVX2/NEON micro-kernels, on every core through rayon), which reach
//! the speed of OpenBLAS where burn `flex`'s `gemm` reaches about a third of it
//! (`docs/benchmarks.md`); and a symmetric product (`XᵀX`, `XXᵀ`) computes one triangle and
//! mirrors it, as BLAS `syrk` does, for half the operations. The results are the same products
//! in the same precision, summed in a different order.

use burn::tensor::{DType, Tensor, TensorData};
use faer::linalg::matmul::{matmul, triangular};
use faer::{Accum, MatMut, MatRef, Par};

use crate::compute::{Compute, Precision};
use crate::error::{Error, Result};
use crate::features::{FloatData, Layer};

/// `aᵀa`: the Gram matrix of the columns.
///
/// # Shapes
/// - `a`: `[n, p]` → `[p, p]`
pub(crate) async fn columns_gram(compute: &Compute, a: Tensor<2>) -> Result<Tensor<2>> {
    if !compute.is_cpu() {
        return Ok(a.clone().transpose().matmul(a));
    }
    let a = Host::read(a).await?;
    Ok(compute_host(compute, &a, None, true, true))
}

/// `aaᵀ`: the Gram matrix of the rows.
///
/// # Shapes
/// - `a`: `[n, p]` → `[n, n]`
pub(crate) async fn rows_gram(compute: &Compute, a: Tensor<2>) -> Result<Tensor<2>> {
    if !compute.is_cpu() {
        return Ok(a.clone().matmul(a.transpose()));
    }
    let a = Host::read(a).await?;
    Ok(compute_host(compute, &a, None, false, true))
}

/// `abᵀ`.
///
/// # Shapes
/// - `a`: `[m, p]`, `b`: `[n, p]` → `[m, n]`
pub(crate) async fn product_nt(compute: &Compute, a: Tensor<2>, b: Tensor<2>) -> Result<Tensor<2>> {
    if !compute.is_cpu() {
        return Ok(a.matmul(b.transpose()));
    }
    let (a, b) = (Host::read(a).await?, Host::read(b).await?);
    Ok(compute_host(compute, &a, Some(&b), false, false))
}

/// The sums of squares of the cross-products of two column-centered layers, `(‖XᵀY‖²_F,
/// ‖XᵀX‖²_F, ‖YᵀY‖²_F)`, of the layers times `(fx, fy)`, computed on the host in `precision`
/// (CKA's feature-space form on the CPU device); with `row_norms`, also each row's squared norm
/// of the centered `X` and `Y` (the Gram diagonals the debiased estimator needs).
///
/// One symmetric product of `Z = [X | Y]` holds all three blocks, in the operations of `XᵀY`
/// plus two symmetric products (numpy's count with `syrk`); it is accumulated over chunks of rows
/// of at most `chunk_elements` values of `Z`.
///
/// # Shapes
/// - `x`: `[n, p]`, `y`: `[n, q]`
pub(crate) fn centered_cross_sums(
    precision: Precision,
    chunk_elements: usize,
    (x, fx): (&Layer, f64),
    (y, fy): (&Layer, f64),
    row_norms: bool,
) -> Result<CrossSums> {
    // The (p + q)² cross-products and one chunk of Zᵀ, before anything is allocated.
    let width = (x.cols + y.cols) as u128;
    let rows = (chunk_elements as u128 / width.max(1)).clamp(1, x.rows.max(1) as u128);
    let bytes = (width * width + rows * width) * element_bytes(precision);
    crate::input::check_memory("CKA form", "feature (cross-products of the layers' widths)", bytes)?;
    Ok(match precision {
        Precision::F32 => cross_sums::<f32>(chunk_elements, (x, fx), (y, fy), row_norms),
        Precision::F64 => cross_sums::<f64>(chunk_elements, (x, fx), (y, fy), row_norms),
    })
}

/// Bytes of one value in `precision`.
fn element_bytes(precision: Precision) -> u128 {
    match precision {
        Precision::F32 => 4,
        Precision::F64 => 8,
    }
}

/// What [`centered_cross_sums`] returns.
pub(crate) struct CrossSums {
    /// `(‖XᵀY‖²_F, ‖XᵀX‖²_F, ‖YᵀY‖²_F)`.
    pub sums: (f64, f64, f64),
    /// Squared norms of the centered rows of `X` and `Y` (empty unless asked for).
    pub row_norms: (Vec<f64>, Vec<f64>),
}

fn cross_sums<T: HostFloat>(
    chunk_elements: usize,
    (x, fx): (&Layer, f64),
    (y, fy): (&Layer, f64),
    row_norms: bool,
) -> CrossSums {
    let (n, p, q) = (x.rows, x.cols, y.cols);
    let width = p + q;
    let (mean_x, mean_y) = (column_means(x, fx), column_means(y, fy));
    let mut g = vec![T::zero_impl(); width * width];
    let (mut nx, mut ny) = (Vec::new(), Vec::new());
    let step = (chunk_elements / width.max(1)).max(1);
    // Zᵀ (`[p + q, rows]`, each feature's values contiguous): faer's kernels run ~1.5× faster
    // on it than on row-major `Z`.
    let mut zt: Vec<T> = Vec::new();
    for start in (0..n).step_by(step) {
        let end = (start + step).min(n);
        let rows = end - start;
        zt.clear();
        zt.resize(rows * width, T::zero_impl());
        let (zx, zy) = zt.split_at_mut(p * rows);
        #[cfg(not(target_arch = "wasm32"))]
        rayon::join(
            || write_centered_transposed(zx, rows, x, start..end, fx, &mean_x),
            || write_centered_transposed(zy, rows, y, start..end, fy, &mean_y),
        );
        #[cfg(target_arch = "wasm32")]
        {
            write_centered_transposed(zx, rows, x, start..end, fx, &mean_x);
            write_centered_transposed(zy, rows, y, start..end, fy, &mean_y);
        }
        if row_norms {
            for (norms, features) in [(&mut nx, 0..p), (&mut ny, p..width)] {
                let first = norms.len();
                norms.resize(first + rows, 0.0);
                for f in features {
                    for (acc, v) in norms[first..].iter_mut().zip(&zt[f * rows..(f + 1) * rows]) {
                        *acc += v.to_f64() * v.to_f64();
                    }
                }
            }
        }
        let zm = MatRef::from_row_major_slice(&zt, width, rows);
        let dst = MatMut::from_row_major_slice_mut(&mut g, width, width);
        triangular::matmul(
            dst,
            triangular::BlockStructure::TriangularLower,
            if start == 0 { Accum::Replace } else { Accum::Add },
            zm,
            triangular::BlockStructure::Rectangular,
            zm.transpose(),
            triangular::BlockStructure::Rectangular,
            T::one_impl(),
            parallelism(),
        );
    }
    // Sums of squares of the blocks of the lower triangle of G = ZᵀZ.
    let square = |i: usize, j: usize| {
        let v = g[i * width + j].to_f64();
        v * v
    };
    let symmetric_block = |range: std::ops::Range<usize>| -> f64 {
        range
            .clone()
            .map(|i| square(i, i) + 2.0 * (range.start..i).map(|j| square(i, j)).sum::<f64>())
            .sum()
    };
    let xty: f64 = (p..width).map(|i| (0..p).map(|j| square(i, j)).sum::<f64>()).sum();
    CrossSums {
        sums: (xty, symmetric_block(0..p), symmetric_block(p..width)),
        row_norms: (nx, ny),
    }
}

/// Column means of a layer times `factor`, in `f64`.
fn column_means(layer: &Layer, factor: f64) -> Vec<f64> {
    let mut mean = vec![0.0f64; layer.cols];
    let mut add = |row: &mut dyn Iterator<Item = f64>| {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    };
    for r in 0..layer.rows {
        let range = r * layer.cols..(r + 1) * layer.cols;
        match &layer.data {
            FloatData::F32(v) => add(&mut v[range].iter().map(|&a| f64::from(a) * factor)),
            FloatData::F64(v) => add(&mut v[range].iter().map(|&a| a * factor)),
        }
    }
    mean.iter_mut().for_each(|m| *m /= layer.rows as f64);
    mean
}

/// Writes rows `rows` of `layer` times `factor` minus `mean`, rounded to `T` and transposed, into
/// `zt` (`[layer.cols, count]`, row-major).
fn write_centered_transposed<T: HostFloat>(
    zt: &mut [T],
    count: usize,
    layer: &Layer,
    rows: std::ops::Range<usize>,
    factor: f64,
    mean: &[f64],
) {
    match &layer.data {
        FloatData::F32(v) => transpose_centered(zt, count, v, layer.cols, rows, factor, mean),
        FloatData::F64(v) => transpose_centered(zt, count, v, layer.cols, rows, factor, mean),
    }
}

#[allow(clippy::too_many_arguments)]
fn transpose_centered<S: Copy + Into<f64>, T: HostFloat>(
    zt: &mut [T],
    count: usize,
    values: &[S],
    cols: usize,
    rows: std::ops::Range<usize>,
    factor: f64,
    mean: &[f64],
) {
    // Blocks of 16 rows: each feature's 16 values fill a cache line of `zt`.
    const BLOCK: usize = 16;
    for block in rows.clone().step_by(BLOCK) {
        let block_rows = block..(block + BLOCK).min(rows.end);
        for (c, &m) in mean.iter().enumerate() {
            let out = &mut zt[c * count..(c + 1) * count];
            for r in block_rows.clone() {
                out[r - rows.start] = T::from_f64(values[r * cols + c].into() * factor - m);
            }
        }
    }
}

/// One minibatch of several layers on the host: each layer's zero-diagonal Gram matrix `K̃`
/// (minibatch CKA's HSIC₁, Nguyen et al. 2021) as its strict lower triangle, and its row sums.
/// The examples are centered first (HSIC₁ does not change; the large constant part of `K`
/// would otherwise cancel in `f32`); `K̃` is symmetric with a zero diagonal, so the triangle
/// holds it all at half the memory and half the operations of the full matrix.
pub(crate) struct BatchGrams {
    /// Strict lower triangles, `[L, m(m−1)/2]` row-major (row `i` of `K̃` holds `i` values).
    lower: Values,
    /// `1ᵀK̃` per layer, `[L, m]`.
    pub sums: Vec<f64>,
    /// Layers.
    pub layers: usize,
}

/// [`BatchGrams`] of rows `rows` of each layer times its scale, in `precision`.
pub(crate) fn batch_grams(
    precision: Precision,
    layers: &[Layer],
    scales: &[f64],
    rows: &[usize],
) -> Result<BatchGrams> {
    // Every layer's triangle and one m × m product, before anything is allocated.
    let m = rows.len() as u128;
    let bytes = (layers.len() as u128 * m * m.saturating_sub(1) / 2 + m * m) * element_bytes(precision);
    crate::input::check_memory("batch_size", rows.len(), bytes)?;
    Ok(match precision {
        Precision::F32 => batch_grams_in::<f32>(layers, scales, rows),
        Precision::F64 => batch_grams_in::<f64>(layers, scales, rows),
    })
}

fn batch_grams_in<T: HostFloat>(layers: &[Layer], scales: &[f64], rows: &[usize]) -> BatchGrams
where
    Values: From<Vec<T>>,
{
    let m = rows.len();
    let half = m * (m - 1) / 2;
    let mut lower = Vec::with_capacity(layers.len() * half);
    let mut sums = Vec::with_capacity(layers.len() * m);
    let mut k = vec![T::zero_impl(); m * m];
    for (layer, &scale) in layers.iter().zip(scales) {
        let p = layer.cols;
        let mut x: Vec<f64> = Vec::with_capacity(m * p);
        for &r in rows {
            let range = r * p..(r + 1) * p;
            match &layer.data {
                FloatData::F32(v) => x.extend(v[range].iter().map(|&a| f64::from(a) * scale)),
                FloatData::F64(v) => x.extend(v[range].iter().map(|&a| a * scale)),
            }
        }
        let mut mean = vec![0.0f64; p];
        for row in x.chunks_exact(p) {
            mean.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
        }
        mean.iter_mut().for_each(|s| *s /= m as f64);
        let centered: Vec<T> = x
            .chunks_exact(p)
            .flat_map(|row| row.iter().zip(&mean).map(|(&v, &mu)| T::from_f64(v - mu)))
            .collect();
        let xm = MatRef::from_row_major_slice(&centered, m, p);
        triangular::matmul(
            MatMut::from_row_major_slice_mut(&mut k, m, m),
            triangular::BlockStructure::StrictTriangularLower,
            Accum::Replace,
            xm,
            triangular::BlockStructure::Rectangular,
            xm.transpose(),
            triangular::BlockStructure::Rectangular,
            T::one_impl(),
            parallelism(),
        );
        // Row sums of the symmetric K̃ from its lower triangle: K̃ᵢⱼ (j < i) adds to rows i and j.
        let mut s = vec![0.0f64; m];
        for i in 1..m {
            let row = &k[i * m..i * m + i];
            lower.extend_from_slice(row);
            let mut total = 0.0f64;
            for (sj, &v) in s[..i].iter_mut().zip(row) {
                let v = v.to_f64();
                total += v;
                *sj += v;
            }
            s[i] += total;
        }
        sums.extend(s);
    }
    BatchGrams {
        lower: lower.into(),
        sums,
        layers: layers.len(),
    }
}

impl From<Vec<f32>> for Values {
    fn from(values: Vec<f32>) -> Self {
        Values::F32(values)
    }
}

impl From<Vec<f64>> for Values {
    fn from(values: Vec<f64>) -> Self {
        Values::F64(values)
    }
}

/// `tr(K̃ₐL̃_b)` for every layer `a` of `left` and `b` of `right` (`[La, Lb]`, row-major), or for
/// each layer with itself (`right = None`, `[L]`): twice the products of the strict lower
/// triangles.
pub(crate) fn batch_traces(left: &BatchGrams, right: Option<&BatchGrams>) -> Vec<f64> {
    let half = |g: &BatchGrams| match &g.lower {
        Values::F32(v) => v.len() / g.layers.max(1),
        Values::F64(v) => v.len() / g.layers.max(1),
    };
    let t = half(left);
    match right {
        None => match &left.lower {
            Values::F32(v) => v.chunks(t.max(1)).map(|c| 2.0 * squared_norm(c)).collect(),
            Values::F64(v) => v.chunks(t.max(1)).map(|c| 2.0 * squared_norm(c)).collect(),
        },
        Some(right) => {
            let product = match (&left.lower, &right.lower) {
                (Values::F32(a), Values::F32(b)) => product(a, left.layers, t, b, right.layers, t, false, false)
                    .into_iter()
                    .map(f64::from)
                    .collect(),
                (a, b) => product(&a.widen(), left.layers, t, &b.widen(), right.layers, t, false, false),
            };
            product.into_iter().map(|v| 2.0 * v).collect()
        }
    }
}

/// `Σ vᵢ²` in `f64`.
fn squared_norm<T: HostFloat>(values: &[T]) -> f64 {
    values.iter().map(|v| v.to_f64() * v.to_f64()).sum()
}

/// A float the host products run in.
trait HostFloat: faer::traits::RealField + Copy + Send + Sync {
    fn from_f64(value: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl HostFloat for f32 {
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl HostFloat for f64 {
    fn from_f64(value: f64) -> Self {
        value
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// A row-major matrix read back from the CPU device.
struct Host {
    values: Values,
    rows: usize,
    cols: usize,
}

enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Host {
    async fn read(tensor: Tensor<2>) -> Result<Self> {
        let [rows, cols] = tensor.dims();
        let data = tensor
            .into_data_async()
            .await
            .map_err(|e| Error::Device(e.to_string()))?;
        let values = match data.dtype() {
            DType::F64 => Values::F64(
                data.try_into_vec::<f64>()
                    .map_err(|e| Error::Device(format!("{e:?}")))?,
            ),
            DType::F32 => Values::F32(
                data.try_into_vec::<f32>()
                    .map_err(|e| Error::Device(format!("{e:?}")))?,
            ),
            _ => Values::F32(
                data.convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| Error::Device(format!("{e:?}")))?,
            ),
        };
        Ok(Self { values, rows, cols })
    }
}

/// `op(a)·op(b)ᵀ…` on the host, uploaded back to the CPU device: `op(a) = aᵀ` when `transpose`,
/// and the right factor is `a` itself (`b = None`) or `b`, on the other side: `aᵀb` or `abᵀ`.
/// `symmetric` (only with `b = None`) computes the lower triangle and mirrors it.
fn compute_host(compute: &Compute, a: &Host, b: Option<&Host>, transpose: bool, symmetric: bool) -> Tensor<2> {
    let b = b.unwrap_or(a);
    let (m, n) = if transpose { (a.cols, b.cols) } else { (a.rows, b.rows) };
    let data = match (&a.values, &b.values) {
        (Values::F64(x), Values::F64(y)) => TensorData::new(
            product(x, a.rows, a.cols, y, b.rows, b.cols, transpose, symmetric),
            [m, n],
        ),
        (Values::F32(x), Values::F32(y)) => TensorData::new(
            product(x, a.rows, a.cols, y, b.rows, b.cols, transpose, symmetric),
            [m, n],
        ),
        // Mixed precisions do not occur (one Compute, one precision); widen rather than fail.
        (x, y) => TensorData::new(
            product(
                &x.widen(),
                a.rows,
                a.cols,
                &y.widen(),
                b.rows,
                b.cols,
                transpose,
                symmetric,
            ),
            [m, n],
        ),
    };
    Tensor::from_data(data, (&compute.device, compute.precision.dtype()))
}

impl Values {
    fn widen(&self) -> Vec<f64> {
        match self {
            Values::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Values::F64(v) => v.clone(),
        }
    }
}

/// Every core on native targets; one thread in the browser (no rayon there).
fn parallelism() -> Par {
    #[cfg(not(target_arch = "wasm32"))]
    {
        Par::rayon(0)
    }
    #[cfg(target_arch = "wasm32")]
    {
        Par::Seq
    }
}

/// The row-major product `aᵀb` (`transpose`) or `abᵀ` of row-major `a` (`[ar, ac]`) and `b`
/// (`[br, bc]`); `symmetric` when `b` is `a`, computing one triangle.
#[allow(clippy::too_many_arguments)]
fn product<T: HostFloat>(
    a: &[T],
    ar: usize,
    ac: usize,
    b: &[T],
    br: usize,
    bc: usize,
    transpose: bool,
    symmetric: bool,
) -> Vec<T> {
    let a = MatRef::from_row_major_slice(a, ar, ac);
    let b = MatRef::from_row_major_slice(b, br, bc);
    let (lhs, rhs) = if transpose {
        (a.transpose(), b)
    } else {
        (a, b.transpose())
    };
    let (m, n) = (lhs.nrows(), rhs.ncols());
    let mut out = vec![T::zero_impl(); m * n];
    let mut dst = MatMut::from_row_major_slice_mut(&mut out, m, n);
    if symmetric {
        triangular::matmul(
            dst.as_mut(),
            triangular::BlockStructure::TriangularLower,
            Accum::Replace,
            lhs,
            triangular::BlockStructure::Rectangular,
            rhs,
            triangular::BlockStructure::Rectangular,
            T::one_impl(),
            parallelism(),
        );
        for i in 0..m {
            for j in i + 1..n {
                out[i * n + j] = out[j * n + i];
            }
        }
    } else {
        matmul(dst, Accum::Replace, lhs, rhs, T::one_impl(), parallelism());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn naive(a: &[f64], ar: usize, ac: usize, b: &[f64], br: usize, bc: usize, transpose: bool) -> Vec<f64> {
        let (m, n, k) = if transpose { (ac, bc, ar) } else { (ar, br, ac) };
        let at = |i: usize, l: usize| if transpose { a[l * ac + i] } else { a[i * ac + l] };
        let bt = |l: usize, j: usize| if transpose { b[l * bc + j] } else { b[j * bc + l] };
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|l| at(i, l) * bt(l, j)).sum();
            }
        }
        out
    }

    fn values(rows: usize, cols: usize, seed: usize) -> Vec<f64> {
        (0..rows * cols)
            .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f64 / 500.0) - 1.0)
            .collect()
    }

    #[test]
    fn host_products_match_the_definition() {
        let (a, b) = (values(37, 23, 1), values(37, 19, 2));
        let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(u, v)| (u - v).abs() < 1e-12);
        assert!(close(
            &product(&a, 37, 23, &b, 37, 19, true, false),
            &naive(&a, 37, 23, &b, 37, 19, true)
        ));
        assert!(close(
            &product(&a, 37, 23, &a, 37, 23, true, true),
            &naive(&a, 37, 23, &a, 37, 23, true)
        ));
        let c = values(29, 23, 3);
        assert!(close(
            &product(&a, 37, 23, &c, 29, 23, false, false),
            &naive(&a, 37, 23, &c, 29, 23, false)
        ));
        assert!(close(
            &product(&a, 37, 23, &a, 37, 23, false, true),
            &naive(&a, 37, 23, &a, 37, 23, false)
        ));
    }

    #[test]
    fn memory_for_the_cross_products_is_checked_before_allocating() {
        // Two one-row layers 300,000 wide: (p + q)² f32 cross-products would need 1.3 TiB.
        let wide = |name: &str| Layer::from_f32(name, 1, 300_000, vec![1.0; 300_000]);
        let err = centered_cross_sums(Precision::F32, 1 << 20, (&wide("x"), 1.0), (&wide("y"), 1.0), false)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("CKA form"), "{err}");
    }

    #[test]
    fn cpu_products_equal_burn_matmul() {
        let compute = Compute::cpu();
        let device = Device::flex();
        let a = Tensor::<2>::from_data(
            TensorData::new(values(41, 13, 4).iter().map(|&x| x as f32).collect(), [41, 13]),
            &device,
        );
        let c = Tensor::<2>::from_data(
            TensorData::new(values(17, 13, 6).iter().map(|&x| x as f32).collect(), [17, 13]),
            &device,
        );
        let cases = [
            (
                pollster::block_on(columns_gram(&compute, a.clone())).unwrap(),
                a.clone().transpose().matmul(a.clone()),
            ),
            (
                pollster::block_on(rows_gram(&compute, a.clone())).unwrap(),
                a.clone().matmul(a.clone().transpose()),
            ),
            (
                pollster::block_on(product_nt(&compute, a.clone(), c.clone())).unwrap(),
                a.matmul(c.transpose()),
            ),
        ];
        for (ours, burn) in cases {
            assert_eq!(ours.dims(), burn.dims());
            let (x, y) = (
                ours.into_data().try_to_vec::<f32>().unwrap(),
                burn.into_data().try_to_vec::<f32>().unwrap(),
            );
            for (u, v) in x.iter().zip(&y) {
                assert!((u - v).abs() <= 1e-4 * (1.0 + v.abs()), "{u} vs {v}");
            }
        }
    }
}
