//! A dendrogram: the merges of a hierarchical clustering as nested brackets, leaves left to
//! right in the clustering's own order, merge heights on the vertical axis.

use crate::figure::{escape, open};

/// A dendrogram of `labels.len()` leaves from `merges`, rows of scipy's linkage matrix `(a, b,
/// height)`: leaves are `0..n`, merge `t` makes cluster `n + t`. `order` lists the leaves from
/// left to right (each merge's `a` left of its `b`).
pub fn dendrogram(
    title: &str,
    labels: &[String],
    merges: &[(usize, usize, f64)],
    order: &[usize],
    y_label: &str,
) -> String {
    let n = labels.len();
    let step = 28.0;
    let (left, top, plot_h) = (56.0, 30.0, 220.0);
    let label_height = 10.0 + 5.5 * labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    let width = left + step * n.max(1) as f64 + 20.0;
    let height = top + plot_h + label_height.max(30.0);
    let max = merges
        .iter()
        .map(|m| m.2)
        .filter(|h| h.is_finite())
        .fold(0.0f64, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    // A non-finite height is drawn at the top.
    let y_of = |h: f64| top + plot_h - plot_h * (if h.is_finite() { h.clamp(0.0, max) } else { max } / max);
    let mut out = open(width, height, title);
    // The axis, with the largest height and 0.
    out.push_str(&format!(
        "<line x1=\"{left:.1}\" y1=\"{top:.1}\" x2=\"{left:.1}\" y2=\"{:.1}\" stroke=\"#444\"/>",
        top + plot_h
    ));
    for (value, y) in [(max, top), (0.0, top + plot_h)] {
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{value:.3}</text>",
            left - 4.0,
            y + 4.0
        ));
    }
    out.push_str(&format!(
        "<text transform=\"translate(14,{:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        top + plot_h / 2.0,
        escape(y_label)
    ));
    // Each cluster's position: leaves at their slot, merges between their children.
    let mut x = vec![0.0; n + merges.len()];
    let mut y = vec![top + plot_h; n + merges.len()];
    for (slot, &leaf) in order.iter().enumerate().filter(|(_, l)| **l < n) {
        x[leaf] = left + step * (slot as f64 + 0.5);
        out.push_str(&format!(
            "<text transform=\"translate({:.1},{:.1}) rotate(-45)\" text-anchor=\"end\">{}</text>",
            x[leaf],
            top + plot_h + 12.0,
            escape(&labels[leaf])
        ));
    }
    for (t, &(a, b, h)) in merges.iter().enumerate() {
        if a >= n + t || b >= n + t {
            continue; // not a valid linkage row: drawn as nothing
        }
        let (xa, xb, ya, yb, ym) = (x[a], x[b], y[a], y[b], y_of(h));
        out.push_str(&format!(
            "<path d=\"M{xa:.1},{ya:.1} V{ym:.1} H{xb:.1} V{yb:.1}\" fill=\"none\" stroke=\"#4e79a7\" \
             stroke-width=\"1.5\"><title>{}</title></path>",
            if h.is_finite() { format!("{h:.4}") } else { "n/a".into() }
        ));
        x[n + t] = (xa + xb) / 2.0;
        y[n + t] = ym;
    }
    out.push_str("</svg>");
    out
}
