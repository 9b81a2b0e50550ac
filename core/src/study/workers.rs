//! Sharing one study between worker processes on shared storage, started by a cluster's
//! scheduler (a Slurm job array, a Kubernetes indexed Job): no coordinator process, only files
//! in the study's output folder, `OUT/work/`.
//!
//! Every unit of a study (a tuning run, a run's training and measurements, one objective's
//! fine-tuning on one target, CKA between the networks) has a name (see `runner`), and:
//!
//! - `<unit>.done` says that it finished under the study's current settings (a record keyed by
//!   the whole study file). What it produced lies in its own records, which every worker reuses.
//! - `<unit>.lock.<generation>` is a worker's claim on it ([`Share::Claim`]), created with
//!   `create_new` (exclusive creation, atomic on local file systems and on NFS v3 and later), and
//!   kept alive by a heartbeat thread that rewrites it every quarter of the lease. A claim whose
//!   file has not changed for a whole lease, timed by the observing worker's own monotonic clock
//!   (so the nodes' clocks need not agree), belongs to a worker that died: the next generation is
//!   created, again exclusively, so exactly one worker takes the unit over, and it resumes from
//!   the unit's last checkpoint. A claim made on the same machine (host and process namespace)
//!   by a process that no longer exists is taken over at once. A worker that finds a newer
//!   generation than its own (it stalled for longer than its lease) stops the unit's training
//!   before it writes anything more.
//!
//! Under [`Share::Fixed`] worker `I` of `N` does the units whose place in the plan is `I` modulo
//! `N` (claiming them as above, so claiming workers can join it), and waits for other workers'
//! units that its own depend on.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::study::store::{Marker, Record, Saved};

/// The folder of a study's output that holds the workers' claims and the finished units' marks.
pub const WORK_DIR: &str = "work";

/// How the units of a study are shared between processes.
#[derive(Debug, Clone, PartialEq)]
pub enum Share {
    /// This process does every unit, then writes the results (the default).
    Alone,
    /// This process is one worker of a fixed number. It claims its units too (with the default
    /// lease), so that claiming workers may join, and take over its units should it die.
    Fixed(WorkerSlot),
    /// This process claims any free unit, through a lock file kept alive by a heartbeat.
    Claim(ClaimConfig),
    /// This process does no unit: it writes the results of a study whose units are all finished,
    /// else names the unfinished ones.
    Collect,
}

/// Worker `index` of `count`, written `I/N`; `index` counts from 0, like Slurm's
/// `SLURM_ARRAY_TASK_ID` (with `--array=0-(N-1)`) and Kubernetes' `JOB_COMPLETION_INDEX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSlot {
    /// This worker, in `0..count`.
    pub index: usize,
    /// Workers in all, at least 1.
    pub count: usize,
}

impl WorkerSlot {
    /// Whether the unit at `place` of the plan belongs to this worker.
    pub fn owns(&self, place: usize) -> bool {
        place % self.count == self.index
    }
}

impl fmt::Display for WorkerSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for WorkerSlot {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid_setting("worker", text, why.to_string());
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| bad("write the worker as I/N: worker I (from 0) of N workers, e.g. 0/4"))?;
        let parse = |s: &str| s.trim().parse::<usize>();
        let (Ok(index), Ok(count)) = (parse(index), parse(count)) else {
            return Err(bad("I and N of I/N must be whole numbers, e.g. 0/4"));
        };
        if count == 0 {
            return Err(bad("N of I/N is the number of workers, at least 1"));
        }
        if index >= count {
            return Err(bad(
                "I of I/N counts from 0 and must be below N (the last of 4 workers is 3/4)",
            ));
        }
        Ok(Self { index, count })
    }
}

/// Settings of a claiming worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimConfig {
    /// This worker's name in its claims (shown to the others); by default the host name and
    /// the process id.
    pub name: String,
    /// How long a claim stays valid without a heartbeat: a worker that dies holds its unit this
    /// long before another takes it over. Default 10 minutes; it must exceed the longest pause of
    /// a live worker (the heartbeat runs on its own thread, so only a stopped process or shared
    /// storage that blocks writes pauses it).
    pub lease: Duration,
}

