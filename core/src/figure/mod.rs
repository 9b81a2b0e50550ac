//! SVG figures shared by `losslens report` and the browser explorer, so a chart in a static
//! result page and the same chart recomputed in the browser are drawn by one function.
//!
//! Every function returns a complete `<svg>` element as a string (its natural size, and a
//! `viewBox` so a page can shrink it) with a `<title>` for screen readers. Non-finite values are
//! drawn as gaps (lines, bars) or grey cells (heatmaps), never as a panic.

mod axis;
mod bars;
mod dendrogram;
mod heatmap;
mod lines;
mod scatter;

pub use bars::bar_chart;
pub use dendrogram::dendrogram;
pub use heatmap::heatmap;
pub use lines::{Series, line_chart};
pub use scatter::{Point, scatter};

/// A categorical palette (Tableau 10) for series and objectives, in order.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

/// The colour of series `i` (the palette repeats after ten).
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Escapes text for SVG/XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The opening tag of a figure `width × height` user units, with its title.
fn open(width: f64, height: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" \
         height=\"{height}\" role=\"img\" \
         font-family=\"system-ui, sans-serif\" font-size=\"12\"><title>{t}</title>\
         <text x=\"{x}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"600\">{t}</text>",
        t = escape(title),
        x = width / 2.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each figure is well-formed enough to be parsed as XML: balanced tags, escaped text.
    fn balanced(svg: &str) {
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        let opens = svg.matches("<svg").count();
        let closes = svg.matches("</svg>").count();
        assert_eq!(opens, closes);
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "non-finite coordinates: {svg}"
        );
    }

    #[test]
    fn figures_escape_text_and_survive_odd_values() {
        let names = vec!["a<b".to_string(), "c&d".to_string()];
        let h = heatmap(
            "CKA <x>",
            &names,
            &names,
            &[vec![1.0, f64::NAN], vec![0.5, 1.0]],
            (0.0, 1.0),
        );
        balanced(&h);
        assert!(h.contains("a&lt;b") && h.contains("CKA &lt;x&gt;"));
        let b = bar_chart("R²", &names, &[0.2, f64::INFINITY], "R²", Some((0.0, 1.0)));
        balanced(&b);
        // A dendrogram with a non-finite height and a row that names a cluster not yet made.
        let three = vec!["a<b".to_string(), "c".to_string(), "d".to_string()];
        let d = dendrogram("tree", &three, &[(0, 1, f64::NAN), (2, 9, 0.5)], &[0, 1, 2], "distance");
        balanced(&d);
        assert!(d.contains("a&lt;b") && d.matches("<path").count() == 1);
        let l = line_chart(
            "R² by layer",
            &names,
            &[Series {
                name: "softmax".into(),
                values: vec![Some(0.1), None],
            }],
            "R²",
        );
        balanced(&l);
        let s = scatter(
            "transfer",
            &[
                Point {
                    label: "x".into(),
                    x: 0.1,
                    y: 0.2,
                    series: 0,
                },
                Point {
                    label: "y".into(),
                    x: 0.1,
                    y: 0.2,
                    series: 1,
                },
            ],
            "R²",
            "accuracy",
        );
        balanced(&s);
        // Empty inputs draw an empty frame rather than failing.
        balanced(&heatmap("empty", &[], &[], &[], (0.0, 1.0)));
        balanced(&bar_chart("empty", &[], &[], "y", None));
        balanced(&line_chart("empty", &[], &[], "y"));
        balanced(&scatter("empty", &[], "x", "y"));
    }
}
