//! One layer's activations as an `[examples, features]` matrix.

use std::path::Path;

use super::array::{Array, ArrayData};
use crate::error::{Error, Result};

/// Host storage of a layer's activations, in the precision the file held.
#[derive(Debug, Clone, PartialEq)]
pub enum FloatData {
    /// Single precision (also what half-precision files widen to).
    F32(Vec<f32>),
    /// Double precision.
    F64(Vec<f64>),
}

impl FloatData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            FloatData::F32(v) => v.len(),
            FloatData::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A layer's activations: row `i` is example `i`, flattened in C order.
///
/// # Shapes
/// - `data`: `[rows, cols]`, row-major; `shape` keeps the array's original shape
///   (e.g. `[N, C, H, W]` with `cols = C·H·W`).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The layer's name (the array name in its file).
    pub name: String,
    /// Where it came from, for messages: `file.npz:layer`.
    pub origin: String,
    /// Number of examples.
    pub rows: usize,
    /// Features per example.
    pub cols: usize,
    /// The original array shape.
    pub shape: Vec<usize>,
    /// The activations.
    pub data: FloatData,
}

impl Layer {
    /// A layer from an array of rank ≥ 2, checked to be non-empty and finite. The array's
    /// elements move into the layer without a copy.
    pub fn from_array(path: &Path, name: &str, array: Array) -> Result<Self> {
        let shape_error = |expected: &str| Error::Shape {
            path: path.to_path_buf(),
            array: name.to_string(),
            shape: array.shape.clone(),
            expected: expected.to_string(),
        };
        if array.shape.len() < 2 {
            return Err(shape_error(
                "features must have one row per example: [examples, features] or [examples, C, H, W]",
            ));
        }
        let rows = array.shape[0];
        let cols: usize = array.shape[1..].iter().product();
        if rows == 0 || cols == 0 {
            return Err(shape_error("features must have at least one example and one feature"));
        }
        let data = match array.data {
            ArrayData::F32(v) => FloatData::F32(v),
            ArrayData::F64(v) => FloatData::F64(v),
            ArrayData::I64(_) => {
                return Err(Error::UnsupportedDtype {
                    path: path.to_path_buf(),
                    array: name.to_string(),
                    dtype: "int64 (features must be floating point)".into(),
                });
            }
        };
        let layer = Self {
            name: name.to_string(),
            origin: format!("{}:{name}", path.display()),
            rows,
            cols,
            shape: array.shape,
            data,
        };
        if let Some((index, value)) = layer.first_non_finite() {
            return Err(Error::NonFinite {
                path: path.to_path_buf(),
                array: name.to_string(),
                index,
                value,
            });
        }
        Ok(layer)
    }

