//! The analyses the explorer runs, on the device the browser offers, in pieces: between pieces
//! the page gets a turn (it stays responsive, shows progress, and a Cancel click is seen).

use std::cell::Cell;

use losslens_core::Compute;
use losslens_core::analysis::{CkaConfig, Classes, Distance, Separation, class_separation, linear_cka};
use losslens_core::device::{DeviceChoice, select};
use losslens_core::features::Layer;
use losslens_core::probe::split::stratified_split;
use losslens_core::probe::{KnnConfig, KnnResult, knn_probe_paced};
use losslens_core::{Error, Pacer};

use crate::browser::yield_now;

/// The device analyses run on, and how to name it to the user.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The device in single precision.
    pub compute: Compute,
    /// `WebGPU: <adapter>` or `CPU`.
    pub label: String,
}

impl Engine {
    /// Starts the device `choice` asks for: WebGPU when the browser has an adapter (`Auto` skips
    /// software adapters), the CPU backend otherwise.
    pub async fn start(choice: DeviceChoice) -> Result<Self, String> {
        let selected = select(choice).await.map_err(|e| e.to_string())?;
        let label = if selected.kind == "gpu" {
            format!("WebGPU: {}", selected.name)
        } else {
            "CPU (WebAssembly)".to_string()
        };
        Ok(Self {
            compute: Compute::new(selected.device, Default::default()),
            label,
        })
    }

    /// The CPU backend.
    pub fn cpu() -> Self {
        Self {
            compute: Compute::cpu(),
            label: "CPU (WebAssembly)".to_string(),
        }
    }
}

thread_local! {
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// A running analysis; starting another or [`cancel`]ling ends it at its next piece.
#[derive(Debug)]
pub struct Job {
    id: u64,
}

/// Why a job ended without a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The user cancelled it (or started another).
    Cancelled,
    /// It failed; the message says why.
    Message(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Message(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure::Message(message.to_string())
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        match error {
            Error::Cancelled => Failure::Cancelled,
            error => Failure::Message(error.to_string()),
        }
    }
}

impl Job {
    /// Starts a job (and ends the one before).
    pub fn start() -> Self {
        let id = CURRENT.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        Self { id }
    }

    /// [`Error::Cancelled`] once the job was cancelled.
    pub fn check(&self) -> Result<(), Error> {
        if CURRENT.with(Cell::get) == self.id {
            Ok(())
        } else {
            Err(Error::Cancelled)
        }
    }
}

/// Ends the running job at its next piece.
pub fn cancel() {
    CURRENT.with(|c| c.set(c.get() + 1));
}

/// Linear CKA between every layer of `a` (rows) and every layer of `b` (columns), one pair per
/// piece; `progress(done, total)` after each.
///
/// # Shapes
/// - every layer has the same number of rows; returns `[a.len()][b.len()]`
pub async fn cka_matrix(
    compute: &Compute,
    a: &[Layer],
    b: &[Layer],
    config: &CkaConfig,
    job: &Job,
    progress: &dyn Fn(usize, usize),
) -> Result<Vec<Vec<f64>>, Failure> {
    let total = a.len() * b.len();
    let mut out = vec![vec![f64::NAN; b.len()]; a.len()];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            job.check()?;
            out[i][j] = linear_cka(compute, x, y, config).await?.cka;
            progress(i * b.len() + j + 1, total);
            yield_now().await;
        }
    }
    Ok(out)
}

/// Class separation R² of each layer under `distance`, one layer per piece.
pub async fn separation(
    compute: &Compute,
    layers: &[Layer],
    labels: &[usize],
    distance: Distance,
    job: &Job,
    progress: &dyn Fn(usize, usize),
) -> Result<Vec<Separation>, Failure> {
    let classes = Classes::new(labels.to_vec(), None)?;
    let mut out = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        job.check()?;
        out.push(class_separation(compute, layer, &classes, distance).await?);
        progress(i + 1, layers.len());
        yield_now().await;
    }
    Ok(out)
}

/// Paces a core computation in the page: reports progress, gives the browser a turn, and stops
/// when the job was cancelled.
pub struct PagePacer<'a> {
    /// The job.
    pub job: &'a Job,
    /// Progress `(done, total)`.
    pub progress: &'a dyn Fn(usize, usize),
}

impl Pacer for PagePacer<'_> {
    async fn pause(&self, done: usize, total: usize) -> losslens_core::Result<()> {
        (self.progress)(done, total);
        yield_now().await;
        self.job.check()
    }
}

/// Similarities per block of a kNN probe in the page: 2²² (a 2,048-row block of queries
/// against 2,048 reference rows), so the page gets a turn about every second on a slow CPU.
pub const KNN_BLOCK_ELEMENTS: usize = 1 << 22;

/// Fraction of each class held out as the test part when a kNN probe gets one file.
pub const KNN_TEST_FRACTION: f64 = 0.2;

/// kNN probe on a train/test pair, or on a stratified split of `train` (20 % of each class as
/// test, seed 0) when `test` is `None`; in blocks of [`KNN_BLOCK_ELEMENTS`] similarities.
pub async fn knn(
    compute: &Compute,
    train: (&Layer, &[usize]),
    test: Option<(&Layer, &[usize])>,
    config: &KnnConfig,
    job: &Job,
    progress: &dyn Fn(usize, usize),
) -> Result<KnnResult, Failure> {
    let compute = &compute.clone().with_chunk_elements(KNN_BLOCK_ELEMENTS);
    let pacer = PagePacer { job, progress };
    let result = match test {
        Some((test, test_labels)) => {
            knn_probe_paced(compute, train.0, train.1, test, test_labels, config, &pacer).await
        }
        None => {
            let split = stratified_split(train.1, KNN_TEST_FRACTION, 0);
            if split.holdout.is_empty() {
                return Err(Failure::from(
                    "too few examples per class to hold out a test part; add a test file",
                ));
            }
            let pick = |rows: &[usize]| rows.iter().map(|&i| train.1[i]).collect::<Vec<_>>();
            let (fit, held) = (train.0.select_rows(&split.train), train.0.select_rows(&split.holdout));
            knn_probe_paced(
                compute,
                &fit,
                &pick(&split.train),
                &held,
                &pick(&split.holdout),
                config,
                &pacer,
            )
            .await
        }
    };
    Ok(result?)
}