impl ClaimConfig {
    /// The default lease.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(600);

    /// A worker named after this host and process, with `lease`.
    pub fn new(lease: Duration) -> Self {
        Self {
            name: format!("{}-{}", host_name(), std::process::id()),
            lease,
        }
    }
}

/// This host's name: `$HOSTNAME`, else `/etc/hostname`, else `worker`.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_string())
}

/// Where this process's id means something: the host and its process namespace
/// (`/proc/self/ns/pid`), so that a worker that finds a claim made in the same place can tell
/// whether its process still exists. None where there is no `/proc`.
fn process_space() -> Option<String> {
    static SPACE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SPACE
        .get_or_init(|| {
            let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
            Some(format!("{} {}", host_name(), namespace.display()))
        })
        .clone()
}

/// Whether the claim `text` was made in this process space by a process that no longer exists
/// (a worker killed on this machine): it is taken over at once instead of after the lease. A
/// zombie or a reused process id keeps the claim until the lease runs out.
fn holder_is_gone(text: &str) -> bool {
    let Ok(claim) = serde_json::from_str::<ClaimText>(text) else {
        return false;
    };
    claim.space.is_some()
        && claim.space == process_space()
        && claim.pid != std::process::id()
        && !Path::new("/proc").join(claim.pid.to_string()).exists()
}

/// What [`Board::take`] found for a unit.
pub(crate) enum Take {
    /// This process does it; under [`Share::Claim`] while it holds the claim.
    Mine(Option<Claim>),
    /// Another worker holds a live claim on it.
    Busy,
    /// It belongs to another worker ([`Share::Fixed`]) or to none ([`Share::Collect`]).
    NotMine,
}

/// The shared state of a study's units in `OUT/work/`, as one worker sees it.
pub(crate) struct Board {
    dir: PathBuf,
    /// The key of the study's settings: a unit is finished only under it.
    key: String,
    share: Share,
    /// How this worker claims the units it does: with a lock file even as a fixed worker, so that
    /// fixed and claiming workers can share one study. None alone or collecting.
    claims: Option<ClaimConfig>,
    /// Other workers' claims as last seen: their text, and since when it is unchanged (this
    /// process's clock).
    seen: HashMap<PathBuf, (String, Instant)>,
}

