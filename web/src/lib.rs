//! The losslens browser explorer (leptos, client-side rendering).
//!
//! Researchers drop feature files into the page and recompute linear CKA, class separation R²
//! and kNN probes with the same `losslens-core` code the command line runs: on the browser's GPU
//! through WebGPU, or on the CPU backend where the browser offers no adapter. Nothing is
//! uploaded anywhere. The same app shows a study's `results.json`: the static pages
//! `losslens report` writes are this app plus the study's files.
//!
//! - [`browser`]: files, timers, fetch and the address bar;
//! - [`loaded`]: decoding and checking an uploaded feature file;
//! - [`jobs`]: the compute device and the analyses, run in cancellable pieces;
//! - [`url_state`]: the state a link carries;
//! - [`views`]: the pages.

pub mod browser;
pub mod jobs;
pub mod loaded;
pub mod url_state;
pub mod views;

use std::future::Future;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use losslens_core::device::DeviceChoice;

use crate::browser::{now_ms, yield_now};
use crate::jobs::{Engine, Failure, Job};
use crate::url_state::{UrlState, View};

/// Progress of the running analysis: what, pieces done, pieces in all (0: unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Busy {
    /// What runs.
    pub label: String,
    /// Pieces done.
    pub done: usize,
    /// Pieces in all; 0 when unknown.
    pub total: usize,
}

/// The state every view shares (all fields are signals, so the context is `Copy`).
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// What the address bar holds.
    pub url: RwSignal<UrlState>,
    /// The compute device, once started.
    pub engine: RwSignal<Option<Rc<Engine>>, LocalStorage>,
    /// The analysis running now.
    pub busy: RwSignal<Option<Busy>>,
    /// The last error, shown until the next action.
    pub error: RwSignal<Option<String>>,
    /// How long the last analysis took and where it ran.
    pub timing: RwSignal<Option<String>>,
    /// Analyses and file reads finished so far (successful or not); the page shows it as
    /// `data-finished` on the status area, so scripts can wait for the next result.
    pub finished: RwSignal<u64>,
    /// The feature files loaded, by slot (kept while the user switches views).
    pub files: views::Files,
}

impl Ctx {
    /// The shared state from the context.
    pub fn get() -> Self {
        expect_context::<Ctx>()
    }

    /// Shows an error.
    pub fn fail(&self, message: impl Into<String>) {
        self.error.set(Some(message.into()));
    }

