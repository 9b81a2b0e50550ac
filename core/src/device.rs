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
    /// An NVIDIA GPU through CUDA (builds with the `cuda` feature).
    #[cfg(feature = "cuda")]
    Cuda,
}

/// How a device computes, for logs and `losslens devices`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DeviceReport {
    /// The adapter's name (or `CPU`).
    pub name: String,
    /// The graphics API or runtime: `Vulkan`, `Metal`, `Dx12`, `Gl`, `BrowserWebGpu`, `CUDA`,
    /// `flex`.
    pub backend: String,
    /// What burn compiles its kernels to: `spirv`, `wgsl`, `msl`, `cuda`; `none` on the CPU
    /// backend.
    pub compiler: String,
    /// A software rasteriser that runs on the CPU (llvmpipe, SwiftShader, WARP).
    pub software: bool,
    /// f16 arithmetic is available.
    pub f16: bool,
    /// f16 cooperative-matrix (tensor-core) kernels are available: mixed precision pays off.
    pub tensor_cores_f16: bool,
}

impl DeviceReport {
    /// The CPU backend.
    pub fn cpu() -> Self {
        Self {
            name: "CPU".into(),
            backend: "flex".into(),
            compiler: "none".into(),
            software: false,
            f16: true,
            tensor_cores_f16: false,
        }
    }

    /// `NVIDIA H200 (Vulkan, SPIR-V; f16 tensor cores)`.
    pub fn describe(&self) -> String {
        let mut what = format!("{} ({}", self.name, self.backend);
        if self.compiler != "none" {
            what.push_str(&format!(", {}", self.compiler.to_uppercase()));
        }
        if self.tensor_cores_f16 {
            what.push_str("; f16 tensor cores");
        }
        if self.software {
            what.push_str("; a software adapter that runs on the CPU");
        }
        what.push(')');
        what
    }
}

/// A chosen device and how to describe it to a user.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    /// The device.
    pub device: Device,
    /// `"cpu"` or `"gpu"`.
    pub kind: &'static str,
    /// What it is, e.g. `"NVIDIA H100 80GB HBM3 (Vulkan, SPIRV; f16 tensor cores)"` or
    /// `"CPU (flex)"`.
    pub name: String,
    /// How it computes.
    pub report: DeviceReport,
}

impl SelectedDevice {
    /// The pure-Rust CPU backend.
    pub fn cpu() -> Self {
        Self {
            device: Device::flex(),
            kind: "cpu",
            name: "CPU (flex)".into(),
            report: DeviceReport::cpu(),
        }
    }
}

/// A GPU found through wgpu.
#[derive(Debug, Clone)]
pub struct Gpu {
    /// The device.
    pub device: Device,
    /// Adapter name, graphics API and compiler.
    pub name: String,
    /// Whether the adapter is a software rasteriser on the CPU (e.g. llvmpipe, SwiftShader),
    /// which is slower than the `flex` CPU backend for analyses.
    pub software: bool,
    /// How it computes.
    pub report: DeviceReport,
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
    let (compiler, tensor_cores_f16) = kernel_features(&device);
    let report = DeviceReport {
        name,
        backend: format!("{:?}", info.backend),
        compiler,
        software,
        f16: device.supports_dtype(burn::tensor::DType::F16),
        tensor_cores_f16,
    };
    Ok(Gpu {
        device,
        name: report.describe(),
        software,
        report,
    })
}

