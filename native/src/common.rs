//! Options shared by the analysis commands: device, precision, output format.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use losslens_core::device::{self, DeviceChoice};
use losslens_core::{Compute, Precision};

/// Where to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The pure-Rust CPU backend.
    Cpu,
    /// A GPU through wgpu (Vulkan, Metal, DX12); fails if none is usable.
    Gpu,
    /// A GPU when one is usable, else the CPU.
    Auto,
}

impl DeviceArg {
    /// The core library's device choice.
    pub fn choice(self) -> DeviceChoice {
        match self {
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Gpu => DeviceChoice::Gpu,
            DeviceArg::Auto => DeviceChoice::Auto,
        }
    }

    /// Starts the chosen device.
    pub fn select(self) -> Result<device::SelectedDevice> {
        let selected = pollster::block_on(device::select(self.choice())).context("starting the compute device")?;
        tracing::info!("computing on {}", selected.name);
        Ok(selected)
    }
}

/// Arithmetic precision on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// 32-bit floats (every device).
    F32,
    /// 64-bit floats (CPU only).
    F64,
}

/// Options every analysis takes.
#[derive(Debug, Clone, Args)]
pub struct ComputeArgs {
    /// Device to compute on.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Floating-point precision of the computation.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl ComputeArgs {
    /// Starts the chosen device and says which it is.
    pub fn compute_on(&self) -> Result<(Compute, device::SelectedDevice)> {
        let precision = match self.precision {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F64 => Precision::F64,
        };
        let device = match (self.device, precision) {
            (DeviceArg::Gpu, Precision::F64) => bail!("--precision f64 runs on the CPU only; use --device cpu"),
            (_, Precision::F64) => DeviceArg::Cpu,
            (device, _) => device,
        };
        let selected = device.select()?;
        Ok((Compute::new(selected.device.clone(), precision), selected))
    }

    /// The precision's name.
    pub fn precision_name(&self) -> &'static str {
        match self.precision {
            PrecisionArg::F32 => "f32",
            PrecisionArg::F64 => "f64",
        }
    }
}

/// Prints `value` as one line of JSON.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// The JSON fields every result carries: which device ran it, in which precision.
pub fn header(compute: &ComputeArgs, device: &device::SelectedDevice) -> serde_json::Value {
    serde_json::json!({ "device": device.kind, "device_name": device.name, "precision": compute.precision_name() })
}

/// `base` with the fields of `extra` added (both objects).
pub fn merge(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (serde_json::Value::Object(b), serde_json::Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}
