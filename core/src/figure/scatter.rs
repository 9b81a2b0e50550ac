//! A labelled scatter plot, e.g. transfer accuracy against class separation (Fig. 5a).

use super::axis::{Scale, range, tick_label, y_axis};
use super::{colour, escape, open};

/// One point of a [`scatter`].
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Text beside the point (e.g. the objective).
    pub label: String,
    /// Horizontal value.
    pub x: f64,
    /// Vertical value.
    pub y: f64,
    /// Colour index (e.g. the objective's position).
    pub series: usize,
}

/// Points with their labels; non-finite points are left out.
pub fn scatter(title: &str, points: &[Point], x_label: &str, y_label: &str) -> String {
    let (left, top, plot_w, plot_h) = (64.0, 30.0, 420.0, 280.0);
    let width = left + plot_w + 120.0;
    let height = top + plot_h + 50.0;
    let shown: Vec<&Point> = points.iter().filter(|p| p.x.is_finite() && p.y.is_finite()).collect();
    let (x_lo, x_hi) = range(shown.iter().map(|p| p.x), (0.0, 1.0));
    let (y_lo, y_hi) = range(shown.iter().map(|p| p.y), (0.0, 1.0));
    let xs = Scale::new(x_lo, x_hi, left, left + plot_w);
    let ys = Scale::new(y_lo, y_hi, top + plot_h, top);
    let mut out = open(width, height, title);
    y_axis(&mut out, &ys, left, left + plot_w, y_label);
    for t in xs.ticks() {
        let x = xs.at(t);
        out.push_str(&format!(
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top + plot_h,
            top + plot_h + 16.0,
            tick_label(t)
        ));
    }
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        left + plot_w / 2.0,
        top + plot_h + 38.0,
        escape(x_label)
    ));
    for p in shown {
        let (x, y) = (xs.at(p.x), ys.at(p.y));
        out.push_str(&format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{c}\"><title>{l}: ({:.4}, {:.4})</title></circle>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\">{l}</text>",
            p.x,
            p.y,
            x + 7.0,
            y + 4.0,
            c = colour(p.series),
            l = escape(&p.label),
        ));
    }
    out.push_str("</svg>");
    out
}
