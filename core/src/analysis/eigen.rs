//! Symmetric eigendecomposition on the host (faer, `f64`), for the small `p × p` or `K × K`
//! matrices that device computations reduce to.

use crate::error::{Error, Result};

/// Eigenpairs of a symmetric matrix, largest eigenvalue first.
pub(crate) struct Eigen {
    /// Eigenvalues, non-increasing.
    pub values: Vec<f64>,
    /// `vectors[i]` is the unit eigenvector of `values[i]`.
    pub vectors: Vec<Vec<f64>>,
}

/// Eigenvalues (non-increasing) of the symmetric `n × n` row-major matrix `a`.
pub(crate) fn eigenvalues(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| 0.5 * (a[i * n + j] + a[j * n + i]));
    let mut values = m
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .map_err(|e| Error::Device(format!("eigendecomposition did not converge: {e:?}")))?;
    values.reverse();
    Ok(values)
}

/// Eigenpairs of the symmetric `n × n` row-major matrix `a`.
pub(crate) fn eigen(a: &[f64], n: usize) -> Result<Eigen> {
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| 0.5 * (a[i * n + j] + a[j * n + i]));
    let evd = m
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::Device(format!("eigendecomposition did not converge: {e:?}")))?;
    let (u, s) = (evd.U(), evd.S());
    let mut values = Vec::with_capacity(n);
    let mut vectors = Vec::with_capacity(n);
    for j in (0..n).rev() {
        values.push(s.column_vector()[j]);
        vectors.push((0..n).map(|i| u[(i, j)]).collect());
    }
    Ok(Eigen { values, vectors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonalises_a_small_symmetric_matrix() {
        // [[2, 1], [1, 2]] has eigenvalues 3 and 1 with eigenvectors (1, 1)/√2 and (1, −1)/√2.
        let e = eigen(&[2.0, 1.0, 1.0, 2.0], 2).unwrap();
        assert!((e.values[0] - 3.0).abs() < 1e-12 && (e.values[1] - 1.0).abs() < 1e-12);
        assert!((e.vectors[0][0].abs() - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((e.vectors[0][0] - e.vectors[0][1]).abs() < 1e-12);
        assert_eq!(eigenvalues(&[2.0, 1.0, 1.0, 2.0], 2).unwrap().len(), 2);
    }
}