    /// A layer from row-major activations computed in memory.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    pub fn new(name: impl Into<String>, rows: usize, cols: usize, data: FloatData) -> Self {
        assert_eq!(data.len(), rows * cols, "layer data does not match [{rows}, {cols}]");
        let name = name.into();
        Self {
            origin: name.clone(),
            name,
            rows,
            cols,
            shape: vec![rows, cols],
            data,
        }
    }

    /// The largest absolute activation (NaN if any is NaN).
    pub fn max_abs(&self) -> f64 {
        match &self.data {
            FloatData::F32(v) => max_abs(v),
            FloatData::F64(v) => max_abs(v),
        }
    }

    /// How much the layer varies across examples relative to its size: the centered sum of
    /// squares over the raw one, `Σ (x − x̄_col)² / Σ x²`, in `f64` on the host (0 for identical
    /// rows, 1 for rows with zero mean; NaN for an all-zero layer).
    pub fn relative_variance(&self) -> f64 {
        self.relative_variance_given_max(self.max_abs())
    }

    /// [`Layer::relative_variance`] when [`Layer::max_abs`] is known.
    pub(crate) fn relative_variance_given_max(&self, max_abs: f64) -> f64 {
        // Scaled by the largest activation so that squares of 1e38 neither overflow here.
        let scale = max_abs;
        if !(scale > 0.0 && scale.is_finite()) {
            return f64::NAN;
        }
        match &self.data {
            FloatData::F32(v) => relative_variance(v, self.cols, 1.0 / scale),
            FloatData::F64(v) => relative_variance(v, self.cols, 1.0 / scale),
        }
    }

    /// The power of two nearest `1 / max |x|`: the factor that brings the layer's largest
    /// activation near 1 (scale-invariant analyses compute on that, so no sum of squares
    /// overflows or underflows), or an error for a layer whose activations are all zero or not
    /// finite. A power of two scales every value exactly, so results do not change by a bit
    /// for layers that needed no scaling.
    pub(crate) fn unit_scale(&self, analysis: &str) -> crate::error::Result<f64> {
        self.unit_scale_given_max(self.max_abs(), analysis)
    }

    /// [`Layer::unit_scale`] when [`Layer::max_abs`] is known.
    pub(crate) fn unit_scale_given_max(&self, max: f64, analysis: &str) -> crate::error::Result<f64> {
        if !max.is_finite() {
            return Err(crate::error::Error::degenerate(
                &self.origin,
                format!("holds a non-finite activation, so {analysis} is undefined"),
            ));
        }
        if max == 0.0 {
            return Err(crate::error::Error::degenerate(
                &self.origin,
                format!("every activation is zero (zero variance, no direction), so {analysis} is undefined"),
            ));
        }
        Ok(2f64.powi((-max.log2().round()).clamp(-1000.0, 1000.0) as i32))
    }

    /// A layer from row-major `f32` activations.
    pub fn from_f32(name: impl Into<String>, rows: usize, cols: usize, data: Vec<f32>) -> Self {
        Self::new(name, rows, cols, FloatData::F32(data))
    }

    /// A layer from row-major `f64` activations.
    pub fn from_f64(name: impl Into<String>, rows: usize, cols: usize, data: Vec<f64>) -> Self {
        Self::new(name, rows, cols, FloatData::F64(data))
    }

    /// The same examples, reordered or subset: row `i` of the result is row `rows[i]`.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let c = self.cols;
        let data = match &self.data {
            FloatData::F32(v) => FloatData::F32(
                rows.iter()
                    .flat_map(|&r| v[r * c..(r + 1) * c].iter().copied())
                    .collect(),
            ),
            FloatData::F64(v) => FloatData::F64(
                rows.iter()
                    .flat_map(|&r| v[r * c..(r + 1) * c].iter().copied())
                    .collect(),
            ),
        };
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        Self {
            name: self.name.clone(),
            origin: self.origin.clone(),
            rows: rows.len(),
            cols: c,
            shape,
            data,
        }
    }

    /// Flat index and printed value of the first NaN or infinity.
    fn first_non_finite(&self) -> Option<(usize, String)> {
        match &self.data {
            FloatData::F32(v) => v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i].to_string())),
            FloatData::F64(v) => v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i].to_string())),
        }
    }
}

/// [`Layer::relative_variance`] of row-major values with `cols` columns, each multiplied by `factor`.
fn relative_variance<T: Copy + Into<f64>>(values: &[T], cols: usize, factor: f64) -> f64 {
    let rows = values.len() / cols.max(1);
    // Per-column accumulators, so the inner loops vectorise.
    let mut mean = vec![0.0f64; cols];
    for row in values.chunks_exact(cols) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += x.into() * factor;
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    let (mut centered, mut raw) = (vec![0.0f64; cols], vec![0.0f64; cols]);
    for row in values.chunks_exact(cols) {
        for (((c, r), m), &x) in centered.iter_mut().zip(raw.iter_mut()).zip(&mean).zip(row) {
            let x = x.into() * factor;
            *c += (x - m) * (x - m);
            *r += x * x;
        }
    }
    centered.iter().sum::<f64>() / raw.iter().sum::<f64>()
}

/// [`Layer::max_abs`] of a slice, in lanes of 16 so that the loop vectorises (a running maximum
/// of one value does not: reordering it would change which NaN wins, so the compiler keeps it
/// scalar). NaN is looked for separately, since comparisons with NaN are false.
fn max_abs<T: Copy + Into<f64> + PartialOrd + std::ops::Neg<Output = T> + Default>(values: &[T]) -> f64 {
    const LANES: usize = 16;
    let mut lanes = [T::default(); LANES];
    let mut nan = false;
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            let a = if x < T::default() { -x } else { x };
            nan |= Into::<f64>::into(a).is_nan();
            *m = if a > *m { a } else { *m };
        }
    }
    for &x in chunks.remainder() {
        let a = if x < T::default() { -x } else { x };
        nan |= Into::<f64>::into(a).is_nan();
        lanes[0] = if a > lanes[0] { a } else { lanes[0] };
    }
    if nan {
        return f64::NAN;
    }
    lanes.iter().map(|&m| m.into()).fold(0.0, f64::max)
}