    /// Runs an analysis in the background: shows progress, times it, reports errors, and hands
    /// the result to `done`. `work` gets the device, the job (checked between pieces) and a
    /// progress callback `(done, total)`.
    pub fn run<T, F, Fut>(self, label: &str, work: F, done: impl FnOnce(T) + 'static)
    where
        T: 'static,
        F: FnOnce(Rc<Engine>, Job, Rc<dyn Fn(usize, usize)>) -> Fut + 'static,
        Fut: Future<Output = Result<T, Failure>> + 'static,
    {
        let Some(engine) = self.engine.get_untracked() else {
            self.fail("the compute device is still starting; try again in a moment");
            return;
        };
        let job = Job::start();
        let label = label.to_string();
        self.error.set(None);
        self.timing.set(None);
        self.busy.set(Some(Busy {
            label: label.clone(),
            done: 0,
            total: 0,
        }));
        let busy = self.busy;
        let progress_label = label.clone();
        let progress: Rc<dyn Fn(usize, usize)> = Rc::new(move |done, total| {
            busy.set(Some(Busy {
                label: progress_label.clone(),
                done,
                total,
            }))
        });
        spawn_local(async move {
            // Let the page draw the progress bar before the first piece.
            yield_now().await;
            let started = now_ms();
            let result = work(engine.clone(), job, progress).await;
            let ms = now_ms() - started;
            self.busy.set(None);
            self.finished.update(|n| *n += 1);
            match result {
                Ok(value) => {
                    self.timing
                        .set(Some(format!("{label}: {ms:.0} ms on {}", engine.label)));
                    done(value);
                }
                Err(Failure::Cancelled) => self.fail(format!("{label}: cancelled")),
                Err(Failure::Message(e)) => self.fail(e),
            }
        });
    }
}

/// Starts (or restarts) the compute device.
fn start_engine(ctx: Ctx, choice: DeviceChoice) {
    ctx.engine.set(None);
    spawn_local(async move {
        let engine = match Engine::start(choice).await {
            Ok(engine) => engine,
            Err(e) => {
                ctx.fail(format!("{e}; using the CPU"));
                Engine::cpu()
            }
        };
        ctx.engine.set(Some(Rc::new(engine)));
    });
}

/// The explorer's root component.
#[component]
pub fn App() -> impl IntoView {
    let query = browser::location_query();
    let mut initial = UrlState::parse(&query);
    // A page written by `losslens report` names its results file; open the study view on it.
    let from_report = browser::meta("losslens-results");
    if initial.results.is_none() {
        initial.results = from_report.clone();
    }
    // A bare explorer (no report, no link state) opens on the CKA view.
    if initial.results.is_none() && query.is_empty() {
        initial.view = View::Cka;
    }
    let ctx = Ctx {
        url: RwSignal::new(initial.clone()),
        engine: RwSignal::new_local(None),
        busy: RwSignal::new(None),
        error: RwSignal::new(None),
        timing: RwSignal::new(None),
        finished: RwSignal::new(0),
        files: views::Files::new(),
    };
    provide_context(ctx);
    start_engine(ctx, initial.device);
    // Keep the address bar in step with the state, so a copied link reproduces the view.
    Effect::new(move |_| {
        let mut state = ctx.url.get();
        if state.results == from_report {
            state.results = None;
        }
        browser::replace_query(&state.to_query());
    });
    let device = move || match ctx.engine.get() {
        Some(engine) => engine.label.clone(),
        None => "starting…".to_string(),
    };
    let on_device = move |ev: leptos::ev::Event| {
        let choice = match event_target_value(&ev).as_str() {
            "cpu" => DeviceChoice::Cpu,
            "gpu" => DeviceChoice::Gpu,
            _ => DeviceChoice::Auto,
        };
        ctx.url.update(|u| u.device = choice);
        start_engine(ctx, choice);
    };
    let device_key = match initial.device {
        DeviceChoice::Cpu => "cpu",
        DeviceChoice::Gpu => "gpu",
        DeviceChoice::Auto => "auto",
    };
    let current = Memo::new(move |_| ctx.url.get().view);
    view! {
        <header>
            <h1>"losslens explorer"</h1>
            <nav>
                {View::ALL
                    .into_iter()
                    .map(|v| {
                        view! {
                            <button
                                id=format!("tab-{}", v.key())
                                class:active=move || current.get() == v
                                on:click=move |_| ctx.url.update(|u| u.view = v)
                            >
                                {v.title()}
                            </button>
                        }
                    })
                    .collect_view()}
            </nav>
            <p class="device">
                "Compute: " <span id="device">{device}</span> " "
                <select id="device-choice" on:change=on_device prop:value=device_key>
                    <option value="auto">"auto"</option>
                    <option value="gpu">"WebGPU"</option>
                    <option value="cpu">"CPU"</option>
                </select>
            </p>
        </header>
        <views::Status />
        <main>
            {move || match current.get() {
                View::Study => view! { <views::study::StudyView /> }.into_any(),
                View::Cka => view! { <views::cka::CkaView /> }.into_any(),
                View::Separation => view! { <views::separation::SeparationView /> }.into_any(),
                View::Knn => view! { <views::knn::KnnView /> }.into_any(),
            }}
        </main>
        <footer>
            "losslens " {env!("CARGO_PKG_VERSION")}
            " · files stay in this page: nothing is uploaded · "
            <a href="https://github.com/losslens/losslens">"source"</a>
        </footer>
    }
}
