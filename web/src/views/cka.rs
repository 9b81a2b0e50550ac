//! Linear CKA between two feature files: one pair of layers, or every pair as a heatmap.

use leptos::prelude::*;
use losslens_core::analysis::{CkaConfig, CkaEstimator, CkaResult, linear_cka};
use losslens_core::figure::heatmap;

use super::{FileSlot, LayerSelect, chosen_layer, number};
use crate::{Ctx, jobs};

/// The CKA page.
#[component]
pub fn CkaView() -> impl IntoView {
    let ctx = Ctx::get();
    let (a, b) = (ctx.files.a, ctx.files.b);
    let layer_a = RwSignal::new(String::new());
    let layer_b = RwSignal::new(String::new());
    let debiased = RwSignal::new(false);
    let pair: RwSignal<Option<CkaResult>> = RwSignal::new(None);
    let matrix: RwSignal<Option<(Vec<String>, Vec<String>, Vec<Vec<f64>>)>> = RwSignal::new(None);
    let config = move || CkaConfig {
        estimator: if debiased.get_untracked() {
            CkaEstimator::Debiased
        } else {
            CkaEstimator::Biased
        },
        ..Default::default()
    };
    let both = move || match (a.get_untracked(), b.get_untracked()) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => {
            ctx.fail("load two feature files (A and B) first");
            None
        }
    };
    let compute_pair = move |_| {
        let Some((fa, fb)) = both() else { return };
        let (ia, ib) = (
            chosen_layer(&fa, &layer_a.get_untracked()),
            chosen_layer(&fb, &layer_b.get_untracked()),
        );
        let config = config();
        ctx.run(
            "CKA",
            move |engine, _job, _progress| async move {
                Ok(linear_cka(&engine.compute, &fa.layers[ia], &fb.layers[ib], &config).await?)
            },
            move |r| pair.set(Some(r)),
        );
    };
    let compute_matrix = move |_| {
        let Some((fa, fb)) = both() else { return };
        let config = config();
        ctx.run(
            "CKA heatmap",
            move |engine, job, progress| async move {
                let values =
                    jobs::cka_matrix(&engine.compute, &fa.layers, &fb.layers, &config, &job, &*progress).await?;
                let names = |f: &crate::loaded::Loaded| f.layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
                Ok((names(&fa), names(&fb), values))
            },
            move |m| matrix.set(Some(m)),
        );
    };
    view! {
        <h2>"Linear CKA"</h2>
        <p class="help">
            "Centered kernel alignment between the representations of the same examples (same order) "
            "in two networks, or two layers of one. Eq. 10 of the paper; debiased uses the unbiased "
            "HSIC estimator of Song et al. (2007)."
        </p>
        <FileSlot id="file-a" label="A" target=a />
        <FileSlot id="file-b" label="B" target=b />
        <div class="controls">
            <label>"layer of A " <LayerSelect id="layer-a" file=a value=layer_a /></label>
            <label>"layer of B " <LayerSelect id="layer-b" file=b value=layer_b /></label>
            <label>
                <input type="checkbox" id="debiased" prop:checked=move || debiased.get()
                    on:change=move |ev| debiased.set(event_target_checked(&ev)) />
                " debiased"
            </label>
            <button id="run-cka" on:click=compute_pair disabled=move || ctx.busy.get().is_some()>"CKA of these layers"</button>
            <button id="run-cka-matrix" on:click=compute_matrix disabled=move || ctx.busy.get().is_some()>"Every pair of layers"</button>
        </div>
        {move || pair.get().map(|r| view! {
            <p class="result">
                "CKA = " <strong id="cka-value">{number(r.cka)}</strong>
                {format!(" ({} examples, {:?} estimator, {:?} form)", r.n, r.estimator, r.form)}
            </p>
        })}
        {move || matrix.get().map(|(rows, cols, values)| {
            let svg = heatmap("Linear CKA: layers of A × layers of B", &rows, &cols, &values, (0.0, 1.0));
            let json = serde_json::json!({"rows": rows, "cols": cols, "values": values}).to_string();
            let mut csv = String::from("layer");
            for c in &cols { csv.push(','); csv.push_str(c); }
            for (r, row) in rows.iter().zip(&values) {
                csv.push('\n');
                csv.push_str(r);
                for v in row { csv.push_str(&format!(",{v}")); }
            }
            let href = format!("data:text/csv;charset=utf-8,{}", String::from(js_sys::encode_uri_component(&csv)));
            view! {
                <figure id="cka-heatmap" data-values=json inner_html=svg></figure>
                <a download="cka.csv" href=href>"Download as CSV"</a>
            }
        })}
    }
}
