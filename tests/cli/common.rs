//! What every command's tests share: running the binary, reading its JSON, expecting clear
//! errors, and small feature files.

use std::path::{Path, PathBuf};
use std::process::Command;

use losslens_core::features::{Array, FeatureFile};
use serde_json::Value;

pub(crate) fn losslens(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_losslens"))
        .args(args)
        .output()
        .expect("runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!stderr.contains("panicked"), "losslens panicked on {args:?}:\n{stderr}");
    (out.status.success(), stdout, stderr)
}

pub(crate) fn json(args: &[&str]) -> Value {
    let (ok, stdout, stderr) = losslens(args);
    assert!(ok, "losslens {args:?} failed:\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{stdout}"))
}

pub(crate) fn json_with_env(args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_losslens"))
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "losslens {args:?} failed:\n{stderr}"
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON object")
}

pub(crate) fn fails_with(args: &[&str], needles: &[&str]) {
    let (ok, _, stderr) = losslens(args);
    assert!(!ok, "losslens {args:?} should fail");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "error for {args:?} should mention `{needle}`:\n{stderr}"
        );
    }
}

/// `losslens study FILE --out OUT` on the CPU with one thread, so that float sums run in the same
/// order in every process (bit-identical resumes).
pub(crate) fn study_command(file: &Path, out: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_losslens"));
    command
        .env("RAYON_NUM_THREADS", "1")
        .args(["study", s(file), "--out", s(out), "--device", "cpu"]);
    command
}

/// Starts `command` with its output discarded, to be killed.
pub(crate) fn spawn_quiet(mut command: Command) -> std::process::Child {
    command
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Deterministic features: `n` examples of `p` features, 3 classes.
pub(crate) fn features(n: usize, p: usize, phase: f32) -> Vec<f32> {
    (0..n * p)
        .map(|i| ((i / p) % 3) as f32 + (phase + 0.37 * i as f32).sin())
        .collect()
}

pub(crate) fn write(dir: &Path, name: &str, arrays: Vec<(&str, Array)>) -> PathBuf {
    let path = dir.join(name);
    let arrays = arrays.into_iter().map(|(n, a)| (n.to_string(), a)).collect();
    FeatureFile::new(&path, arrays, None).save(&path).unwrap();
    path
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
