//! Calibration in each objective's probability model (the paper's Table C.3): NLL, ECE and the
//! fitted temperature of softmax and of normalised sigmoids, against numpy
//! (`calibration/make_calibration.py`, a dense search over T instead of losslens' bisection and
//! golden-section search).

use losslens_core::probe::metrics::Probability;

fn expected() -> serde_json::Value {
    serde_json::from_str(include_str!("calibration/expected.json")).unwrap()
}

#[test]
fn nll_ece_and_temperature_match_numpy_for_both_probability_models() {
    let e = expected();
    let logits: Vec<f64> = e["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let labels: Vec<usize> = e["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let k = e["classes"].as_u64().unwrap() as usize;
    for (model, key) in [
        (Probability::Softmax, "softmax"),
        (Probability::NormalizedSigmoid, "normalized-sigmoid"),
    ] {
        let want = &e[key];
        let close = |a: f64, b: f64, tol: f64, what: &str| assert!((a - b).abs() <= tol, "{key} {what}: {a} vs {b}");
        close(
            model.nll(&logits, k, &labels, 1.0),
            want["nll"].as_f64().unwrap(),
            1e-12,
            "NLL",
        );
        close(
            model.ece(&logits, k, &labels, 1.0),
            want["ece"].as_f64().unwrap(),
            1e-12,
            "ECE",
        );
        close(
            model.ece(&logits, k, &labels, 2.0),
            want["ece_at_2"].as_f64().unwrap(),
            1e-12,
            "ECE at T = 2",
        );
        let t = model.fit_temperature(&logits, k, &labels);
        // The dense search's grid step is 1e-4 relative: the optimum agrees to that, and the
        // NLL there to far better.
        close(t, want["temperature"].as_f64().unwrap(), 2e-4 * t, "temperature");
        close(
            model.nll(&logits, k, &labels, t),
            want["nll_at_best"].as_f64().unwrap(),
            1e-9,
            "NLL at T*",
        );
    }
}
