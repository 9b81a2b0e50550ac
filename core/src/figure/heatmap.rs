//! A heatmap of a matrix, e.g. the CKA between every layer of two networks (Fig. 2).

use super::{escape, open};

/// A sequential colour map (viridis stops) for `t` in `[0, 1]`.
fn viridis(t: f64) -> String {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + f * (y - x)).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A `rows × cols` heatmap with the value printed in each cell when the grid is small enough to
/// read (at most 16 × 16). Colours map `range` onto the viridis scale; non-finite cells are grey.
///
/// # Shapes
/// - `values`: `rows.len()` rows of `cols.len()` values
pub fn heatmap(title: &str, rows: &[String], cols: &[String], values: &[Vec<f64>], range: (f64, f64)) -> String {
    let cell = if rows.len().max(cols.len()) > 16 { 14.0 } else { 34.0 };
    let label_width = 8.0 + 7.0 * rows.iter().map(|r| r.chars().count()).max().unwrap_or(0) as f64;
    let label_height = 8.0 + 5.5 * cols.iter().map(|c| c.chars().count()).max().unwrap_or(0) as f64;
    let (left, top) = (label_width.max(40.0), 30.0);
    let legend = 60.0;
    let width = left + cell * cols.len() as f64 + legend;
    let height = top + cell * rows.len() as f64 + label_height.max(30.0);
    let mut out = open(width, height, title);
    let show_values = rows.len().max(cols.len()) <= 16;
    let span = (range.1 - range.0).max(f64::MIN_POSITIVE);
    for (i, name) in rows.iter().enumerate() {
        let y = top + cell * i as f64;
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 4.0,
            y + cell / 2.0 + 4.0,
            escape(name)
        ));
        for (j, _) in cols.iter().enumerate() {
            let x = left + cell * j as f64;
            let v = values.get(i).and_then(|r| r.get(j)).copied().unwrap_or(f64::NAN);
            let t = (v - range.0) / span;
            let fill = if v.is_finite() { viridis(t) } else { "#cccccc".into() };
            let shown = if v.is_finite() { format!("{v:.3}") } else { "n/a".into() };
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell}\" height=\"{cell}\" fill=\"{fill}\">\
                 <title>{} × {}: {shown}</title></rect>",
                escape(name),
                escape(&cols[j]),
            ));
            if show_values && v.is_finite() {
                let ink = if t > 0.6 { "#000" } else { "#fff" };
                out.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\" fill=\"{ink}\">{:.2}</text>",
                    x + cell / 2.0,
                    y + cell / 2.0 + 3.0,
                    v
                ));
            }
        }
    }
    let bottom = top + cell * rows.len() as f64;
    for (j, name) in cols.iter().enumerate() {
        let x = left + cell * j as f64 + cell / 2.0;
        out.push_str(&format!(
            "<text transform=\"translate({x:.1},{:.1}) rotate(-45)\" text-anchor=\"end\">{}</text>",
            bottom + 10.0,
            escape(name)
        ));
    }
    // Colour bar.
    let bar_x = left + cell * cols.len() as f64 + 14.0;
    let bar_h = (cell * rows.len() as f64).max(60.0);
    for k in 0..20 {
        let t = 1.0 - k as f64 / 19.0;
        out.push_str(&format!(
            "<rect x=\"{bar_x:.1}\" y=\"{:.1}\" width=\"12\" height=\"{:.2}\" fill=\"{}\"/>",
            top + bar_h * k as f64 / 20.0,
            bar_h / 20.0 + 0.5,
            viridis(t)
        ));
    }
    for (t, v) in [(0.0, range.1), (1.0, range.0)] {
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            bar_x + 15.0,
            top + bar_h * t + 4.0,
            super::axis::tick_label(v)
        ));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::viridis;

    #[test]
    fn colour_map_ends() {
        assert_eq!(viridis(0.0), "#440154");
        assert_eq!(viridis(1.0), "#fde725");
        assert_eq!(viridis(-3.0), viridis(0.0));
    }
}
