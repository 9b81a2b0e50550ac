//! `losslens devices`: the compute devices this build can use, how each computes (graphics API,
//! kernel compiler, f16 and f16 tensor-core support), and which one `--device auto` takes.

use anyhow::Result;
use clap::Args;
use losslens_core::device::{self, DeviceChoice, DeviceReport};

use crate::common::select_device;
use crate::table::Table;

/// Options of `losslens devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `losslens devices`.
pub fn run(args: DevicesArgs) -> Result<()> {
    let mut list = vec![DeviceReport::cpu()];
    #[cfg(feature = "gpu")]
    list.extend(device::adapters());
    #[cfg(feature = "cuda")]
    if let Ok(gpu) = device::cuda(0) {
        list.push(gpu.report);
    }
    let auto = select_device(DeviceChoice::Auto)?;
    if args.json {
        let value = serde_json::json!({ "devices": list, "auto": auto.report });
        println!("{value}");
        return Ok(());
    }
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut table = Table::new(["device", "backend", "compiler", "f16", "f16 tensor cores", "software"]);
    for d in &list {
        table.row([
            d.name.clone(),
            d.backend.clone(),
            d.compiler.clone(),
            yes(d.f16),
            yes(d.tensor_cores_f16),
            yes(d.software),
        ]);
    }
    println!("{}", table.render());
    println!("--device auto computes on {}", auto.name);
    if !cfg!(feature = "gpu") {
        println!("this build has no GPU backend (build with the default `gpu` feature)");
    }
    Ok(())
}
