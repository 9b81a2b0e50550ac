//! Class separation R² of every layer of one labelled feature file (Fig. 4 of the paper).

use leptos::prelude::*;
use losslens_core::analysis::{Distance, Separation};
use losslens_core::figure::bar_chart;

use super::{FileSlot, number};
use crate::{Ctx, jobs};

fn distance_key(d: Distance) -> &'static str {
    match d {
        Distance::Cosine => "cosine",
        Distance::CosineMeanSubtracted => "cosine-mean-subtracted",
        Distance::SquaredEuclidean => "squared-euclidean",
    }
}

/// The class separation page.
#[component]
pub fn SeparationView() -> impl IntoView {
    let ctx = Ctx::get();
    let file = ctx.files.labelled;
    let distance = RwSignal::new(Distance::Cosine);
    let results: RwSignal<Option<Vec<(String, Separation)>>> = RwSignal::new(None);
    let run = move |_| {
        let Some(f) = file.get_untracked() else {
            ctx.fail("load a feature file with labels first");
            return;
        };
        let labels = match f.labels() {
            Ok(l) => l.to_vec(),
            Err(e) => return ctx.fail(e),
        };
        let d = distance.get_untracked();
        ctx.run(
            "class separation",
            move |engine, job, progress| async move {
                let r = jobs::separation(&engine.compute, &f.layers, &labels, d, &job, &*progress).await?;
                Ok(f.layers.iter().map(|l| l.name.clone()).zip(r).collect::<Vec<_>>())
            },
            move |r| results.set(Some(r)),
        );
    };
    view! {
        <h2>"Class separation R²"</h2>
        <p class="help">
            "R² = 1 − d̄within / d̄total with the cosine distance (eq. 11): how much of the spread of "
            "the embeddings lies between classes. Higher R² means more separated classes; the paper "
            "finds that objectives that separate classes more in the penultimate layer transfer worse."
        </p>
        <FileSlot id="file-labelled" label="features with labels" target=file />
        <div class="controls">
            <label>"distance "
                <select id="distance" on:change=move |ev| {
                    let key = event_target_value(&ev);
                    if let Some(d) = Distance::ALL.into_iter().find(|d| distance_key(*d) == key) { distance.set(d) }
                }>
                    {Distance::ALL.into_iter().map(|d| view! { <option value=distance_key(d)>{distance_key(d)}</option> }).collect_view()}
                </select>
            </label>
            <button id="run-separation" on:click=run disabled=move || ctx.busy.get().is_some()>"R² of every layer"</button>
        </div>
        {move || results.get().map(|r| {
            let names: Vec<String> = r.iter().map(|(n, _)| n.clone()).collect();
            let values: Vec<f64> = r.iter().map(|(_, s)| s.r2).collect();
            let svg = bar_chart("Class separation R² by layer", &names, &values, "R²", Some((0.0, 1.0)));
            view! {
                <table class="numbers">
                    <thead><tr><th>"layer"</th><th>"R²"</th><th>"d̄ within"</th><th>"d̄ total"</th></tr></thead>
                    <tbody>
                        {r.iter().map(|(name, s)| view! {
                            <tr>
                                <td>{name.clone()}</td>
                                <td id=format!("r2-{name}")>{number(s.r2)}</td>
                                <td>{number(s.within)}</td>
                                <td>{number(s.total)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <figure id="separation-chart" inner_html=svg></figure>
            }
        })}
    }
}
