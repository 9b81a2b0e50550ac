//! Aggregating a study over seeds, the way the paper's tables do: mean ± sd per objective, the
//! best value and those not significantly different from it in bold (Welch t-test, p < 0.05),
//! and Spearman's ρ between class separation and mean transfer accuracy (section 3.3).

use crate::analysis::stats::{MeanSd, mean_sd, spearman, ties_with_best, two_way_anova};
use crate::error::Result;
use crate::study::results::{Column, RunResult, StudyResults, Summary};

/// Significance level of the bold-facing rule.
pub const BOLD_ALPHA: f64 = 0.05;

fn column(title: String, groups: &[Vec<f64>], higher_is_better: bool) -> Result<Column> {
    let values = groups.iter().map(|g| mean_sd(g)).collect::<Result<Vec<_>>>()?;
    let bold = if groups.iter().all(|g| g.len() >= 2) {
        ties_with_best(groups, higher_is_better, BOLD_ALPHA)?
    } else {
        // One seed: no test is possible; only the best mean is bold.
        let best = values
            .iter()
            .map(|v| v.mean)
            .fold(f64::NEG_INFINITY, |m, v| m.max(if higher_is_better { v } else { -v }));
        values
            .iter()
            .map(|v| (if higher_is_better { v.mean } else { -v.mean }) == best)
            .collect()
    };
    Ok(Column { title, values, bold })
}

/// Aggregates the runs of `results` per objective.
pub fn summarize(results: &StudyResults) -> Result<Summary> {
    // Table 1 and the rank correlation are over the main objectives (not sweep entries).
    let objectives = results.main_objectives(&[]);
    let groups = |f: &dyn Fn(&RunResult) -> Option<f64>| results.per_objective(&objectives, f);
    let mut columns = vec![
        column("top-1".into(), &groups(&|r| Some(r.source.top1)), true)?,
        column("top-5".into(), &groups(&|r| Some(r.source.top5)), true)?,
    ];
    let r2 = groups(&RunResult::penultimate_r2);
    if r2.iter().all(|g| !g.is_empty()) {
        columns.push(column("R²".into(), &r2, true)?);
    }
    for (i, t) in results.targets.iter().enumerate() {
        // A multi-label target's numbers are mean ROC AUC (Table D.1), not accuracy.
        let auc = if t.multilabel { " AUC" } else { "" };
        columns.push(column(
            format!("{} linear{auc}", t.name),
            &groups(&|r| r.transfer.get(i).map(|x| x.linear)),
            true,
        )?);
        columns.push(column(
            format!("{} kNN{auc}", t.name),
            &groups(&|r| r.transfer.get(i).map(|x| x.knn)),
            true,
        )?);
    }
    let mut r2_vs_transfer = None;
    if !results.targets.is_empty() {
        let average = groups(&|r| {
            (!r.transfer.is_empty()).then(|| r.transfer.iter().map(|x| x.linear).sum::<f64>() / r.transfer.len() as f64)
        });
        columns.push(column("average linear".into(), &average, true)?);
        if objectives.len() >= 3 && r2.iter().all(|g| !g.is_empty()) {
            let x: Vec<f64> = r2.iter().map(|g| g.iter().sum::<f64>() / g.len() as f64).collect();
            let y: Vec<f64> = average.iter().map(|g| g.iter().sum::<f64>() / g.len() as f64).collect();
            if let Ok(s) = spearman(&x, &y) {
                r2_vs_transfer = Some((s.rho, s.p));
            }
        }
    }
    Ok(Summary {
        objectives,
        columns,
        r2_vs_transfer,
        row_header: None,
    })
}

/// The tables of a study by file stem: `table1` (always), `table2` when the study fine-tunes,
/// `table3`, and `table4` when the study sweeps the cosine-softmax temperature.
pub fn tables(results: &StudyResults) -> Result<Vec<(&'static str, Summary)>> {
    let mut out = vec![("table1", summarize(results)?)];
    if let Some(t2) = table2(results)? {
        out.push(("table2", t2));
    }
    out.push(("table3", table3(results)?));
    if let Some(t4) = table4(results)? {
        out.push(("table4", t4));
    }
    if let Some(c1) = table_c1(results)? {
        out.push(("tableC1", c1));
    }
    if let Some(c2) = table_c2(results)? {
        out.push(("tableC2", c2));
    }
    if let Some(d1) = table_d1(results)? {
        out.push(("tableD1", d1));
    }
    out.push(("tableC3", table_c3(results)?));
    if let Some(e1) = table_e1(results)? {
        out.push(("tableE1", e1));
    }
    if let Some(t6) = table6(results)? {
        out.push(("table6", t6));
    }
    if let Some(f1) = table_f1(results)? {
        out.push(("tableF1", f1));
    }
    if let Some(c4) = table_c4(results) {
        out.push(("tableC4", c4));
    }
    Ok(out)
}

