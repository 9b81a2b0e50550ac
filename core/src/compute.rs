//! Where and in what precision analyses run: a burn [`Device`] plus a float precision.
//!
//! The device is picked once at the entry point (CLI flag, browser capability check,
//! `Device::flex()` in tests). Every read back to the host is asynchronous, so the same code runs
//! on WebGPU in the browser; native callers block on it (e.g. with `pollster`).

use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::features::{FloatData, Layer};

/// Floating-point precision of device computations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    /// 32-bit floats: every device, the default.
    #[default]
    F32,
    /// 64-bit floats: the CPU (`flex`) device only; for reference-grade numbers.
    F64,
}

impl Precision {
    /// The burn dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        }
    }
}

/// Elements uploaded to the device at once by default: 2²⁶ (256 MiB in `f32`).
pub(crate) const DEFAULT_CHUNK_ELEMENTS: usize = 1 << 26;

/// A device, the precision analyses run in on it, and how much of a layer they upload at once.
#[derive(Debug, Clone)]
pub struct Compute {
    /// The burn device.
    pub device: Device,
    /// Precision of device arithmetic.
    pub precision: Precision,
    /// Most elements of a layer on the device at once (rows are never split); analyses stream
    /// larger layers through in chunks of rows, so device memory is bounded whatever `N`.
    /// Default [`DEFAULT_CHUNK_ELEMENTS`].
    pub chunk_elements: usize,
}

impl Compute {
    /// The pure-Rust CPU device (`flex`) in single precision.
    pub fn cpu() -> Self {
        Self::new(Device::flex(), Precision::F32)
    }

    /// `device` in `precision`.
    pub fn new(device: Device, precision: Precision) -> Self {
        Self {
            device,
            precision,
            chunk_elements: DEFAULT_CHUNK_ELEMENTS,
        }
    }

    /// The same device with another chunk size (at least one row is always uploaded).
    pub fn with_chunk_elements(mut self, chunk_elements: usize) -> Self {
        self.chunk_elements = chunk_elements.max(1);
        self
    }

    /// Row ranges of a `[rows, cols]` layer, each within the chunk size.
    pub(crate) fn row_chunks(&self, rows: usize, cols: usize) -> Vec<std::ops::Range<usize>> {
        let step = (self.chunk_elements / cols.max(1)).max(1);
        (0..rows)
            .step_by(step)
            .map(|start| start..(start + step).min(rows))
            .collect()
    }

    /// Column means of a layer, streamed in chunks of rows.
    ///
    /// # Shapes
    /// - returns `[1, layer.cols]`
    pub(crate) fn column_means(&self, layer: &Layer) -> Tensor<2> {
        self.column_means_scaled(layer, 1.0)
    }

    /// Column means of `factor` times a layer ([`Compute::upload_rows_scaled`]).
    ///
    /// # Shapes
    /// - returns `[1, layer.cols]`
    pub(crate) fn column_means_scaled(&self, layer: &Layer, factor: f64) -> Tensor<2> {
        let mut sum: Option<Tensor<2>> = None;
        for rows in self.row_chunks(layer.rows, layer.cols) {
            let part = self.upload_rows_scaled(layer, rows.start, rows.end, factor).sum_dim(0); // [1, P]
            sum = Some(match sum {
                Some(s) => s + part,
                None => part,
            });
        }
        sum.expect("a layer has at least one row").div_scalar(layer.rows as f64)
    }

    /// The same device in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Whether the device is the CPU backend (host-side selection beats device sorting there).
    pub(crate) fn is_cpu(&self) -> bool {
        self.device == Device::flex()
    }

    /// Uploads a whole layer.
    ///
    /// # Shapes
    /// - returns `[layer.rows, layer.cols]`
    pub fn upload(&self, layer: &Layer) -> Tensor<2> {
        self.upload_rows(layer, 0, layer.rows)
    }

