//! Choosing the compute device once, at the entry point.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which device a user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The pure-Rust CPU backend (`flex`).
    Cpu,
    /// A GPU through wgpu (Vulkan, Metal, DX12; WebGPU in the browser); an error if none works.
    Gpu,
    /// A GPU when one is found, else the CPU. Default.
    #[default]
    Auto,
}

/// A chosen device and how to describe it to a user.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    /// The device.
    pub device: Device,
    /// `"cpu"` or `"gpu"`.
    pub kind: &'static str,
}

/// Starts the GPU runtime through wgpu.
#[cfg(any(feature = "wgpu", feature = "webgpu"))]
pub async fn gpu() -> Result<Device> {
    Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| Error::Device(format!("no usable GPU found through wgpu: {e}")))
}

/// Starts the GPU runtime: unavailable in a build without a GPU backend.
#[cfg(not(any(feature = "wgpu", feature = "webgpu")))]
pub async fn gpu() -> Result<Device> {
    Err(Error::Device(
        "this build of losslens has no GPU backend (enable the `wgpu` feature)".into(),
    ))
}

/// The device for `choice`: `Auto` falls back to the CPU when no GPU starts.
pub async fn select(choice: DeviceChoice) -> Result<SelectedDevice> {
    match choice {
        DeviceChoice::Cpu => Ok(SelectedDevice {
            device: Device::flex(),
            kind: "cpu",
        }),
        DeviceChoice::Gpu => Ok(SelectedDevice {
            device: gpu().await?,
            kind: "gpu",
        }),
        DeviceChoice::Auto => match gpu().await {
            Ok(device) => Ok(SelectedDevice { device, kind: "gpu" }),
            Err(e) => {
                tracing::info!("using the CPU: {e}");
                Ok(SelectedDevice {
                    device: Device::flex(),
                    kind: "cpu",
                })
            }
        },
    }
}
