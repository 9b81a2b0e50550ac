//! Choosing the compute device once, at the entry point.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which device a user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
    /// What it is, e.g. `"NVIDIA H100 80GB HBM3 (Vulkan)"` or `"CPU (flex)"`.
    pub name: String,
}

impl SelectedDevice {
    /// The pure-Rust CPU backend.
    pub fn cpu() -> Self {
        Self {
            device: Device::flex(),
            kind: "cpu",
            name: "CPU (flex)".into(),
        }
    }
}

/// A GPU found through wgpu.
#[derive(Debug, Clone)]
pub struct Gpu {
    /// The device.
    pub device: Device,
    /// Adapter name and graphics API.
    pub name: String,
    /// Whether the adapter is a software rasteriser on the CPU (e.g. llvmpipe, SwiftShader),
    /// which is slower than the `flex` CPU backend for analyses.
    pub software: bool,
}

/// Starts the GPU runtime through wgpu.
#[cfg(any(feature = "wgpu", feature = "webgpu"))]
pub async fn gpu() -> Result<Gpu> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| Error::Device(format!("no usable GPU found through wgpu: {e}")))?;
    let info = setup.adapter.get_info();
    let name = if info.name.is_empty() {
        "WebGPU adapter".to_string()
    } else {
        info.name.clone()
    };
    let software = info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu || is_software_adapter(&name);
    Ok(Gpu {
        device,
        name: if software {
            format!("{name} ({:?}; a software adapter that runs on the CPU)", info.backend)
        } else {
            format!("{name} ({:?})", info.backend)
        },
        software,
    })
}

/// Whether an adapter name is one of the software rasterisers (Mesa's llvmpipe, lavapipe and
/// softpipe, Google's SwiftShader, Microsoft's WARP), which some drivers report as GPUs.
pub fn is_software_adapter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "llvmpipe",
        "lavapipe",
        "softpipe",
        "swiftshader",
        "basic render",
        "warp",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// The discrete GPUs `1..count` through wgpu, as replicas for data-parallel training beside the
/// main device (GPU 0). Each is started here, so a missing one is an error now, not mid-run.
#[cfg(feature = "wgpu")]
pub fn more_gpus(count: usize) -> Result<Vec<Device>> {
    (1..count)
        .map(|i| {
            let device = Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i));
            let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                burn::tensor::Tensor::<1>::zeros([1], &device).into_data();
            }));
            probe.map(|_| device.clone()).map_err(|_| {
                Error::Device(format!(
                    "discrete GPU {i} could not be started (asked for {count} GPUs)"
                ))
            })
        })
        .collect()
}

/// Data-parallel replicas are GPUs; a build without a GPU backend has none.
#[cfg(not(feature = "wgpu"))]
pub fn more_gpus(count: usize) -> Result<Vec<Device>> {
    if count <= 1 {
        Ok(Vec::new())
    } else {
        Err(Error::Device(
            "this build of losslens has no GPU backend (enable the `wgpu` feature)".into(),
        ))
    }
}

/// Starts the GPU runtime: unavailable in a build without a GPU backend.
#[cfg(not(any(feature = "wgpu", feature = "webgpu")))]
pub async fn gpu() -> Result<Gpu> {
    Err(Error::Device(
        "this build of losslens has no GPU backend (enable the `wgpu` feature)".into(),
    ))
}

/// The device for `choice`. `Auto` takes a hardware GPU when one starts and the CPU otherwise
/// (also when the only adapter is a software rasteriser); `Gpu` takes whatever adapter wgpu
/// offers, software included.
pub async fn select(choice: DeviceChoice) -> Result<SelectedDevice> {
    match choice {
        DeviceChoice::Cpu => Ok(SelectedDevice::cpu()),
        DeviceChoice::Gpu => {
            let gpu = gpu().await?;
            Ok(SelectedDevice {
                device: gpu.device,
                kind: "gpu",
                name: gpu.name,
            })
        }
        DeviceChoice::Auto => match gpu().await {
            Ok(gpu) if !gpu.software => Ok(SelectedDevice {
                device: gpu.device,
                kind: "gpu",
                name: gpu.name,
            }),
            Ok(gpu) => {
                tracing::info!(
                    "using the CPU: the only GPU adapter is a software rasteriser ({})",
                    gpu.name
                );
                Ok(SelectedDevice::cpu())
            }
            Err(e) => {
                tracing::info!("using the CPU: {e}");
                Ok(SelectedDevice::cpu())
            }
        },
    }
}
