//! The explorer's pages and the pieces they share.

pub mod cka;
pub mod knn;
pub mod separation;
pub mod study;

use std::future::Future;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::Ctx;
use crate::browser::{PickedFile, fetch_bytes, files_of_drop, files_of_input, read_bytes, yield_now};
use crate::loaded::Loaded;

/// A slot holding one loaded feature file.
pub type FileSignal = RwSignal<Option<Rc<Loaded>>, LocalStorage>;

/// The loaded feature files, by slot.
#[derive(Debug, Clone, Copy)]
pub struct Files {
    /// CKA: first network.
    pub a: FileSignal,
    /// CKA: second network.
    pub b: FileSignal,
    /// Class separation.
    pub labelled: FileSignal,
    /// kNN: training features.
    pub train: FileSignal,
    /// kNN: test features (optional).
    pub test: FileSignal,
}

impl Files {
    /// Empty slots.
    pub fn new() -> Self {
        Self {
            a: RwSignal::new_local(None),
            b: RwSignal::new_local(None),
            labelled: RwSignal::new_local(None),
            train: RwSignal::new_local(None),
            test: RwSignal::new_local(None),
        }
    }
}

impl Default for Files {
    fn default() -> Self {
        Self::new()
    }
}

/// Decodes the bytes `read` produces into `slot` as `name`, showing progress and any problem.
fn load(ctx: Ctx, slot: FileSignal, name: String, read: impl Future<Output = Result<Vec<u8>, String>> + 'static) {
    ctx.error.set(None);
    ctx.busy.set(Some(crate::Busy {
        label: format!("reading {name}"),
        done: 0,
        total: 0,
    }));
    spawn_local(async move {
        yield_now().await;
        let result = read.await.and_then(|bytes| Loaded::decode(&name, &bytes));
        ctx.busy.set(None);
        match result {
            Ok(loaded) => slot.set(Some(Rc::new(loaded))),
            Err(e) => ctx.fail(e),
        }
        ctx.finished.update(|n| *n += 1);
    });
}

/// Reads and decodes a picked file into `slot`.
fn load_into(ctx: Ctx, slot: FileSignal, files: Vec<PickedFile>) {
    let Some(file) = files.into_iter().next() else { return };
    let name = file.name.clone();
    load(ctx, slot, name, async move { read_bytes(&file).await });
}

/// Fetches a feature file the page links to (a report's saved features) into `slot`.
pub fn load_url_into(ctx: Ctx, slot: FileSignal, url: String) {
    let name = url.rsplit('/').next().unwrap_or(&url).to_string();
    load(ctx, slot, name, async move { fetch_bytes(&url).await });
}

/// A file picker that also takes a dropped file.
#[component]
pub fn FileSlot(
    /// Element id of the `<input type=file>` (tests upload through it).
    id: &'static str,
    /// What the file is for.
    label: &'static str,
    /// Where the decoded file goes.
    target: FileSignal,
) -> impl IntoView {
    let ctx = Ctx::get();
    let slot = target;
    let dragging = RwSignal::new(false);
    let summary = move || {
        slot.get()
            .map(|f| f.summary())
            .unwrap_or_else(|| "no file: drop a .npy, .npz or .safetensors file here".into())
    };
    view! {
        <div
            class="slot"
            class:dragging=move || dragging.get()
            on:dragover=move |ev| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev| {
                ev.prevent_default();
                dragging.set(false);
                load_into(ctx, slot, files_of_drop(&ev));
            }
        >
            <label for=id>{label}</label>
            <input
                type="file"
                id=id
                accept=".npy,.npz,.safetensors,.st"
                on:change=move |ev| load_into(ctx, slot, files_of_input(&ev))
            />
            <span class="summary" id=format!("{id}-summary")>{summary}</span>
            {move || slot.get().map(|_| view! {
                <button class="clear" id=format!("{id}-clear") title="remove this file" on:click=move |_| slot.set(None)>"×"</button>
            })}
        </div>
    }
}

/// A `<select>` of layer names bound to `value` (empty: the first layer).
#[component]
pub fn LayerSelect(
    /// Element id.
    id: &'static str,
    /// The file whose layers are offered.
    file: FileSignal,
    /// The chosen layer name.
    value: RwSignal<String>,
) -> impl IntoView {
    let names = move || {
        file.get()
            .map(|f| f.layers.iter().map(|l| format!("{}", l.name)).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    view! {
        <select id=id on:change=move |ev| value.set(event_target_value(&ev)) prop:value=move || value.get()>
            {move || {
                names()
                    .into_iter()
                    .map(|n| view! { <option value=n.clone()>{n.clone()}</option> })
                    .collect_view()
            }}
        </select>
    }
}

/// The layer `value` names in `file`, or its first.
pub fn chosen_layer(file: &Loaded, value: &str) -> usize {
    file.layers.iter().position(|l| l.name == value).unwrap_or(0)
}

/// Progress of the running analysis with a Cancel button, the last error, and the last timing.
#[component]
pub fn Status() -> impl IntoView {
    let ctx = Ctx::get();
    view! {
        <section class="status" id="status" data-finished=move || ctx.finished.get().to_string()>
            {move || {
                ctx.busy
                    .get()
                    .map(|b| {
                        let fraction = if b.total > 0 { b.done as f64 / b.total as f64 } else { 0.0 };
                        let count = if b.total > 0 {
                            format!(" ({}/{})", b.done, b.total)
                        } else {
                            String::new()
                        };
                        view! {
                            <div id="progress">
                                <progress value=fraction max="1"></progress>
                                <span>{format!("{}{count}", b.label)}</span>
                                <button id="cancel" on:click=move |_| crate::jobs::cancel()>
                                    "Cancel"
                                </button>
                            </div>
                        }
                    })
            }}
            {move || {
                ctx.error
                    .get()
                    .map(|e| {
                        view! {
                            <div id="error" role="alert">
                                <strong>"Error: "</strong>
                                {e}
                                <button on:click=move |_| ctx.error.set(None)>"×"</button>
                            </div>
                        }
                    })
            }}
            {move || ctx.timing.get().map(|t| view! { <p id="timing">{t}</p> })}
        </section>
    }
}

/// A number for display and for tests: six decimals.
pub fn number(v: f64) -> String {
    format!("{v:.6}")
}