/// Writes every table of [`tables`] into `dir` as `tableN.md` and `tableN.csv` (what `losslens
/// study` leaves in its output folder and `losslens report` in a site); returns them.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_tables(results: &StudyResults, dir: &std::path::Path) -> Result<Vec<(&'static str, Summary)>> {
    let tables = tables(results)?;
    for (name, table) in &tables {
        crate::atomic::write(&dir.join(format!("{name}.md")), table.markdown().as_bytes())?;
        crate::atomic::write(&dir.join(format!("{name}.csv")), table.csv().as_bytes())?;
    }
    Ok(tables)
}

/// The paper's Table 2: test accuracy after fine-tuning the whole network on each target, and
/// its average over targets; `None` unless the study fine-tunes. Bold-facing as the paper's:
/// Welch's t-test per target, and for the average a two-way ANOVA (objective × dataset) of each
/// objective against the best ([`two_way_anova`]; Welch's test on the averages when the seeds
/// differ between cells).
pub fn table2(results: &StudyResults) -> Result<Option<Summary>> {
    if results.runs.iter().all(|r| r.finetune.is_empty()) {
        return Ok(None);
    }
    let objectives = results.main_objectives(&[]);
    let groups = |f: &dyn Fn(&RunResult) -> Option<f64>| results.per_objective(&objectives, f);
    let mut columns = Vec::new();
    for t in &results.targets {
        let values = groups(&|r| r.finetune.iter().find(|f| f.target == t.name).map(|f| f.accuracy));
        if values.iter().any(|g| g.is_empty()) {
            continue;
        }
        columns.push(column(format!("{} fine-tuned", t.name), &values, true)?);
    }
    if columns.is_empty() {
        return Ok(None);
    }
    let average = groups(&|r| {
        (!r.finetune.is_empty()).then(|| r.finetune.iter().map(|f| f.accuracy).sum::<f64>() / r.finetune.len() as f64)
    });
    let mut average_column = column("average fine-tuned".into(), &average, true)?;
    // cells[o][d]: the seeds of objective o on target d.
    let cells: Vec<Vec<Vec<f64>>> = objectives
        .iter()
        .map(|o| {
            results
                .targets
                .iter()
                .map(|t| {
                    results
                        .runs_of(o)
                        .filter_map(|r| r.finetune.iter().find(|f| f.target == t.name).map(|f| f.accuracy))
                        .collect()
                })
                .collect()
        })
        .collect();
    if let Some(bold) = anova_bold(&cells, &average_column.values)? {
        average_column.bold = bold;
    }
    columns.push(average_column);
    Ok(Some(Summary {
        objectives,
        columns,
        r2_vs_transfer: None,
        row_header: None,
    }))
}

