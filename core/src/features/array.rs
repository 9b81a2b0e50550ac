//! A dense n-dimensional array as read from or written to a feature file.

/// Element storage of an [`Array`]. Half-precision inputs are widened to `f32` on load;
/// every integer type is widened to `i64`.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayData {
    /// Single-precision floats (also half-precision inputs).
    F32(Vec<f32>),
    /// Double-precision floats.
    F64(Vec<f64>),
    /// Integers of any width (labels).
    I64(Vec<i64>),
}

impl ArrayData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
            ArrayData::I64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The NumPy name of the element type.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            ArrayData::F32(_) => "float32",
            ArrayData::F64(_) => "float64",
            ArrayData::I64(_) => "int64",
        }
    }

    /// Whether the elements are floating point.
    pub fn is_float(&self) -> bool {
        !matches!(self, ArrayData::I64(_))
    }
}

/// Arrays with their names, in file order.
pub type NamedArrays = Vec<(String, Array)>;

/// A dense array in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Extent of each axis.
    pub shape: Vec<usize>,
    /// Elements in C order; `data.len()` equals the product of `shape`.
    pub data: ArrayData,
}

impl Array {
    /// An array from its shape and C-order elements.
    ///
    /// # Panics
    /// If the number of elements does not match the shape (a programmer error).
    pub fn new(shape: Vec<usize>, data: ArrayData) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "array shape {shape:?} does not match {} elements",
            data.len()
        );
        Self { shape, data }
    }

    /// A 2-D `f32` array.
    pub fn from_f32(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        Self::new(vec![rows, cols], ArrayData::F32(data))
    }

    /// A 1-D `i64` array, e.g. labels.
    pub fn from_labels(labels: &[usize]) -> Self {
        Self::new(
            vec![labels.len()],
            ArrayData::I64(labels.iter().map(|&l| l as i64).collect()),
        )
    }
}

/// Reorders elements stored in Fortran (column-major) order into C order.
pub(crate) fn fortran_to_c<T: Copy>(shape: &[usize], data: &[T]) -> Vec<T> {
    let n = data.len();
    if shape.len() < 2 || n == 0 {
        return data.to_vec();
    }
    // Fortran strides: axis 0 fastest.
    let mut f_strides = vec![1usize; shape.len()];
    for axis in 1..shape.len() {
        f_strides[axis] = f_strides[axis - 1] * shape[axis - 1];
    }
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..n {
        let src: usize = index.iter().zip(&f_strides).map(|(i, s)| i * s).sum();
        out.push(data[src]);
        // Increment the C-order multi-index (last axis fastest).
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_is_transposed_into_c_order() {
        // numpy: np.asfortranarray(np.arange(6).reshape(2, 3)) stores 0 3 1 4 2 5.
        let c = fortran_to_c(&[2, 3], &[0, 3, 1, 4, 2, 5]);
        assert_eq!(c, vec![0, 1, 2, 3, 4, 5]);
        // 3-D: np.arange(24).reshape(2,3,4) in Fortran order.
        let shape = [2, 3, 4];
        let mut fortran = vec![0; 24];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    fortran[i + 2 * j + 6 * k] = i * 12 + j * 4 + k;
                }
            }
        }
        assert_eq!(fortran_to_c(&shape, &fortran), (0..24).collect::<Vec<_>>());
    }
}
