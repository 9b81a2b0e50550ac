//! `losslens study` shared between worker processes on one output folder, as a cluster's
//! scheduler runs it: claiming workers finish a study with the same `results.json`, byte for
//! byte, as one process; a worker killed in the middle of a run leaves it to another, which takes
//! it over after the lease and resumes it from its checkpoint; fixed workers (`--worker I/N`)
//! do their share and `--collect` writes the results; bad worker settings are refused clearly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::*;

const STUDY: &str = r#"
name = "shared"
model = "small"
source = { format = "procedural", classes = 4, per_class = 40, size = 12, seed = 1, test_per_class = 6 }
objectives = [{ kind = "softmax" }, { kind = "logit-norm" }, { kind = "cosine-softmax" }]

[[targets]]
name = "other"
data = { format = "procedural", classes = 3, per_class = 20, size = 12, seed = 2, test_per_class = 6 }

[train]
epochs = 4
batch_size = 20
warmup_epochs = 0.5

[analysis]
separation_per_class = 12
sparsity_images = 8
feature_images = 24
"#;

/// The units of the study's second and third runs.
const LOGIT_NORM: &str = "run-logit-norm-temperature-0.04-s0";
const COSINE: &str = "run-cosine-softmax-loss-scaling-auto-temperature-0.05-s0";

/// `losslens study FILE --out OUT --device cpu` (one thread) with `extra` arguments.
fn worker(file: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut command = study_command(file, out);
    command.args(extra);
    command
}

fn finished(output: Output) -> (String, String) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success() && !stderr.contains("panicked"), "{stderr}");
    (stdout, stderr)
}

fn results(out: &Path) -> String {
    std::fs::read_to_string(out.join("results.json")).unwrap_or_else(|e| panic!("{}: {e}", out.display()))
}

/// Waits until `path` exists (at most two minutes).
fn wait_for(path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The study file in a fresh folder, and the single-process study's `results.json` there.
fn single_process() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("study.toml");
    std::fs::write(&file, STUDY).unwrap();
    let whole = dir.path().join("whole");
    finished(study_command(&file, &whole).output().unwrap());
    let expected = results(&whole);
    (dir, file, expected)
}

#[test]
fn three_claiming_workers_and_a_killed_one_give_the_single_process_results() {
    let (dir, file, expected) = single_process();

    // Three workers at once on one folder: every unit done by exactly one of them.
    let shared = dir.path().join("shared");
    let workers: Vec<_> = (0..3)
        .map(|_| {
            worker(&file, &shared, &["--claim", "--lease", "30"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let logs: Vec<String> = workers
        .into_iter()
        .map(|w| finished(w.wait_with_output().unwrap()).1)
        .collect();
    assert_eq!(results(&shared), expected, "the same results.json, byte for byte");
    for run in [
        "softmax",
        "logit-norm:temperature=0.04",
        "cosine-softmax:loss-scaling=auto,temperature=0.05",
    ] {
        let trained = logs
            .iter()
            .filter(|l| l.contains(&format!("] {run} seed 0: training")))
            .count();
        assert_eq!(trained, 1, "{run} is trained by one worker:\n{}", logs.join("\n---\n"));
    }
    let work = shared.join("work");
    let left: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".lock."))
        .collect();
    assert!(left.is_empty(), "claims are released: {left:?}");

    // A worker killed (SIGKILL) after the first run's second epoch: its claim is no longer
    // renewed, so a worker started afterwards on another node (another host name) takes the unit
    // over once the lease has run out, and resumes it from the checkpoint. (On the same machine
    // a claim whose process is gone is taken at once: a unit test checks that.)
    let killed = dir.path().join("killed");
    let mut first = spawn_quiet(worker(&file, &killed, &["--claim", "--lease", "2"]));
    let run = killed.join("runs/softmax-s0");
    wait_for(&run.join("checkpoint/epoch-0002"));
    wait_for(&killed.join("work/run-softmax-s0.lock.1"));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!killed.join("work/run-softmax-s0.done").exists());
    let started = Instant::now();
    let mut other_node = worker(&file, &killed, &["--claim", "--lease", "2"]);
    other_node.env("HOSTNAME", "other-node");
    let (_, stderr) = finished(other_node.output().unwrap());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "taken over only after the lease"
    );
    assert!(
        stderr.contains("run-softmax-s0: the claim of")
            && stderr.contains("not renewed for 2 s")
            && stderr.contains("other-node")
            && stderr.contains("takes the unit over"),
        "{stderr}"
    );
    assert_eq!(results(&killed), expected, "nothing lost");
    // Nothing run twice to completion: every epoch of the run is recorded once.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let epochs: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4], "{metrics}");
}

