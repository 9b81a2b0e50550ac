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

/// A device and the precision analyses run in on it.
#[derive(Debug, Clone)]
pub struct Compute {
    /// The burn device.
    pub device: Device,
    /// Precision of device arithmetic.
    pub precision: Precision,
}

impl Compute {
    /// The pure-Rust CPU device (`flex`) in single precision.
    pub fn cpu() -> Self {
        Self {
            device: Device::flex(),
            precision: Precision::F32,
        }
    }

    /// `device` in `precision`.
    pub fn new(device: Device, precision: Precision) -> Self {
        Self { device, precision }
    }

    /// The same device in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
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
    pub fn upload_rows(&self, layer: &Layer, start: usize, end: usize) -> Tensor<2> {
        let c = layer.cols;
        let shape = [end - start, c];
        let data = match &layer.data {
            FloatData::F32(v) => TensorData::new(v[start * c..end * c].to_vec(), shape),
            FloatData::F64(v) => TensorData::new(v[start * c..end * c].to_vec(), shape),
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

    /// Reads a one-element tensor back as `f64`.
    pub async fn scalar<const D: usize>(&self, tensor: Tensor<D>) -> Result<f64> {
        let values = self.read(tensor).await?;
        values
            .first()
            .copied()
            .ok_or_else(|| Error::Device("expected a scalar, read an empty tensor".into()))
    }
}
