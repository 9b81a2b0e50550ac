//! A bar chart, e.g. class separation R² of each layer.

use super::axis::{Scale, range, y_axis};
use super::{colour, escape, open};

/// One bar per label; `y_range` fixes the value axis (e.g. `(0, 1)` for R²), otherwise it
/// covers the values and zero. Non-finite values leave a gap marked "n/a".
pub fn bar_chart(title: &str, labels: &[String], values: &[f64], y_label: &str, y_range: Option<(f64, f64)>) -> String {
    let bar = 28.0f64;
    let (left, top, plot_h) = (60.0, 30.0, 220.0);
    let label_height = 10.0 + 5.5 * labels.iter().map(|c| c.chars().count()).max().unwrap_or(0) as f64;
    let width = left + (bar * 1.5) * labels.len().max(4) as f64 + 20.0;
    let height = top + plot_h + label_height.max(30.0);
    let (lo, hi) = y_range.unwrap_or_else(|| {
        let (lo, hi) = range(values.iter().copied().chain([0.0]), (0.0, 1.0));
        (lo.min(0.0), hi)
    });
    let scale = Scale::new(lo, hi, top + plot_h, top);
    let mut out = open(width, height, title);
    y_axis(&mut out, &scale, left, width - 10.0, y_label);
    let base = scale.at(0f64.clamp(lo, hi));
    for (i, (label, &v)) in labels.iter().zip(values).enumerate() {
        let x = left + 10.0 + bar * 1.5 * i as f64;
        if v.is_finite() {
            let y = scale.at(v);
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {v:.4}</title></rect>",
                y.min(base),
                (y - base).abs(),
                colour(0),
                escape(label)
            ));
        } else {
            out.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#888\">n/a</text>",
                x + bar / 2.0,
                base - 4.0
            ));
        }
        out.push_str(&format!(
            "<text transform=\"translate({:.1},{:.1}) rotate(-45)\" text-anchor=\"end\">{}</text>",
            x + bar / 2.0,
            top + plot_h + 12.0,
            escape(label)
        ));
    }
    out.push_str("</svg>");
    out
}