#[test]
fn workers_wait_for_the_tuning_and_the_runs_that_their_units_depend_on() {
    // Tuning runs, then runs on the chosen epochs, then fine-tuning of both seeds: every kind of
    // unit, each waiting for others, shared by two fixed and one claiming worker.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("study.toml");
    std::fs::write(
        &file,
        r#"
name = "dependent"
model = "small"
source = { format = "procedural", classes = 3, per_class = 30, size = 12, seed = 1, test_per_class = 6 }
objectives = [{ kind = "softmax" }, { kind = "sigmoid" }]
seeds = [0, 1]

[[targets]]
name = "other"
data = { format = "procedural", classes = 3, per_class = 20, size = 12, seed = 2, test_per_class = 6 }

[train]
batch_size = 20
warmup_epochs = 0.0

[analysis]
separation_per_class = 10
sparsity_images = 6
feature_images = 0

[tune]
seeds = 2
holdout_fraction = 0.25
max_epochs = 2

[finetune]
steps = 4
batch_size = 16
learning_rates = [0.001, 0.1]
weight_decays = [0.0]
validation_fraction = 0.25
checkpoints = 1
"#,
    )
    .unwrap();
    let whole = dir.path().join("whole");
    finished(study_command(&file, &whole).output().unwrap());
    let expected = results(&whole);
    let shared = dir.path().join("shared");
    let workers: Vec<_> = [
        &["--worker", "0/2"][..],
        &["--worker", "1/2"],
        &["--claim", "--lease", "30"],
    ]
    .into_iter()
    .map(|extra| {
        worker(&file, &shared, extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    })
    .collect();
    for w in workers {
        finished(w.wait_with_output().unwrap());
    }
    if !shared.join("results.json").exists() {
        // The fixed workers may finish their share before the last unit is done.
        finished(worker(&file, &shared, &["--collect"]).output().unwrap());
    }
    assert_eq!(results(&shared), expected);
}

#[test]
fn the_slurm_script_starts_workers_that_finish_the_study() {
    let (dir, file, expected) = single_process();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/cluster/slurm-study.sh");
    let out = dir.path().join("slurm");
    let task = |id: &str| {
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .args([s(&file), s(&out)])
            .env("LOSSLENS", env!("CARGO_BIN_EXE_losslens"))
            .env("LOSSLENS_DEVICE", "cpu")
            .env("LOSSLENS_LEASE", "30")
            .env("RAYON_NUM_THREADS", "1")
            .env("SLURM_ARRAY_TASK_ID", id)
            .env("SLURM_ARRAY_TASK_MIN", "0")
            .env("SLURM_ARRAY_TASK_COUNT", "2")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let tasks: Vec<_> = ["0", "1"].map(|id| task(id).spawn().unwrap()).into();
    for t in tasks {
        let (_, stderr) = finished(t.wait_with_output().unwrap());
        assert!(stderr.contains("--claim --lease 30"), "{stderr}");
    }
    assert_eq!(results(&out), expected);
    // A bad share is refused by the script itself.
    let refused = task("0").env("LOSSLENS_SHARE", "both").output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("claim or fixed"));
}

#[test]
fn cka_waits_only_for_the_main_runs_not_for_a_sweep_held_by_another_worker() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("study.toml");
    // Units: run-softmax-s0, the sweep's run, run-logit-norm-…-s0, cka (after the two main runs).
    let study = STUDY.replace(
        r#"{ kind = "logit-norm" }, { kind = "cosine-softmax" }"#,
        r#"{ kind = "cosine-softmax", temperature = 0.1, sweep = true }, { kind = "logit-norm" }"#,
    );
    std::fs::write(&file, study.replace("epochs = 4", "epochs = 1")).unwrap();
    let out = dir.path().join("out");
    finished(worker(&file, &out, &["--worker", "0/2"]).output().unwrap());
    let (plan, _) = finished(worker(&file, &out, &["--dry-run"]).output().unwrap());
    let sweep = plan
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("1  ")?.split(':').next())
        .expect("the sweep's unit")
        .to_string();
    assert!(
        sweep.contains("cosine-softmax") && plan.contains("cka: to do"),
        "{plan}"
    );
    // Another worker, on another machine, holds the sweep's run (its claim never changes, so it
    // lapses after the lease): CKA is done meanwhile, then the sweep is taken over.
    let claim = r#"{"worker":"elsewhere-1","pid":1,"space":"elsewhere pid:[1]","beat":0}"#;
    std::fs::write(out.join("work").join(format!("{sweep}.lock.1")), claim).unwrap();
    let (_, stderr) = finished(worker(&file, &out, &["--claim", "--lease", "3"]).output().unwrap());
    let cka = stderr
        .find("CKA between the networks")
        .unwrap_or_else(|| panic!("{stderr}"));
    let takeover = stderr.find("takes the unit over").unwrap_or_else(|| panic!("{stderr}"));
    assert!(cka < takeover, "CKA did not wait for the sweep:\n{stderr}");
    assert!(out.join("results.json").exists());
}

