//! Value ranges, ticks and the linear map from data to figure coordinates.

/// A linear map from `[lo, hi]` in data units to `[a, b]` in figure units.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scale {
    lo: f64,
    hi: f64,
    a: f64,
    b: f64,
}

impl Scale {
    /// Maps `[lo, hi]` onto `[a, b]`; a zero-width range is widened so the map stays finite.
    pub(super) fn new(lo: f64, hi: f64, a: f64, b: f64) -> Self {
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
        Self { lo, hi, a, b }
    }

    /// The figure coordinate of `v` (clamped to the range).
    pub(super) fn at(&self, v: f64) -> f64 {
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        self.a + t * (self.b - self.a)
    }

    /// About five round tick values inside the range.
    pub(super) fn ticks(&self) -> Vec<f64> {
        let span = self.hi - self.lo;
        let raw = span / 5.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|s| span / s <= 6.0)
            .unwrap_or(10.0 * magnitude);
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    }
}

/// The finite range of `values`, or `fallback` when none is finite; padded by 5 % so points do
/// not sit on the frame.
pub(super) fn range(values: impl IntoIterator<Item = f64>, fallback: (f64, f64)) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return fallback;
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// A tick label: at most four significant decimals, no trailing zeros.
pub(super) fn tick_label(v: f64) -> String {
    let s = format!("{:.4}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// A vertical value axis at `x` with grid lines across to `x_end`.
pub(super) fn y_axis(out: &mut String, scale: &Scale, x: f64, x_end: f64, label: &str) {
    for t in scale.ticks() {
        let y = scale.at(t);
        out.push_str(&format!(
            "<line x1=\"{x:.1}\" x2=\"{x_end:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x - 4.0,
            y + 4.0,
            tick_label(t)
        ));
    }
    let mid = (scale.a + scale.b) / 2.0;
    out.push_str(&format!(
        "<text transform=\"translate({:.1},{mid:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        x - 44.0,
        super::escape(label)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        let s = Scale::new(0.0, 1.0, 0.0, 100.0);
        let labels: Vec<String> = s.ticks().into_iter().map(tick_label).collect();
        assert_eq!(labels, ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        let s = Scale::new(0.37, 0.93, 100.0, 0.0);
        assert!(s.ticks().iter().all(|t| (0.37..=0.93).contains(t)));
        assert_eq!(s.at(0.37), 100.0);
        assert!(Scale::new(2.0, 2.0, 0.0, 1.0).at(2.0).is_finite());
    }
}
