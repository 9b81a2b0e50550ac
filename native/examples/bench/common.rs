//! What every benchmark shares: where the baselines' interpreter and scripts are, where
//! measurements are recorded, and the kernel cache.

use std::path::{Path, PathBuf};

/// The Python interpreter of the baselines: `$LOSSLENS_PYTHON` (the environment that
/// `ensure_python bench` in `scripts/env.sh` makes), else `python3` on `PATH`.
pub fn python() -> std::ffi::OsString {
    std::env::var_os("LOSSLENS_PYTHON").unwrap_or_else(|| "python3".into())
}

/// A baseline script: in `$LOSSLENS_BENCH_SCRIPTS` (a bundle copied to another machine), else in
/// `native/examples/` of the source tree.
pub fn script(name: &str) -> PathBuf {
    std::env::var_os("LOSSLENS_BENCH_SCRIPTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"))
        .join(name)
}

/// Appends one measurement as a JSON line to `$LOSSLENS_BENCH_JSON`, when it is set
/// (`scripts/gpu-bench` collects them into its table).
pub fn record(value: serde_json::Value) {
    if let Some(path) = std::env::var_os("LOSSLENS_BENCH_JSON") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("$LOSSLENS_BENCH_JSON");
        writeln!(file, "{value}").expect("$LOSSLENS_BENCH_JSON");
    }
}

/// Keeps GPU kernels in losslens' kernel cache (`$LOSSLENS_KERNEL_CACHE`, else
/// `~/.cache/losslens/kernels`), as the command line does.
pub fn kernel_cache() {
    let dir = std::env::var_os("LOSSLENS_KERNEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/losslens/kernels")));
    if let Some(dir) = dir {
        losslens_core::device::use_kernel_cache(&dir).expect("kernel cache");
    }
}