/// The bold-facing of Table 2's average column: the best average, and every objective whose
/// two-way ANOVA against it (objective × dataset) gives p ≥ [`BOLD_ALPHA`]; `None` when the
/// seeds differ between cells (the t-test on the averages stands).
fn anova_bold(cells: &[Vec<Vec<f64>>], averages: &[MeanSd]) -> Result<Option<Vec<bool>>> {
    let Some(best) = (0..averages.len()).max_by(|&i, &j| averages[i].mean.total_cmp(&averages[j].mean)) else {
        return Ok(None);
    };
    let mut bold = Vec::with_capacity(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        if i == best {
            bold.push(true);
            continue;
        }
        match two_way_anova(&cells[best], cell) {
            Ok(test) => bold.push(test.p >= BOLD_ALPHA),
            Err(crate::error::Error::Degenerate { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(bold))
}

/// The paper's Table C.1: top-1 and top-5 accuracy of each network on the images it trained
/// on, unaugmented; `None` unless the study measured it (`analysis.train_accuracy`).
pub fn table_c1(results: &StudyResults) -> Result<Option<Summary>> {
    let objectives = results.main_objectives(&[]);
    let groups = |f: &dyn Fn(&RunResult) -> Option<f64>| results.per_objective(&objectives, f);
    let top1 = groups(&|r| r.source.train.as_ref().map(|t| t.top1));
    if top1.iter().any(|g| g.is_empty()) {
        return Ok(None);
    }
    Ok(Some(Summary {
        columns: vec![
            column("train top-1".into(), &top1, true)?,
            column(
                "train top-5".into(),
                &groups(&|r| r.source.train.as_ref().map(|t| t.top5)),
                true,
            )?,
        ],
        objectives,
        r2_vs_transfer: None,
        row_header: None,
    }))
}

/// The paper's Table C.2: top-1 accuracy on each extra test set, the mean top-1 error over the
/// corruptions and severities, and the mean corruption error relative to the study's softmax
/// networks (ImageNet-C's mCE with softmax in AlexNet's place; 100 % is softmax's); errors are
/// better lower. `None` unless the study measured robustness.
pub fn table_c2(results: &StudyResults) -> Result<Option<Summary>> {
    let objectives = results.main_objectives(&[]);
    let groups = |f: &dyn Fn(&RunResult) -> Option<f64>| results.per_objective(&objectives, f);
    let measured: Vec<&crate::study::results::Robustness> = results
        .runs
        .iter()
        .filter_map(|r| r.source.robustness.as_ref())
        .collect();
    let Some(first) = measured.first() else {
        return Ok(None);
    };
    let complete = |values: &[Vec<f64>]| values.iter().all(|g| !g.is_empty());
    let mut columns = Vec::new();
    for name in first.extra.iter().map(|e| e.name.clone()) {
        let values = groups(&|r| {
            let robustness = r.source.robustness.as_ref()?;
            robustness.extra.iter().find(|e| e.name == name).map(|e| e.top1)
        });
        if complete(&values) {
            columns.push(column(format!("{name} top-1"), &values, true)?);
        }
    }
    let errors = groups(&|r| r.source.robustness.as_ref()?.mean_corruption_error());
    if complete(&errors) {
        columns.push(column("corruption error".into(), &errors, false)?);
    }
    if let Some(baseline) = results.corruption_baseline() {
        let relative = groups(&|r| r.source.robustness.as_ref()?.relative_corruption_error(&baseline));
        if complete(&relative) {
            columns.push(column("mCE (softmax = 100)".into(), &relative, false)?);
        }
    }
    Ok(table_of(objectives, columns))
}

/// The paper's Table D.1: the linear probe's test ROC AUC of each class of each multi-label
/// target (the mean over the classes is Table 1's number); `None` without multi-label targets.
pub fn table_d1(results: &StudyResults) -> Result<Option<Summary>> {
    let objectives = results.main_objectives(&[]);
    let groups = |f: &dyn Fn(&RunResult) -> Option<f64>| results.per_objective(&objectives, f);
    let mut columns = Vec::new();
    for (i, t) in results.targets.iter().enumerate().filter(|(_, t)| t.multilabel) {
        let classes: Vec<String> = results
            .runs
            .iter()
            .find_map(|r| r.transfer.get(i).filter(|x| !x.classes.is_empty()))
            .map(|x| x.classes.iter().map(|c| c.class.clone()).collect())
            .unwrap_or_default();
        for class in classes {
            let values = groups(&|r| {
                let classes = &r.transfer.get(i)?.classes;
                classes.iter().find(|c| c.class == class).map(|c| c.auc)
            });
            if values.iter().all(|g| !g.is_empty()) {
                columns.push(column(format!("{}: {class} AUC", t.name), &values, true)?);
            }
        }
    }
    Ok(table_of(objectives, columns))
}

/// The paper's Table C.3: calibration on the source test split, NLL and ECE (15 bins) in each
/// objective's own probability model, before and after temperature scaling on the run's
/// holdout, and the temperature; lower is better (bold as in the other tables).
pub fn table_c3(results: &StudyResults) -> Result<Summary> {
    let objectives = results.main_objectives(&[]);
    let groups = |f: &dyn Fn(&RunResult) -> Option<f64>| results.per_objective(&objectives, f);
    let mut columns = vec![
        column("NLL".into(), &groups(&|r| Some(r.source.nll)), false)?,
        column("ECE".into(), &groups(&|r| Some(r.source.ece)), false)?,
    ];
    let scaled = groups(&|r| r.source.nll_calibrated);
    if scaled.iter().all(|g| !g.is_empty()) {
        columns.push(column("NLL (T-scaled)".into(), &scaled, false)?);
        columns.push(column(
            "ECE (T-scaled)".into(),
            &groups(&|r| r.source.ece_calibrated),
            false,
        )?);
        let mut t = column("T".into(), &groups(&|r| r.source.temperature), false)?;
        t.bold = vec![false; t.values.len()];
        columns.push(t);
    }
    Ok(Summary {
        objectives,
        columns,
        r2_vs_transfer: None,
        row_header: None,
    })
}

/// The paper's Fig. 6 as a table: the penultimate layer's R², the accuracy of the network's own
/// head and of a head relearned from the penultimate features of 80 % of the source test images,
/// both on the other 20 %; `None` unless the study relearned the heads.
pub fn table6(results: &StudyResults) -> Result<Option<Summary>> {
    let objectives = results.main_objectives(&[]);
    let groups = |f: &dyn Fn(&RunResult) -> Option<f64>| results.per_objective(&objectives, f);
    let relearned = groups(&|r| r.source.relearned_head.as_ref().map(|h| h.relearned));
    if relearned.iter().any(|g| g.is_empty()) {
        return Ok(None);
    }
    Ok(Some(Summary {
        columns: vec![
            column("R²".into(), &groups(&|r| r.penultimate_r2()), true)?,
            column(
                "own head".into(),
                &groups(&|r| r.source.relearned_head.as_ref().map(|h| h.original)),
                true,
            )?,
            column("relearned head".into(), &relearned, true)?,
        ],
        objectives,
        r2_vs_transfer: None,
        row_header: None,
    }))
}

/// The paper's Table F.1 per objective: for each target, the assignment accuracy of the
/// network's own head (its predictions mapped to the target's classes) beside linear transfer
/// accuracy; `None` unless the study measured assignment accuracy.
pub fn table_f1(results: &StudyResults) -> Result<Option<Summary>> {
    let objectives = results.main_objectives(&[]);
    let groups = |f: &dyn Fn(&RunResult) -> Option<f64>| results.per_objective(&objectives, f);
    let mut columns = Vec::new();
    for (t, target) in results.targets.iter().enumerate() {
        let assigned = groups(&|r| {
            r.transfer
                .get(t)
                .and_then(|x| x.assignment.as_ref())
                .map(|a| a.accuracy)
        });
        if assigned.iter().any(|g| g.is_empty()) {
            continue;
        }
        columns.push(column(format!("{} assignment", target.name), &assigned, true)?);
        columns.push(column(
            format!("{} linear", target.name),
            &groups(&|r| r.transfer.get(t).map(|x| x.linear)),
            true,
        )?);
    }
    Ok(table_of(objectives, columns))
}

/// The paper's Table E.1: class separation R² of the penultimate layer under the cosine
/// distance, the mean-subtracted cosine distance and the squared Euclidean distance; `None`
/// when the runs hold no per-distance values.
pub fn table_e1(results: &StudyResults) -> Result<Option<Summary>> {
    let objectives = results.main_objectives(&[]);
    let groups = |f: &dyn Fn(&RunResult) -> Option<f64>| results.per_objective(&objectives, f);
    let penultimate = |r: &RunResult| {
        r.separation_distances
            .iter()
            .find(|l| l.layer == crate::model::PENULTIMATE)
            .cloned()
    };
    let cosine = groups(&|r| penultimate(r).map(|l| l.cosine));
    if cosine.iter().any(|g| g.is_empty()) {
        return Ok(None);
    }
    Ok(Some(Summary {
        columns: vec![
            column("R²".into(), &cosine, true)?,
            column(
                "R² (mean-subtracted)".into(),
                &groups(&|r| penultimate(r).map(|l| l.cosine_mean_subtracted)),
                true,
            )?,
            column(
                "R² (squared Euclidean)".into(),
                &groups(&|r| penultimate(r).map(|l| l.squared_euclidean)),
                true,
            )?,
        ],
        objectives,
        r2_vs_transfer: None,
        row_header: None,
    }))
}

/// The paper's Table C.4 as a grid: source top-1 of every objective of the study (main and
/// sweep), one column per loss of the logits (softmax, label smoothing, sigmoid, squared error,
/// with their settings) and one row per rest of the objective (its normalisation and
/// regularisers; `baseline` for none), mean ± sd over seeds, `—` where the study has no such
/// combination; no bold-facing (the paper's has none). `None` unless the study has a combined
/// objective.
pub fn table_c4(results: &StudyResults) -> Option<Summary> {
    use crate::objective::{CombinedConfig, LogitLoss, ObjectiveConfig};
    let objectives = results.objectives(&[]);
    let parsed: Vec<(String, ObjectiveConfig)> = objectives
        .iter()
        .filter_map(|o| o.parse::<ObjectiveConfig>().ok().map(|c| (o.clone(), c)))
        .collect();
    if !parsed.iter().any(|(_, c)| c.kind().is_none()) {
        return None;
    }
    let loss_of = |c: &ObjectiveConfig| {
        let loss = CombinedConfig {
            loss: c.parts().loss,
            ..CombinedConfig::default()
        };
        loss.into_objective().to_string()
    };
    let rest_of = |c: &ObjectiveConfig| {
        let rest = CombinedConfig {
            loss: LogitLoss::Softmax,
            ..c.parts()
        }
        .into_objective();
        match rest {
            ObjectiveConfig::Softmax(_) => "baseline".to_string(),
            other => other.to_string(),
        }
    };
    let mut rows: Vec<String> = vec!["baseline".into()];
    let mut losses: Vec<String> = vec!["softmax".into()];
    for (_, c) in &parsed {
        let (row, loss) = (rest_of(c), loss_of(c));
        if !rows.contains(&row) {
            rows.push(row);
        }
        if !losses.contains(&loss) {
            losses.push(loss);
        }
    }
    let columns = losses
        .iter()
        .map(|loss| {
            let values = rows
                .iter()
                .map(|row| {
                    let top1: Vec<f64> = parsed
                        .iter()
                        .filter(|(_, c)| rest_of(c) == *row && loss_of(c) == *loss)
                        .flat_map(|(o, _)| results.runs_of(o).map(|r| r.source.top1))
                        .collect();
                    mean_sd(&top1).unwrap_or(MeanSd {
                        mean: 0.0,
                        sd: 0.0,
                        n: 0,
                    })
                })
                .collect::<Vec<_>>();
            Column {
                title: format!("top-1 {loss}"),
                bold: vec![false; values.len()],
                values,
            }
        })
        .collect();
    Some(Summary {
        objectives: rows,
        columns,
        r2_vs_transfer: None,
        row_header: Some("normalisation and regularisers".into()),
    })
}

/// The paper's Table 3: source top-1 and penultimate R² per objective.
pub fn table3(results: &StudyResults) -> Result<Summary> {
    Ok(summarize(results)?.select(|title| title == "top-1" || title == "R²"))
}

/// The paper's Table 4: the cosine-softmax runs (a temperature sweep) with source top-1, R² and
/// linear transfer to each target; `None` unless the study has at least two cosine-softmax
/// settings.
pub fn table4(results: &StudyResults) -> Result<Option<Summary>> {
    let mut sweep = results.clone();
    sweep.runs.retain(|r| r.kind == "cosine-softmax");
    // Every cosine-softmax entry, main and sweep, in order of τ.
    sweep.sweeps.clear();
    let temperature = |r: &RunResult| match r.objective.parse::<crate::objective::ObjectiveConfig>() {
        Ok(crate::objective::ObjectiveConfig::CosineSoftmax(c)) => c.temperature,
        _ => f64::INFINITY,
    };
    sweep.runs.sort_by(|a, b| temperature(a).total_cmp(&temperature(b)));
    sweep.summary = None;
    let mut settings: Vec<&str> = sweep.runs.iter().map(|r| r.objective.as_str()).collect();
    settings.sort_unstable();
    settings.dedup();
    if settings.len() < 2 {
        return Ok(None);
    }
    Ok(Some(summarize(&sweep)?.select(|title| {
        title == "top-1" || title == "R²" || (title.ends_with(" linear") && title != "average linear")
    })))
}

impl Summary {
    /// The header of the first column: `objective` unless the rows are something else.
    pub fn row_header(&self) -> &str {
        self.row_header.as_deref().unwrap_or("objective")
    }

    /// The same rows with only the columns whose title `keep` accepts (bold-facing unchanged;
    /// no correlation line).
    pub fn select(&self, keep: impl Fn(&str) -> bool) -> Summary {
        Summary {
            objectives: self.objectives.clone(),
            columns: self.columns.iter().filter(|c| keep(&c.title)).cloned().collect(),
            r2_vs_transfer: None,
            row_header: self.row_header.clone(),
        }
    }

    /// The table in Markdown: `mean ± sd` in percent (R² as a fraction), bold where the rule
    /// says.
    pub fn markdown(&self) -> String {
        let mut out = format!("| {} |", self.row_header());
        for c in &self.columns {
            out.push_str(&format!(" {} |", c.title));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(self.columns.len()));
        for (i, o) in self.objectives.iter().enumerate() {
            out.push_str(&format!("\n| {o} |"));
            for c in &self.columns {
                let v = &c.values[i];
                let cell = format_value(&c.title, v);
                if c.bold[i] {
                    out.push_str(&format!(" **{cell}** |"));
                } else {
                    out.push_str(&format!(" {cell} |"));
                }
            }
        }
        out.push('\n');
        if let Some((rho, p)) = self.r2_vs_transfer {
            out.push_str(&format!(
                "\nSpearman ρ between R² and average linear transfer accuracy: {rho:.3} (p = {p:.3})\n"
            ));
        }
        out
    }

    /// The table as an HTML `<table>` (the static report page), bold where the rule says.
    pub fn html(&self) -> String {
        let esc = crate::figure::escape;
        let mut out = format!(
            "<table class=\"numbers\"><thead><tr><th>{}</th>",
            esc(self.row_header())
        );
        for c in &self.columns {
            out.push_str(&format!("<th>{}</th>", esc(&c.title)));
        }
        out.push_str("</tr></thead><tbody>");
        for (i, o) in self.objectives.iter().enumerate() {
            out.push_str(&format!("<tr><th>{}</th>", esc(o)));
            for c in &self.columns {
                let cell = format_value(&c.title, &c.values[i]);
                if c.bold[i] {
                    out.push_str(&format!("<td><strong>{cell}</strong></td>"));
                } else {
                    out.push_str(&format!("<td>{cell}</td>"));
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        if let Some((rho, p)) = self.r2_vs_transfer {
            out.push_str(&format!(
                "<p>Spearman ρ between R² and average linear transfer accuracy: {rho:.3} (p = {p:.3})</p>"
            ));
        }
        out
    }

    /// The table as CSV: `objective`, then `<column>_mean`, `<column>_sd`, `<column>_bold`.
    pub fn csv(&self) -> String {
        let mut out = self.row_header().replace(',', ";");
        for c in &self.columns {
            let t = c.title.replace(',', ";");
            out.push_str(&format!(",{t} mean,{t} sd,{t} bold"));
        }
        for (i, o) in self.objectives.iter().enumerate() {
            out.push_str(&format!("\n\"{}\"", o.replace('"', "\"\"")));
            for c in &self.columns {
                let v = &c.values[i];
                if v.n == 0 {
                    out.push_str(",,,false");
                } else {
                    out.push_str(&format!(",{},{},{}", v.mean, v.sd, c.bold[i]));
                }
            }
        }
        out.push('\n');
        out
    }
}

/// How a table cell shows `v`: percent with one decimal; R², NLL and temperatures as numbers
/// with three decimals; `± sd` only when there is more than one seed; `—` for an empty cell.
pub fn format_value(title: &str, v: &MeanSd) -> String {
    if v.n == 0 {
        "—".into()
    } else if title.starts_with("R²") || title.starts_with("NLL") || title == "T" {
        if v.n > 1 {
            format!("{:.3} ± {:.3}", v.mean, v.sd)
        } else {
            format!("{:.3}", v.mean)
        }
    } else if v.n > 1 {
        format!("{:.1} ± {:.1}", 100.0 * v.mean, 100.0 * v.sd)
    } else {
        format!("{:.1}", 100.0 * v.mean)
    }
}

/// The table of `columns`, one row per objective; none without columns.
fn table_of(objectives: Vec<String>, columns: Vec<Column>) -> Option<Summary> {
    (!columns.is_empty()).then_some(Summary {
        columns,
        objectives,
        r2_vs_transfer: None,
        row_header: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::results::fixtures::{run, study};

    #[test]
    fn table_c1_is_training_accuracy_when_measured() {
        let mut runs = vec![run("softmax", 0, 0.6, 0.2, 0.8), run("sigmoid", 0, 0.6, 0.2, 0.8)];
        let results = study(runs.clone());
        assert!(table_c1(&results).unwrap().is_none());
        for (r, top1) in runs.iter_mut().zip([0.95, 0.9]) {
            r.source.train = Some(crate::study::results::TrainAccuracy {
                top1,
                top5: 1.0,
                images: 100,
            });
        }
        let c1 = table_c1(&study(runs)).unwrap().unwrap();
        assert_eq!(c1.objectives, ["softmax", "sigmoid"]);
        assert_eq!(c1.columns[0].title, "train top-1");
        assert_eq!(c1.columns[0].values[1].mean, 0.9);
        assert_eq!(c1.columns[0].bold, [true, false]);
    }

    #[test]
    fn table_c4_lays_combinations_out_as_losses_by_regularisers() {
        let specs = [
            "softmax",
            "sigmoid",
            "dropout:keep-prob=0.8",
            "sigmoid+dropout:keep-prob=0.8",
            "label-smoothing+logit-penalty:alpha=0.1,beta=0.0001",
        ];
        let mut runs = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let objective = spec.parse::<crate::objective::ObjectiveConfig>().unwrap().to_string();
            for seed in 0..2 {
                runs.push(run(
                    &objective,
                    seed,
                    0.5 + i as f64 / 100.0 + seed as f64 / 1000.0,
                    0.3,
                    0.6,
                ));
            }
        }
        let results = study(runs);
        let c4 = table_c4(&results).unwrap();
        assert_eq!(
            c4.objectives,
            ["baseline", "dropout:keep-prob=0.8", "logit-penalty:beta=0.0001"]
        );
        let titles: Vec<&str> = c4.columns.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(
            titles,
            ["top-1 softmax", "top-1 sigmoid", "top-1 label-smoothing:alpha=0.1"]
        );
        let cell = |row: usize, col: usize| c4.columns[col].values[row];
        assert!((cell(0, 0).mean - 0.5005).abs() < 1e-12 && cell(0, 0).n == 2);
        assert!((cell(1, 1).mean - 0.5305).abs() < 1e-12, "sigmoid+dropout");
        assert!(
            (cell(2, 2).mean - 0.5405).abs() < 1e-12,
            "label-smoothing+logit-penalty"
        );
        assert_eq!(cell(2, 0).n, 0, "no softmax+logit-penalty run");
        let markdown = c4.markdown();
        assert!(markdown.starts_with("| normalisation and regularisers |"), "{markdown}");
        assert!(
            markdown.contains("| logit-penalty:beta=0.0001 | — | — | 54.0 ± 0.1 |"),
            "{markdown}"
        );
        assert!(c4.csv().contains(",,,false"));
        // No combination, no table.
        let mut plain = results.clone();
        plain.runs.retain(|r| !r.objective.contains('+'));
        assert!(table_c4(&plain).is_none());
        assert!(tables(&results).unwrap().iter().any(|(name, _)| *name == "tableC4"));
    }

    #[test]
    fn tables_3_and_4_are_projections_of_table_1() {
        let mut runs = vec![run("softmax", 0, 0.6, 0.2, 0.8)];
        for (i, t) in ["0.01", "0.05"].iter().enumerate() {
            let mut r = run(
                &format!("cosine-softmax:temperature={t}"),
                0,
                0.7,
                0.3 + i as f64 / 10.0,
                0.7,
            );
            r.kind = "cosine-softmax".into();
            runs.push(r);
        }
        let results = study(runs);
        let t3 = table3(&results).unwrap();
        assert_eq!(
            t3.columns.iter().map(|c| c.title.as_str()).collect::<Vec<_>>(),
            ["top-1", "R²"]
        );
        assert_eq!(t3.objectives.len(), 3);
        let t4 = table4(&results).unwrap().unwrap();
        assert_eq!(
            t4.objectives,
            ["cosine-softmax:temperature=0.01", "cosine-softmax:temperature=0.05"]
        );
        assert_eq!(
            t4.columns.iter().map(|c| c.title.as_str()).collect::<Vec<_>>(),
            ["top-1", "R²", "t linear"]
        );
        let mut one = results.clone();
        one.runs.truncate(2);
        assert!(table4(&one).unwrap().is_none());
    }

    #[test]
    fn sweeps_stay_out_of_table_1_and_table_4_is_sorted_by_temperature() {
        let cosine = |t: &str, r2: f64| {
            let mut r = run(&format!("cosine-softmax:temperature={t}"), 0, 0.7, r2, 0.7);
            r.kind = "cosine-softmax".into();
            r
        };
        let mut results = study(vec![
            run("softmax", 0, 0.6, 0.2, 0.8),
            cosine("0.1", 0.3),
            cosine("0.05", 0.5),
            cosine("0.01", 0.9),
            run("sigmoid", 0, 0.65, 0.25, 0.75),
        ]);
        results.sweeps = vec![
            "cosine-softmax:temperature=0.1".into(),
            "cosine-softmax:temperature=0.01".into(),
        ];
        let t1 = summarize(&results).unwrap();
        assert_eq!(t1.objectives, ["softmax", "cosine-softmax:temperature=0.05", "sigmoid"]);
        let t4 = table4(&results).unwrap().unwrap();
        assert_eq!(
            t4.objectives,
            [
                "cosine-softmax:temperature=0.01",
                "cosine-softmax:temperature=0.05",
                "cosine-softmax:temperature=0.1"
            ]
        );
    }

    #[test]
    fn the_average_of_table_2_is_bold_by_the_two_way_anova() {
        // b is better by 0.02 on every target, with little noise between seeds: the two-way
        // ANOVA (objective × target) finds a different from b.
        use crate::study::results::{Finetune, TargetInfo};
        let tuned = |target: &str, accuracy: f64| Finetune {
            target: target.into(),
            accuracy,
            learning_rate: 0.01,
            weight_decay: 0.0,
            validation: accuracy,
            grid: Vec::new(),
            cka: Vec::new(),
        };
        let targets = ["t1", "t2", "t3"];
        let base = [0.5, 0.8, 0.65];
        let mut runs = Vec::new();
        for (o, shift) in [("a", 0.0), ("b", 0.02)] {
            for seed in 0..3u64 {
                let mut r = run(o, seed, 0.6, 0.2, 0.8);
                r.finetune = targets
                    .iter()
                    .zip(base)
                    .map(|(t, b)| tuned(t, b + shift + 0.001 * seed as f64))
                    .collect();
                runs.push(r);
            }
        }
        let mut results = study(runs);
        results.targets = targets
            .iter()
            .map(|t| TargetInfo {
                name: (*t).into(),
                data: "d".into(),
                measure: crate::study::results::Measure::Top1,
                multilabel: false,
            })
            .collect();
        let t2 = table2(&results).unwrap().unwrap();
        let average = t2.columns.last().unwrap();
        assert_eq!(average.title, "average fine-tuned");
        assert_eq!(average.bold, [false, true]);
    }

    #[test]
    fn table_2_averages_fine_tuning_over_seeds() {
        use crate::study::results::Finetune;
        let tuned = |accuracy: f64| Finetune {
            target: "t".into(),
            accuracy,
            learning_rate: 0.01,
            weight_decay: 0.0,
            validation: accuracy,
            grid: Vec::new(),
            cka: Vec::new(),
        };
        let mut runs = vec![
            run("a", 0, 0.6, 0.2, 0.8),
            run("a", 1, 0.6, 0.2, 0.8),
            run("b", 0, 0.7, 0.3, 0.7),
            run("b", 1, 0.7, 0.3, 0.7),
        ];
        assert!(table2(&study(runs.clone())).unwrap().is_none());
        for (r, a) in runs.iter_mut().zip([0.90, 0.92, 0.60, 0.61]) {
            r.finetune.push(tuned(a));
        }
        let results = study(runs);
        let t2 = table2(&results).unwrap().unwrap();
        assert_eq!(
            t2.columns.iter().map(|c| c.title.as_str()).collect::<Vec<_>>(),
            ["t fine-tuned", "average fine-tuned"]
        );
        assert!((t2.columns[0].values[0].mean - 0.91).abs() < 1e-12);
        assert!((t2.columns[0].values[1].mean - 0.605).abs() < 1e-12);
        assert_eq!(t2.columns[0].bold, [true, false]);
        let names: Vec<&str> = tables(&results).unwrap().iter().map(|t| t.0).collect();
        assert_eq!(names, ["table1", "table2", "table3", "tableC3"]);
    }

    #[test]
    fn bold_ties_and_correlation() {
        let results = study(vec![
            run("a", 0, 0.60, 0.2, 0.80),
            run("a", 1, 0.61, 0.2, 0.82),
            run("b", 0, 0.75, 0.5, 0.70),
            run("b", 1, 0.77, 0.5, 0.72),
            run("c", 0, 0.50, 0.8, 0.60),
            run("c", 1, 0.80, 0.8, 0.62),
        ]);
        let s = summarize(&results).unwrap();
        assert_eq!(s.objectives, ["a", "b", "c"]);
        let top1 = &s.columns[0];
        assert!((top1.values[1].mean - 0.76).abs() < 1e-12);
        // b is best; c's mean is lower but its spread makes it tie; a differs (p < 0.05).
        assert_eq!(top1.bold, [false, true, true]);
        // Higher R² goes with lower transfer: ρ = −1.
        let (rho, _) = s.r2_vs_transfer.unwrap();
        assert!((rho + 1.0).abs() < 1e-12);
        let md = s.markdown();
        assert!(md.contains("| b | **76.0 ± 1.4** |"), "{md}");
        assert!(md.contains("ρ"), "{md}");
        assert_eq!(s.csv().lines().count(), 4);
    }
}
