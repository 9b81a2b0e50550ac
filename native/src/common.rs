//! Options shared by the analysis commands: device, precision, output format.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use losslens_core::device::{self, DeviceChoice};
use losslens_core::{Compute, Precision};

/// Starts the device `choice` names and says which it is. GPU kernels (compiled, and their
/// autotune results) are kept in the kernel cache beside the dataset cache `cache_dir`
/// ([`kernel_cache_dir`]), so a GPU pays their first-use cost once.
pub fn select_device_cached(choice: DeviceChoice, cache_dir: Option<&Path>) -> Result<device::SelectedDevice> {
    if choice != DeviceChoice::Cpu {
        let dir = kernel_cache_dir(cache_dir);
        device::use_kernel_cache(&dir).with_context(|| format!("the kernel cache in {}", dir.display()))?;
    }
    let selected = pollster::block_on(device::select(choice)).context("starting the compute device")?;
    tracing::info!("computing on {}", selected.name);
    Ok(selected)
}

/// [`select_device_cached`] with the default caches.
pub fn select_device(choice: DeviceChoice) -> Result<device::SelectedDevice> {
    select_device_cached(choice, None)
}

/// The default folder for decoded-image caches: `$XDG_CACHE_HOME/losslens/datasets`, else
/// `~/.cache/losslens/datasets`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("losslens")
        .join("datasets")
}

/// Where GPU kernels are kept: `kernels/` beside the dataset cache (`~/.cache/losslens/kernels`
/// by default; `DIR/../kernels` for `--cache-dir DIR/datasets`, `DIR/kernels` for any other
/// `--cache-dir DIR`), never in a build folder.
pub fn kernel_cache_dir(cache_dir: Option<&Path>) -> PathBuf {
    let datasets = cache_dir.map(Path::to_path_buf).unwrap_or_else(default_cache_dir);
    match (datasets.file_name(), datasets.parent()) {
        (Some(name), Some(parent)) if name == "datasets" => parent.join("kernels"),
        _ => datasets.join("kernels"),
    }
}

/// Options every analysis takes.
#[derive(Debug, Clone, Args)]
pub struct ComputeArgs {
    /// Device to compute on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Floating-point precision of the computation.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl ComputeArgs {
    /// Starts the chosen device and says which it is.
    pub fn compute_on(&self) -> Result<(Compute, device::SelectedDevice)> {
        let precision = self.precision;
        let device = match (self.device, precision) {
            (DeviceChoice::Gpu, Precision::F64) => bail!("--precision f64 runs on the CPU only; use --device cpu"),
            (_, Precision::F64) => DeviceChoice::Cpu,
            (device, _) => device,
        };
        let selected = select_device(device)?;
        Ok((Compute::new(selected.device.clone(), precision), selected))
    }

    /// The precision's name.
    pub fn precision_name(&self) -> &'static str {
        match self.precision {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// Prints `value` as one line of JSON.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// What every JSON result carries: which device ran it, in which precision.
#[derive(Debug, serde::Serialize)]
pub struct Header<'a> {
    /// `cpu` or `gpu`.
    pub device: &'static str,
    /// The device's name.
    pub device_name: &'a str,
    /// `f32` or `f64`.
    pub precision: &'static str,
}

/// One JSON result: the [`Header`] fields and the body's fields in one object.
#[derive(Debug, serde::Serialize)]
struct Report<'a, T> {
    #[serde(flatten)]
    header: Header<'a>,
    #[serde(flatten)]
    body: T,
}

/// Prints `body` with the header fields as one line of JSON.
pub fn print_report<T: serde::Serialize>(
    compute: &ComputeArgs,
    device: &device::SelectedDevice,
    body: T,
) -> Result<()> {
    let report = Report {
        header: Header {
            device: device.kind,
            device_name: &device.name,
            precision: compute.precision_name(),
        },
        body,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
