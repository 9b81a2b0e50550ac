//! A study's results: the Table 1 summary and the figures, for the objectives and layer the
//! URL names.

use leptos::prelude::*;
use leptos::task::spawn_local;
use losslens_core::study::StudyResults;
use losslens_core::study::aggregate::{
    format_value, summarize, table_c1, table_c2, table_c3, table_c4, table_d1, table_e1, table_f1, table2, table4,
    table6,
};
use losslens_core::study::figures::figures;
use losslens_core::study::results::{Summary, is_inside_path};

use super::load_url_into;
use crate::Ctx;
use crate::browser::{fetch_text, files_of_input, read_bytes};
use crate::url_state::View;

/// Decodes `results.json`, refusing other schema versions by name.
pub fn parse_results(text: &str, name: &str) -> Result<StudyResults, String> {
    StudyResults::parse(text, name).map_err(|e| e.to_string())
}

/// The study page.
#[component]
pub fn StudyView() -> impl IntoView {
    let ctx = Ctx::get();
    let results: RwSignal<Option<StudyResults>> = RwSignal::new(None);
    // Open the results the URL (or the report page) names.
    if let Some(url) = ctx.url.get_untracked().results {
        spawn_local(async move {
            match fetch_text(&url).await.and_then(|t| parse_results(&t, &url)) {
                Ok(r) => results.set(Some(r)),
                Err(e) => ctx.fail(e),
            }
        });
    }
    let on_file = move |ev: leptos::ev::Event| {
        let Some(file) = files_of_input(&ev).into_iter().next() else {
            return;
        };
        spawn_local(async move {
            let parsed = read_bytes(&file).await.and_then(|bytes| {
                let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", file.name))?;
                parse_results(&text, &file.name)
            });
            match parsed {
                Ok(r) => {
                    ctx.error.set(None);
                    results.set(Some(r));
                }
                Err(e) => ctx.fail(e),
            }
        });
    };
    let chosen = move || ctx.url.get().objectives;
    let toggle = move |objective: String, on: bool, all: Vec<String>| {
        ctx.url.update(|u| {
            let mut set = if u.objectives.is_empty() {
                all.clone()
            } else {
                u.objectives.clone()
            };
            set.retain(|o| o != &objective);
            if on {
                set.push(objective);
            }
            // Keep study order; all selected is the default (empty).
            set = all.iter().filter(|o| set.contains(o)).cloned().collect();
            u.objectives = if set.len() == all.len() { Vec::new() } else { set };
        })
    };
    view! {
        <h2>"Study results"</h2>
        <div class="slot">
            <label for="file-results">"results.json"</label>
            <input type="file" id="file-results" accept=".json" on:change=on_file />
        </div>
        {move || match results.get() {
            None => view! {
                <p class="help">
                    "Open the results.json a `losslens study` run wrote, or load feature files in the "
                    "other views."
                </p>
            }.into_any(),
            Some(r) => {
                let all = r.objectives(&[]);
                let only = chosen();
                let shown = r.filtered(&only);
                let layer_names = r.layers();
                let layer = ctx.url.get().layer;
                let summary = summarize(&shown);
                let figs = figures(&r, &only, layer.as_deref());
                let targets = r.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>().join(", ");
                view! {
                    <p id="study-title">
                        <strong>{r.name.clone()}</strong>
                        {format!(": {} on {}, transfer to {}; {} runs", r.model, r.source, targets, r.runs.len())}
                    </p>
                    <fieldset id="objectives">
                        <legend>"objectives"</legend>
                        {all.iter().map(|o| {
                            let (o2, all2) = (o.clone(), all.clone());
                            let checked = only.is_empty() || only.contains(o);
                            view! {
                                <label>
                                    <input type="checkbox" prop:checked=checked
                                        on:change=move |ev| toggle(o2.clone(), event_target_checked(&ev), all2.clone()) />
                                    {o.clone()}
                                </label>
                            }
                        }).collect_view()}
                    </fieldset>
                    {match summary {
                        Ok(s) => view! {
                            <SummaryTable summary=s.clone() id="summary" />
                            {s.r2_vs_transfer.map(|(rho, p)| view! {
                                <p id="spearman">{format!("Spearman ρ between R² and average linear transfer accuracy: {rho:.3} (p = {p:.3})")}</p>
                            })}
                        }.into_any(),
                        Err(e) => view! { <p class="help">{format!("no summary: {e}")}</p> }.into_any(),
                    }}
                    {table2(&shown).ok().flatten().map(|t2| view! {
                        <h3>"Fine-tuning the whole network (Table 2)"</h3>
                        <SummaryTable summary=t2 id="table2" />
                    })}
                    {table4(&shown).ok().flatten().map(|t4| view! {
                        <h3>"Cosine-softmax temperature (Table 4)"</h3>
                        <SummaryTable summary=t4 id="table4" />
                    })}
                    {table_c1(&shown).ok().flatten().map(|c1| view! {
                        <h3>"Accuracy on the training images, unaugmented (Table C.1)"</h3>
                        <SummaryTable summary=c1 id="tableC1" />
                    })}
                    {table_c2(&shown).ok().flatten().map(|c2| view! {
                        <h3>"Out-of-distribution test sets and corruptions (Table C.2)"</h3>
                        <SummaryTable summary=c2 id="tableC2" />
                    })}
                    {table_d1(&shown).ok().flatten().map(|d1| view! {
                        <h3>"Multi-label targets: ROC AUC of each class (Table D.1)"</h3>
                        <SummaryTable summary=d1 id="tableD1" />
                    })}
                    {table_c3(&shown).ok().map(|c3| view! {
                        <h3>"Calibration on the source test split (Table C.3)"</h3>
                        <SummaryTable summary=c3 id="tableC3" />
                    })}
                    {table_e1(&shown).ok().flatten().map(|e1| view! {
                        <h3>"Class separation of the penultimate layer by distance (Table E.1)"</h3>
                        <SummaryTable summary=e1 id="tableE1" />
                    })}
                    {table6(&shown).ok().flatten().map(|t6| view! {
                        <h3>"Relearning the source head from 80 % of the test images, scored on the rest (Fig. 6)"</h3>
                        <SummaryTable summary=t6 id="table6" />
                    })}
                    {table_f1(&shown).ok().flatten().map(|f1| view! {
                        <h3>"Class overlap: the source head's predictions mapped to each target's classes (Table F.1)"</h3>
                        <SummaryTable summary=f1 id="tableF1" />
                    })}
                    {table_c4(&shown).map(|c4| view! {
                        <h3>"Combining losses, normalisations and regularisers: source top-1 (Table C.4)"</h3>
                        <SummaryTable summary=c4 id="tableC4" />
                    })}
                    {r.protocol.as_ref().map(|p| view! {
                        <p class="help" id="protocol">{format!(
                            "R² and neural collapse on {} source training images ({} or more per class, every block's whole \
                             output); sparsity on {} source test images; accuracy and calibration on {} test images.",
                            p.separation_images, p.separation_per_class, p.sparsity_images, p.test_images
                        )}</p>
                    })}
                    <label>"layer for the R² scatter "
                        <select id="study-layer" on:change=move |ev| {
                            let v = event_target_value(&ev);
                            ctx.url.update(|u| u.layer = (v != "penultimate").then_some(v));
                        } prop:value=layer.clone().unwrap_or_else(|| "penultimate".into())>
                            {layer_names.iter().map(|l| view! { <option value=l.clone()>{l.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    {
                        // Only files inside the site: a results file is untrusted input.
                        let with_features: Vec<(String, String)> = r.runs.iter()
                            .filter_map(|run| Some((run.label(), run.features.clone()?)))
                            .filter(|(_, path)| is_inside_path(path))
                            .collect();
                        (!with_features.is_empty()).then(|| view! {
                            <details id="study-features">
                                <summary>"Recompute from the saved features"</summary>
                                <p class="help">"Each run's features of every layer on the same source images. Open one in a view to recompute its numbers in this page."</p>
                                <table class="numbers"><tbody>
                                    {with_features.into_iter().map(|(label, url)| {
                                        let (u1, u2, u3) = (url.clone(), url.clone(), url.clone());
                                        let open = move |slot: super::FileSignal, view: View, url: String| {
                                            load_url_into(ctx, slot, url);
                                            ctx.url.update(|u| u.view = view);
                                        };
                                        view! {
                                            <tr>
                                                <th>{label}</th>
                                                <td><button on:click=move |_| open(ctx.files.a, View::Cka, u1.clone())>"CKA: as A"</button></td>
                                                <td><button on:click=move |_| open(ctx.files.b, View::Cka, u2.clone())>"CKA: as B"</button></td>
                                                <td><button on:click=move |_| open(ctx.files.labelled, View::Separation, u3.clone())>"class separation"</button></td>
                                                <td><a href=url.clone() download="">"download"</a></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody></table>
                            </details>
                        })
                    }
                    <div class="figures">
                        {figs.into_iter().map(|f| view! {
                            <figure id=format!("fig-{}", f.name)>
                                <div inner_html=f.svg></div>
                                <figcaption>{f.caption}</figcaption>
                            </figure>
                        }).collect_view()}
                    </div>
                }.into_any()
            }
        }}
    }
}

/// A summary table: mean ± sd per objective, bold by the paper's rule.
#[component]
fn SummaryTable(
    /// The table.
    summary: Summary,
    /// Element id.
    id: &'static str,
) -> impl IntoView {
    let s = summary;
    view! {
        <table id=id class="numbers">
            <caption>"Mean ± sd over seeds, in percent (R²: a fraction); bold: best, or not significantly worse (Welch t-test, p ≥ 0.05)"</caption>
            <thead><tr>
                <th>{s.row_header().to_string()}</th>
                {s.columns.iter().map(|c| view! { <th>{c.title.clone()}</th> }).collect_view()}
            </tr></thead>
            <tbody>
                {s.objectives.iter().enumerate().map(|(i, o)| view! {
                    <tr>
                        <th>{o.clone()}</th>
                        {s.columns.iter().map(|c| {
                            let text = format_value(&c.title, &c.values[i]);
                            if c.bold[i] { view! { <td><strong>{text}</strong></td> }.into_any() }
                            else { view! { <td>{text}</td> }.into_any() }
                        }).collect_view()}
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
