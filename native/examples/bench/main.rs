//! losslens' benchmarks, each against its baseline in the same run on the same data, in one
//! program (built with the command line's features, so running it after `cargo build` rebuilds
//! nothing of burn):
//!
//! ```text
//! scripts/bench train [ARGS]      training steps against PyTorch (train.rs)
//! scripts/bench analyses [ARGS]   CKA, minibatch CKA and R² against numpy (analyses.rs)
//! scripts/bench probes [ARGS]     linear and kNN probes against scikit-learn (probes.rs)
//! scripts/bench devices           the adapters the benchmarks can run on
//! ```

mod analyses;
mod common;
mod probes;
mod train;

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "train" => train::run(rest),
        "analyses" => analyses::run(rest),
        "probes" => probes::run(rest),
        "devices" => {
            let mut list = vec![losslens_core::device::DeviceReport::cpu()];
            #[cfg(feature = "gpu")]
            list.extend(losslens_core::device::adapters());
            #[cfg(feature = "cuda")]
            list.extend(losslens_core::device::cuda(0).ok().map(|gpu| gpu.report));
            for device in list {
                println!("{}", device.describe());
            }
        }
        other => {
            eprintln!("unknown benchmark `{other}`: train, analyses, probes or devices");
            std::process::exit(2);
        }
    }
}