    /// Uploads rows `start..end` of a layer.
    ///
    /// # Shapes
    /// - returns `[end - start, layer.cols]`
    pub(crate) fn upload_rows(&self, layer: &Layer, start: usize, end: usize) -> Tensor<2> {
        self.upload_rows_scaled(layer, start, end, 1.0)
    }

    /// Uploads rows `start..end` of a layer multiplied by `factor` on the host, in `f64` before
    /// rounding: scale-invariant analyses bring values near the limits of `f32` (1e-37, 1e37) to
    /// order 1 this way, so that no sum of squares overflows or underflows on the device.
    ///
    /// # Shapes
    /// - returns `[end - start, layer.cols]`
    pub(crate) fn upload_rows_scaled(&self, layer: &Layer, start: usize, end: usize, factor: f64) -> Tensor<2> {
        let c = layer.cols;
        let shape = [end - start, c];
        let data = match (&layer.data, factor == 1.0) {
            (FloatData::F32(v), true) => TensorData::new(v[start * c..end * c].to_vec(), shape),
            (FloatData::F64(v), true) => TensorData::new(v[start * c..end * c].to_vec(), shape),
            (FloatData::F32(v), false) => TensorData::new(
                v[start * c..end * c]
                    .iter()
                    .map(|&a| (f64::from(a) * factor) as f32)
                    .collect::<Vec<f32>>(),
                shape,
            ),
            (FloatData::F64(v), false) => TensorData::new(
                v[start * c..end * c].iter().map(|&a| a * factor).collect::<Vec<f64>>(),
                shape,
            ),
        };
        Tensor::from_data(data, (&self.device, self.precision.dtype()))
    }

    /// Uploads a host matrix given in `f64`.
    ///
    /// # Shapes
    /// - `values`: `[rows * cols]` row-major; returns `[rows, cols]`
    pub fn matrix(&self, values: Vec<f64>, rows: usize, cols: usize) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(values, [rows, cols]),
            (&self.device, self.precision.dtype()),
        )
    }

    /// Reads a tensor back to the host as `f64`, row-major.
    pub async fn read<const D: usize>(&self, tensor: Tensor<D>) -> Result<Vec<f64>> {
        let data = tensor
            .into_data_async()
            .await
            .map_err(|e| Error::Device(e.to_string()))?;
        data.convert::<f64>()
            .try_into_vec::<f64>()
            .map_err(|e| Error::Device(format!("{e:?}")))
    }

    /// Relative variance below which a representation counts as constant in this precision:
    /// `(64 ε)²`, with ε the machine epsilon (f32: 5.8e-11; f64: 2.0e-28). The centered sum of
    /// squares of identical rows is rounding noise of about `ε²` times the raw one.
    pub(crate) fn constant_tolerance(&self) -> f64 {
        let eps = match self.precision {
            Precision::F32 => f64::from(f32::EPSILON),
            Precision::F64 => f64::EPSILON,
        };
        (64.0 * eps).powi(2)
    }

    /// Reads a one-element tensor back as `f64`.
    pub(crate) async fn scalar<const D: usize>(&self, tensor: Tensor<D>) -> Result<f64> {
        let values = self.read(tensor).await?;
        values
            .first()
            .copied()
            .ok_or_else(|| Error::Device("expected a scalar, read an empty tensor".into()))
    }
}

/// Paces a long computation: called between its pieces. The browser yields to its event loop
/// here (the page stays responsive), shows progress, and stops a cancelled job by returning an
/// error ([`Error::Cancelled`]); the command line never pauses ([`NoPause`]).
pub trait Pacer {
    /// `done` of `total` pieces are finished; an error stops the computation.
    fn pause(&self, done: usize, total: usize) -> impl std::future::Future<Output = Result<()>>;
}

/// A [`Pacer`] that never pauses.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPause;

impl Pacer for NoPause {
    async fn pause(&self, _done: usize, _total: usize) -> Result<()> {
        Ok(())
    }
}
