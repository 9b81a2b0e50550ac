//! The kNN transfer probe: cosine similarity, k chosen by leave-one-out accuracy.

use leptos::prelude::*;
use losslens_core::figure::{Series, line_chart};
use losslens_core::probe::{KnnConfig, KnnResult, Vote};

use super::{FileSlot, LayerSelect, chosen_layer, number};
use crate::{Ctx, jobs};

/// The kNN page.
#[component]
pub fn KnnView() -> impl IntoView {
    let ctx = Ctx::get();
    let (train, test) = (ctx.files.train, ctx.files.test);
    let layer = RwSignal::new(String::new());
    let k_max = RwSignal::new(50usize);
    let weighted = RwSignal::new(false);
    let result: RwSignal<Option<KnnResult>> = RwSignal::new(None);
    let run = move |_| {
        let Some(tr) = train.get_untracked() else {
            ctx.fail("load training features with labels first");
            return;
        };
        let te = test.get_untracked();
        let train_labels = match tr.labels() {
            Ok(l) => l.to_vec(),
            Err(e) => return ctx.fail(e),
        };
        let test_labels = match te.as_ref().map(|t| t.labels().map(<[usize]>::to_vec)).transpose() {
            Ok(l) => l,
            Err(e) => return ctx.fail(e),
        };
        let name = layer.get_untracked();
        let i = chosen_layer(&tr, &name);
        let name = tr.layers[i].name.clone();
        let j = match &te {
            Some(t) => match t.layers.iter().position(|l| l.name == name) {
                Some(j) => Some(j),
                None => return ctx.fail(format!("the test file {} has no layer {name}", t.name)),
            },
            None => None,
        };
        let config = KnnConfig {
            k_max: k_max.get_untracked(),
            vote: if weighted.get_untracked() {
                Vote::Weighted { temperature: 0.07 }
            } else {
                Vote::Majority
            },
            ..Default::default()
        };
        ctx.run(
            "kNN probe",
            move |engine, job, progress| async move {
                let test = match (&te, &test_labels, j) {
                    (Some(t), Some(l), Some(j)) => Some((&t.layers[j], l.as_slice())),
                    _ => None,
                };
                jobs::knn(
                    &engine.compute,
                    (&tr.layers[i], &train_labels),
                    test,
                    &config,
                    &job,
                    &*progress,
                )
                .await
            },
            move |r| result.set(Some(r)),
        );
    };
    let on_k_max = move |ev: leptos::ev::Event| match event_target_value(&ev).parse::<usize>() {
        Ok(k) if k >= 1 => k_max.set(k),
        _ => ctx.fail("k max must be a whole number ≥ 1"),
    };
    view! {
        <h2>"kNN probe"</h2>
        <p class="help">
            "Cosine similarity between L2-normalised features; k is chosen by leave-one-out accuracy "
            "on the training features over k = 1 … k max. Without a test file, 20 % of each class of "
            "the training file is held out (seed 0)."
        </p>
        <FileSlot id="file-train" label="training features" target=train />
        <FileSlot id="file-test" label="test features (optional)" target=test />
        <div class="controls">
            <label>"layer " <LayerSelect id="knn-layer" file=train value=layer /></label>
            <label>"k max "
                <input type="number" id="k-max" min="1" prop:value=move || k_max.get().to_string()
                    on:change=on_k_max />
            </label>
            <label>
                <input type="checkbox" id="weighted" prop:checked=move || weighted.get()
                    on:change=move |ev| weighted.set(event_target_checked(&ev)) />
                " weighted vote (T = 0.07)"
            </label>
            <button id="run-knn" on:click=run disabled=move || ctx.busy.get().is_some()>"Run kNN probe"</button>
        </div>
        {move || result.get().map(|r| {
            let ks: Vec<String> = r.grid.iter().map(|g| g.k.to_string()).collect();
            let series = [Series { name: "leave-one-out".into(), values: r.grid.iter().map(|g| Some(g.accuracy)).collect() }];
            let svg = line_chart("Leave-one-out accuracy by k", &ks, &series, "accuracy");
            view! {
                <table class="numbers">
                    <tbody>
                        <tr><th>"test accuracy"</th><td id="knn-accuracy">{number(r.accuracy)}</td></tr>
                        <tr><th>"test mean per-class accuracy"</th><td id="knn-mpc">{number(r.mean_per_class_accuracy)}</td></tr>
                        <tr><th>"chosen k"</th><td id="knn-k">{r.k}</td></tr>
                        <tr><th>"leave-one-out accuracy at k"</th><td id="knn-loo">{number(r.leave_one_out_accuracy)}</td></tr>
                        <tr><th>"examples"</th><td>{format!("{} train / {} test, {} classes", r.train_examples, r.test_examples, r.classes)}</td></tr>
                    </tbody>
                </table>
                <figure id="knn-chart" inner_html=svg></figure>
            }
        })}
    }
}