#[test]
fn fixed_workers_do_their_share_and_collect_writes_the_results() {
    let (dir, file, expected) = single_process();
    let out = dir.path().join("fixed");
    // Units: run-softmax-s0, run-logit-norm-…-s0, run-cosine-softmax-…-s0, cka; worker 0 of 2
    // does the first and the third.
    let (stdout, _) = finished(worker(&file, &out, &["--worker", "0/2", "--dry-run"]).output().unwrap());
    assert!(
        stdout.contains("run-softmax-s0: to do [mine]")
            && stdout.contains("run-logit-norm-temperature-0.04-s0: to do\n")
            && stdout.contains(&format!("cka: to do, after run-softmax-s0 {LOGIT_NORM} {COSINE}\n")),
        "{stdout}"
    );
    assert!(!out.exists(), "a dry run changes nothing");
    let (stdout, stderr) = finished(worker(&file, &out, &["--worker", "0/2"]).output().unwrap());
    assert!(
        stdout.contains(&format!(
            "worker 0/2: its units are finished; 2 units are other workers' ({LOGIT_NORM}, cka)"
        )),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("] softmax seed 0: training")
            && !stderr.contains("logit-norm:temperature=0.04 seed 0: training")
    );
    assert!(!out.join("results.json").exists());
    fails_with(
        &["study", s(&file), "--out", s(&out), "--collect", "--device", "cpu"],
        &["not finished", "2 units are left", &format!("{LOGIT_NORM}, cka")],
    );
    finished(worker(&file, &out, &["--worker", "1/2"]).output().unwrap());
    assert_eq!(results(&out), expected);
    std::fs::remove_file(out.join("results.json")).unwrap();
    let (stdout, stderr) = finished(worker(&file, &out, &["--collect"]).output().unwrap());
    assert!(!stderr.contains(": training"), "collecting trains nothing:\n{stderr}");
    assert!(stdout.contains("results:"), "{stdout}");
    assert_eq!(results(&out), expected);
    let (stdout, _) = finished(worker(&file, &out, &["--dry-run"]).output().unwrap());
    assert_eq!(stdout.matches(": finished").count(), 4, "{stdout}");
}

#[test]
fn bad_worker_settings_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("study.toml");
    std::fs::write(&file, STUDY).unwrap();
    let out = dir.path().join("out");
    let study = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["study", s(&file), "--out", s(&out), "--device", "cpu"];
        args.extend(extra);
        args.into_iter().map(String::from).collect()
    };
    for (extra, needles) in [
        (&["--worker", "4/3"][..], &["worker", "below N"][..]),
        (&["--worker", "1/0"], &["at least 1"]),
        (&["--worker", "x"], &["I/N"]),
        (&["--worker", "0/2", "--claim"], &["cannot be used with"]),
        (&["--claim", "--lease", "0"], &["lease", "positive"]),
        (&["--claim", "--lease", "nan"], &["lease", "positive"]),
        (&["--lease", "5"], &["--claim"]),
    ] {
        let args = study(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&args, needles);
        assert!(!out.exists(), "{extra:?} wrote nothing");
    }
    // A shared folder this process cannot write: refused before any training.
    let taken = dir.path().join("taken");
    std::fs::write(&taken, b"a file, not a folder").unwrap();
    fails_with(
        &["study", s(&file), "--out", s(&taken), "--claim", "--device", "cpu"],
        &["taken"],
    );
    assert_eq!(std::fs::read(&taken).unwrap(), b"a file, not a folder");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&out).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o555)).unwrap();
        let writable = std::fs::write(out.join("probe"), b"").is_ok();
        if !writable {
            let args = study(&["--claim"]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            fails_with(&args, &["work", "ermission"]);
        }
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!out.join("runs").exists());
    }
}