impl Board {
    /// The board of the study in `out` whose settings have the key `key`; a folder this process
    /// cannot write is refused before any work starts.
    pub fn open(out: &Path, share: Share, key: String) -> Result<Self> {
        let dir = out.join(WORK_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let probe = dir.join(format!(".probe-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| Error::io(&dir, e))?;
        Ok(Self::look(out, share, key))
    }

    /// The board of the study in `out` as it is, to look at only: nothing is created.
    pub fn look(out: &Path, share: Share, key: String) -> Self {
        let claims = match &share {
            Share::Alone | Share::Collect => None,
            Share::Fixed(_) => Some(ClaimConfig::new(ClaimConfig::DEFAULT_LEASE)),
            Share::Claim(config) => Some(config.clone()),
        };
        Self {
            dir: out.join(WORK_DIR),
            key,
            share,
            claims,
            seen: HashMap::new(),
        }
    }

    /// Whether the unit at `place` of the plan is this worker's to do (under [`Share::Claim`]:
    /// any unit may be).
    pub fn owns(&self, place: usize) -> bool {
        match &self.share {
            Share::Alone | Share::Claim(_) => true,
            Share::Fixed(slot) => slot.owns(place),
            Share::Collect => false,
        }
    }

    /// How this worker shares the study.
    pub fn share(&self) -> &Share {
        &self.share
    }

    /// How long a worker with nothing to do waits before it looks again.
    pub fn poll_interval(&self) -> Duration {
        match &self.share {
            Share::Claim(c) => (c.lease / 4).clamp(Duration::from_millis(50), Duration::from_secs(10)),
            _ => Duration::from_secs(2),
        }
    }

    fn done_record(&self, unit: &str) -> Record {
        Record::new(self.dir.join(format!("{unit}.done")), self.key.clone())
    }

    /// Whether `unit` finished under the study's current settings.
    pub fn is_done(&self, unit: &str) -> bool {
        matches!(self.done_record(unit).read::<Marker>(), Saved::Same(_))
    }

    /// Marks `unit` finished.
    pub fn mark_done(&self, unit: &str) -> Result<()> {
        self.done_record(unit).write(&Marker {})
    }

    /// The claim files of `unit`, oldest generation first.
    fn generations(&self, unit: &str) -> Result<Vec<(u64, PathBuf)>> {
        generations(&self.dir, unit)
    }

    /// Whether this process may do `unit` (the `place`-th of the plan) now; shared, it is
    /// claimed, or taken over from a worker whose claim lapsed.
    pub fn take(&mut self, unit: &str, place: usize) -> Result<Take> {
        if !self.owns(place) {
            return Ok(Take::NotMine);
        }
        let Some(config) = self.claims.clone() else {
            return Ok(Take::Mine(None));
        };
        let generations = self.generations(unit)?;
        let Some((generation, path)) = generations.last() else {
            return self.claim(unit, 1, &config);
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let now = Instant::now();
        let seen = self.seen.entry(path.clone()).or_insert_with(|| (text.clone(), now));
        let gone = holder_is_gone(&text);
        if !gone {
            if seen.0 != text {
                *seen = (text, now);
                return Ok(Take::Busy);
            }
            if now.duration_since(seen.1) < config.lease {
                return Ok(Take::Busy);
            }
        }
        let holder = serde_json::from_str::<ClaimText>(&text)
            .map(|c| c.worker)
            .unwrap_or_else(|_| "an unknown worker".to_string());
        let next = generation
            .checked_add(1)
            .ok_or_else(|| Error::format(path, "a claim generation this large was not written by losslens"))?;
        let taken = self.claim(unit, next, &config)?;
        if matches!(taken, Take::Mine(_)) {
            let why = if gone {
                "its process on this machine is gone".to_string()
            } else {
                format!("it was not renewed for {} s", config.lease.as_secs_f64())
            };
            tracing::warn!(
                "{unit}: the claim of {holder} lapsed ({why}); {} takes the unit over",
                config.name
            );
        }
        Ok(taken)
    }

    /// Creates generation `generation` of `unit`'s claim, unless another worker did first.
    fn claim(&self, unit: &str, generation: u64, config: &ClaimConfig) -> Result<Take> {
        let path = self.dir.join(format!("{unit}.lock.{generation}"));
        let created = std::fs::OpenOptions::new().write(true).create_new(true).open(&path);
        let mut file = match created {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(Take::Busy),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let text = ClaimText::new(&config.name, 0).to_json();
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        Ok(Take::Mine(Some(Claim::hold(
            self.dir.clone(),
            unit.to_string(),
            generation,
            config.clone(),
            self.poll_interval(),
        ))))
    }

    /// Who holds `unit` now (the latest generation's worker), if anyone.
    pub fn holder(&self, unit: &str) -> Option<String> {
        let generations = self.generations(unit).ok()?;
        let (_, path) = generations.last()?;
        let text = std::fs::read_to_string(path).ok()?;
        Some(
            serde_json::from_str::<ClaimText>(&text)
                .map(|c| c.worker)
                .unwrap_or_else(|_| "a worker".to_string()),
        )
    }
}

/// The claim files `<unit>.lock.<generation>` in `dir`, oldest first.
fn generations(dir: &Path, unit: &str) -> Result<Vec<(u64, PathBuf)>> {
    let prefix = format!("{unit}.lock.");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(generation) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|g| g.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((generation, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// What a claim file says.
#[derive(serde::Serialize, serde::Deserialize)]
struct ClaimText {
    /// The worker that holds the claim.
    worker: String,
    /// Its process id.
    pid: u32,
    /// Where the process id means something ([`process_space`]).
    #[serde(default)]
    space: Option<String>,
    /// Heartbeats so far: the text changes with every one.
    beat: u64,
}

impl ClaimText {
    fn new(worker: &str, beat: u64) -> Self {
        Self {
            worker: worker.to_string(),
            pid: std::process::id(),
            space: process_space(),
            beat,
        }
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A unit claimed by this process, kept alive by a heartbeat thread until it is dropped; then
/// its claim files are removed (after the unit is marked finished, or so that another worker can
/// take an unfinished one at once).
pub(crate) struct Claim {
    dir: PathBuf,
    unit: String,
    generation: u64,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Claim {
    fn hold(dir: PathBuf, unit: String, generation: u64, config: ClaimConfig, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (stop, lost) = (stop.clone(), lost.clone());
            let (dir, unit) = (dir.clone(), unit.clone());
            std::thread::spawn(move || beat(&dir, &unit, generation, &config, every, &stop, &lost))
        };
        Self {
            dir,
            unit,
            generation,
            stop,
            lost,
            heartbeat: Some(heartbeat),
        }
    }

    /// Set once another worker has taken the unit over (this one stalled past its lease): the
    /// unit's training must stop before it writes anything more.
    pub fn lost(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }
}

/// The heartbeat of a claim: rewrites its file every `every` (a new beat count, so the text
/// changes) until `stop`; sets `lost` and stops when a newer generation appears.
fn beat(
    dir: &Path,
    unit: &str,
    generation: u64,
    config: &ClaimConfig,
    every: Duration,
    stop: &AtomicBool,
    lost: &AtomicBool,
) {
    let path = dir.join(format!("{unit}.lock.{generation}"));
    let mut count = 0;
    loop {
        let started = Instant::now();
        while started.elapsed() < every {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20).min(every));
        }
        let newer = generations(dir, unit).is_ok_and(|g| g.last().is_some_and(|(n, _)| *n > generation));
        if newer {
            tracing::error!(
                "{unit}: another worker took this unit over ({} stalled for longer than its lease)",
                config.name
            );
            lost.store(true, Ordering::Relaxed);
            return;
        }
        count += 1;
        if let Err(e) = crate::atomic::write(&path, ClaimText::new(&config.name, count).to_json().as_bytes()) {
            tracing::warn!("{unit}: the claim's heartbeat could not be written: {e}");
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.join();
        }
        if self.lost.load(Ordering::Relaxed) {
            // The unit is another worker's now, its claim files with it.
            return;
        }
        if let Ok(generations) = generations(&self.dir, &self.unit) {
            for (generation, path) in generations {
                if generation <= self.generation {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_slots_parse_and_refuse_by_name() {
        let slot: WorkerSlot = "2/3".parse().unwrap();
        assert_eq!(slot, WorkerSlot { index: 2, count: 3 });
        assert_eq!(slot.to_string(), "2/3");
        assert!(slot.owns(2) && slot.owns(5) && !slot.owns(3));
        for (bad, needle) in [
            ("4/3", "below N"),
            ("3/3", "below N"),
            ("1/0", "at least 1"),
            ("a/3", "whole numbers"),
            ("-1/3", "whole numbers"),
            ("3", "I/N"),
        ] {
            let e = bad.parse::<WorkerSlot>().unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("worker"), "{bad}: {e}");
        }
    }

    fn claiming(dir: &Path, name: &str, lease_ms: u64) -> Board {
        let share = Share::Claim(ClaimConfig {
            name: name.to_string(),
            lease: Duration::from_millis(lease_ms),
        });
        Board::open(dir, share, "key".to_string()).unwrap()
    }

    #[test]
    fn a_claim_is_exclusive_while_its_heartbeat_runs_and_is_taken_over_after_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = claiming(dir.path(), "a", 400);
        let mut b = claiming(dir.path(), "b", 400);
        let Take::Mine(Some(held)) = a.take("run-x", 0).unwrap() else {
            panic!("a free unit is claimed")
        };
        assert_eq!(b.holder("run-x").as_deref(), Some("a"));
        // Alive: the heartbeat changes the file, so the lease never runs out.
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(1200) {
            assert!(matches!(b.take("run-x", 0).unwrap(), Take::Busy));
            std::thread::sleep(Duration::from_millis(30));
        }
        // Dead (the heartbeat stops, the file stays): taken over once, after one lease.
        held.stop.store(true, Ordering::Relaxed);
        std::mem::forget(held);
        let started = Instant::now();
        let taken = loop {
            match b.take("run-x", 0).unwrap() {
                Take::Mine(Some(claim)) => break claim,
                Take::Busy => assert!(started.elapsed() < Duration::from_secs(5), "never taken over"),
                _ => panic!("a claiming worker may take any unit"),
            }
            std::thread::sleep(Duration::from_millis(30));
        };
        assert!(
            started.elapsed() >= Duration::from_millis(350),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(taken.generation, 2);
        assert!(matches!(a.take("run-x", 0).unwrap(), Take::Busy));
        // Finished: marked, released; the claim files are gone.
        b.mark_done("run-x").unwrap();
        drop(taken);
        assert!(a.is_done("run-x") && a.holder("run-x").is_none());
        let other_key = Board::open(dir.path(), Share::Alone, "other".to_string()).unwrap();
        assert!(!other_key.is_done("run-x"), "finished only under the same settings");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_claim_of_a_dead_process_on_this_machine_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut board = claiming(dir.path(), "b", 60_000);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let write = |unit: &str, space: Option<String>| {
            let text = ClaimText {
                worker: "a".into(),
                pid: dead,
                space,
                beat: 3,
            };
            std::fs::write(dir.path().join(WORK_DIR).join(format!("{unit}.lock.1")), text.to_json()).unwrap();
        };
        // Made here by a process that exited: taken at once, as generation 2.
        write("here", process_space());
        let Take::Mine(Some(claim)) = board.take("here", 0).unwrap() else {
            panic!("taken over at once")
        };
        assert_eq!(claim.generation, 2);
        // Made on another machine (or by an older losslens): only after the lease.
        write("there", Some("another-host pid:[1]".into()));
        assert!(matches!(board.take("there", 0).unwrap(), Take::Busy));
        write("old", None);
        assert!(matches!(board.take("old", 0).unwrap(), Take::Busy));
    }

    #[test]
    fn a_worker_that_stalled_past_its_lease_learns_that_it_lost_the_unit() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = claiming(dir.path(), "a", 200);
        let Take::Mine(Some(held)) = a.take("cka", 0).unwrap() else {
            panic!("a free unit is claimed")
        };
        // Another worker creates the next generation, as a takeover does.
        std::fs::write(dir.path().join(WORK_DIR).join("cka.lock.2"), b"{}").unwrap();
        let started = Instant::now();
        while !held.lost().load(Ordering::Relaxed) {
            assert!(started.elapsed() < Duration::from_secs(3), "the loss is noticed");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(held);
        assert!(
            dir.path().join(WORK_DIR).join("cka.lock.2").exists(),
            "the new holder's claim is not removed"
        );
    }

    #[test]
    fn fixed_workers_split_the_plan_and_collect_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let slot = WorkerSlot { index: 1, count: 3 };
        let mut board = Board::open(dir.path(), Share::Fixed(slot), "k".to_string()).unwrap();
        let mine: Vec<usize> = (0..7)
            .filter(|&p| matches!(board.take("u", p).unwrap(), Take::Mine(Some(_))))
            .collect();
        assert_eq!(mine, [1, 4]);
        // Its units are claimed like a claiming worker's.
        let Take::Mine(Some(_held)) = board.take("v", 4).unwrap() else {
            panic!("its own unit")
        };
        let mut other = claiming(dir.path(), "c", 60_000);
        assert!(matches!(other.take("v", 4).unwrap(), Take::Busy));
        let mut collect = Board::open(dir.path(), Share::Collect, "k".to_string()).unwrap();
        assert!(matches!(collect.take("u", 0).unwrap(), Take::NotMine));
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_that_cannot_be_written_is_refused_before_any_work() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join(WORK_DIR)).unwrap();
        std::fs::set_permissions(out.join(WORK_DIR), std::fs::Permissions::from_mode(0o555)).unwrap();
        let denied = std::fs::write(out.join(WORK_DIR).join("x"), b"").is_err();
        let result = Board::open(&out, Share::Alone, "k".to_string());
        std::fs::set_permissions(out.join(WORK_DIR), std::fs::Permissions::from_mode(0o755)).unwrap();
        if denied {
            // (Root may write anyway.)
            let e = result.err().expect("refused").to_string();
            assert!(e.contains("work"), "{e}");
        }
    }
}
