//! A line chart over categories, e.g. R² or sparsity by layer for each objective (Figs. 3, 4).

use super::axis::{Scale, range, y_axis};
use super::{colour, escape, open};

/// One line of a [`line_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// One value per x label; `None` (or non-finite) leaves a gap.
    pub values: Vec<Option<f64>>,
}

/// Lines over the categorical x axis `x_labels`, with a legend.
pub fn line_chart(title: &str, x_labels: &[String], series: &[Series], y_label: &str) -> String {
    let (left, top, plot_h) = (64.0, 30.0, 240.0);
    let step = 44.0;
    let plot_w = step * x_labels.len().saturating_sub(1).max(3) as f64;
    let legend_w = 16.0 + 7.0 * series.iter().map(|s| s.name.chars().count()).max().unwrap_or(0) as f64;
    let label_height = 10.0 + 5.5 * x_labels.iter().map(|c| c.chars().count()).max().unwrap_or(0) as f64;
    let width = left + plot_w + 30.0 + legend_w;
    let height = top + plot_h + label_height.max(30.0);
    let all = series.iter().flat_map(|s| s.values.iter().flatten().copied());
    let (lo, hi) = range(all, (0.0, 1.0));
    let scale = Scale::new(lo, hi, top + plot_h, top);
    let mut out = open(width, height, title);
    y_axis(&mut out, &scale, left, left + plot_w + 10.0, y_label);
    let x_at = |i: usize| left + 10.0 + step * i as f64;
    for (i, label) in x_labels.iter().enumerate() {
        out.push_str(&format!(
            "<text transform=\"translate({:.1},{:.1}) rotate(-45)\" text-anchor=\"end\">{}</text>",
            x_at(i),
            top + plot_h + 12.0,
            escape(label)
        ));
    }
    for (k, s) in series.iter().enumerate() {
        let mut path = String::new();
        let mut pen_down = false;
        for (i, v) in s.values.iter().enumerate() {
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    let (x, y) = (x_at(i), scale.at(v));
                    path.push_str(&format!("{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" }));
                    out.push_str(&format!(
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{}\"><title>{} at {}: {v:.4}</title></circle>",
                        colour(k),
                        escape(&s.name),
                        escape(x_labels.get(i).map_or("", String::as_str))
                    ));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !path.is_empty() {
            out.push_str(&format!(
                "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
                path.trim_end(),
                colour(k)
            ));
        }
        let ly = top + 14.0 * k as f64;
        let lx = left + plot_w + 30.0;
        out.push_str(&format!(
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            ly,
            colour(k),
            lx + 14.0,
            ly + 9.0,
            escape(&s.name)
        ));
    }
    out.push_str("</svg>");
    out
}