/// The compiler burn uses on `device` and whether it has f16 cooperative-matrix kernels (read
/// from the runtime: the name of its client, `wgpu<spirv>`, and its matrix-multiply features).
#[cfg(all(
    feature = "train",
    any(feature = "wgpu", feature = "cuda"),
    not(target_arch = "wasm32")
))]
pub fn kernel_features(device: &Device) -> (String, bool) {
    use burn::backend::DispatchDevice;
    let mut device = device.as_dispatch().clone();
    while let DispatchDevice::Autodiff(inner) = &device {
        device = inner.clone().inner();
    }
    match &device {
        DispatchDevice::Cube(cube) => {
            let client = cube.client();
            let name = client.name();
            let compiler = name
                .split_once('<')
                .map_or(name, |(_, c)| c.trim_end_matches('>'))
                .to_string();
            let f16 = client
                .properties()
                .features
                .matmul
                .cmma
                .iter()
                .any(|c| format!("{:?}", c.a_type).contains("F16"));
            (compiler, f16)
        }
        _ => ("none".to_string(), false),
    }
}

/// Without the runtime's internals (the browser build), the compiler is WGSL.
#[cfg(not(all(
    feature = "train",
    any(feature = "wgpu", feature = "cuda"),
    not(target_arch = "wasm32")
)))]
pub fn kernel_features(_device: &Device) -> (String, bool) {
    ("wgsl".to_string(), false)
}

/// Every GPU adapter wgpu finds, with how each computes (each is opened).
#[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
pub fn adapters() -> Vec<DeviceReport> {
    let mut out = Vec::new();
    for device in Device::enumerate(burn::tensor::DeviceType::Wgpu).into_iter() {
        let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let identity = device.identity()?;
            let (compiler, tensor_cores_f16) = kernel_features(&device);
            Some(DeviceReport {
                software: identity.physical.is_none() || is_software_adapter(&identity.name),
                name: identity.name,
                backend: "wgpu".into(),
                compiler,
                f16: device.supports_dtype(burn::tensor::DType::F16),
                tensor_cores_f16,
            })
        }));
        if let Ok(Some(report)) = probe {
            out.push(report);
        }
    }
    out
}

/// The NVIDIA GPU `index` through CUDA.
#[cfg(feature = "cuda")]
pub fn cuda(index: usize) -> Result<Gpu> {
    let device = Device::cuda(index);
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| device.identity()));
    let identity = probe.ok().flatten().ok_or_else(|| {
        Error::Device(format!(
            "CUDA device {index} could not be started (is the NVIDIA driver installed?)"
        ))
    })?;
    let (compiler, tensor_cores_f16) = kernel_features(&device);
    let report = DeviceReport {
        name: identity.name,
        backend: "CUDA".into(),
        compiler,
        software: false,
        f16: true,
        tensor_cores_f16,
    };
    Ok(Gpu {
        device,
        name: report.describe(),
        software: false,
        report,
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
                report: gpu.report,
            })
        }
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda => {
            let gpu = cuda(0)?;
            Ok(SelectedDevice {
                device: gpu.device,
                kind: "gpu",
                name: gpu.name,
                report: gpu.report,
            })
        }
        DeviceChoice::Auto => match gpu().await {
            Ok(gpu) if !gpu.software => Ok(SelectedDevice {
                device: gpu.device,
                kind: "gpu",
                name: gpu.name,
                report: gpu.report,
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

/// Keeps burn's autotune results and compiled kernels in `dir` (created if needed) from now on,
/// so that the first step's kernel compilation and tuning are paid once per machine and GPU.
/// Must run before any GPU device is used; later calls do nothing. Settings of a `cubecl.toml`
/// are kept, except the cache folder and kernel caching, which this sets.
#[cfg(all(feature = "kernel-cache", not(target_arch = "wasm32")))]
pub fn use_kernel_cache(dir: &std::path::Path) -> Result<()> {
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    config.environment.path = CacheConfig::Directory(dir.to_path_buf());
    config.compilation.cache = true;
    if !CubeClRuntimeConfig::try_set(config) {
        tracing::debug!("the kernel cache was configured already");
    }
    Ok(())
}

/// Without the kernel cache (the feature is off), kernels are compiled in every process.
#[cfg(not(all(feature = "kernel-cache", not(target_arch = "wasm32"))))]
pub fn use_kernel_cache(_dir: &std::path::Path) -> Result<()> {
    Ok(())
}
