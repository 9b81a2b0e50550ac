//! `losslens train --nodes 2` as two MPI processes on this machine (`mpirun`, CPU backend):
//! the same weights, bit for bit, as one process whose batch is split between two devices; a
//! rank killed in the middle ends the job with MPI's report, and the job started again with
//! `--resume` continues from the last checkpoint to the same weights; `--nodes` without a
//! launcher is refused, and an unreachable node fails at once.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use losslens_core::train::{RunDir, TrainOptions, train};

use crate::common::*;

const SETTINGS: [&str; 16] = [
    "--data",
    "procedural:classes=3,per-class=40,test-per-class=5,size=16,seed=7",
    "--model",
    "small",
    "--epochs",
    "4",
    "--batch-size",
    "32",
    "--lr",
    "0.4",
    "--warmup-epochs",
    "0.5",
    "--holdout",
    "0",
    "--device",
    "cpu",
];

/// `mpirun -n 2 losslens train --out OUT --nodes 2 SETTINGS extra` (one thread per process).
fn mpirun(out: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["--oversubscribe", "-n", "2", "-x", "RAYON_NUM_THREADS=1"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .arg(env!("CARGO_BIN_EXE_losslens"))
        .args(["train", "--out", s(out), "--nodes", "2"])
        .args(SETTINGS)
        .args(extra);
    command
}

/// Every trained parameter of the run in `dir` (each process keeps its own batch-norm running
/// statistics).
fn weights(dir: &Path) -> Vec<f32> {
    let trained = RunDir::new(dir).load(&Device::flex()).unwrap();
    losslens_core::model::trainable_values(&trained.model).unwrap()
}

fn assert_same_weights(a: &Path, b: &Path, tolerance: f32) {
    let (x, y) = (weights(a), weights(b));
    assert_eq!(x.len(), y.len());
    let worst = x
        .iter()
        .zip(&y)
        .map(|(p, q)| (p - q).abs() / p.abs().max(1e-2))
        .fold(0.0f32, f32::max);
    assert!(worst <= tolerance, "weights differ by {worst} (relative)");
}

fn epochs(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn two_mpi_processes_train_like_one_that_splits_the_batch_and_resume_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes");
    let output = mpirun(&nodes, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.matches("done: 4 epochs").count(), 1, "rank 0 reports: {stderr}");
    assert_eq!(epochs(&nodes), [1, 2, 3, 4]);

    // One process, each batch split between two devices: the same training.
    let config = RunDir::new(&nodes).config().unwrap();
    let one = dir.path().join("one");
    // On one CPU thread, as each MPI process runs: every sum in the same order.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        let split = TrainOptions {
            replicas: vec![Device::flex()],
            ..TrainOptions::default()
        };
        train(&config, &one, &split, &Device::flex(), &mut |_| {})
    })
    .unwrap();
    assert_same_weights(&one, &nodes, 0.0);

    // A rank killed (SIGKILL) after the second checkpoint ends the job with MPI's report.
    let killed = dir.path().join("killed");
    let job = mpirun(&killed, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // (metrics.jsonl is written after the epoch's checkpoint is complete.)
    while epochs(&killed).len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(120), "no second checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    let rank = children_of(job.id()).pop().expect("mpirun's ranks");
    Command::new("kill").args(["-9", &rank.to_string()]).status().unwrap();
    let output = job.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("signal 9") || stderr.contains("Killed"), "{stderr}");
    let done = epochs(&killed).len();
    assert!((2..4).contains(&done), "{done} epochs before the kill");

    // Started again with --resume: every rank continues from the same checkpoint.
    let output = mpirun(&killed, &["--resume"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("resuming after epoch {done}")), "{stderr}");
    assert_eq!(epochs(&killed), [1, 2, 3, 4]);
    assert_same_weights(&nodes, &killed, 0.0);
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so read after the last ')'.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(pid) {
            children.push(child);
        }
    }
    children.sort();
    children
}

#[test]
fn nodes_without_a_launcher_zero_or_unreachable_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = vec!["train", "--out", s(&out), "--nodes", "2"];
    args.extend(SETTINGS);
    fails_with(&args, &["--nodes 2", "mpirun -n 2"]);
    args[4] = "0";
    fails_with(&args, &["nodes", "at least 1"]);
    assert!(!out.exists());

    // An unreachable node: the launcher's own error, at once, and nothing written.
    let output = Command::new("mpirun")
        .args(["--host", "nosuchhost.invalid:1,localhost:1", "-n", "2"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .arg(env!("CARGO_BIN_EXE_losslens"))
        .args(["train", "--out", s(&out), "--nodes", "2"])
        .args(SETTINGS)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        ["nosuchhost", "daemon", "rsh"].iter().any(|w| stderr.contains(w)),
        "{stderr}"
    );
    assert!(!out.exists());
}
