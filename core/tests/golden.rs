//! Golden tests: every analysis against values from an independent numpy/scipy implementation.
//!
//! Inputs and expected values are made by `golden/make_golden.py` (run once by hand; its outputs
//! are committed). Each analysis runs in `f64` (relative tolerance 1e-8, far inside the 1e-5
//! required) and in `f32` (1e-4) on the CPU device.

use std::path::PathBuf;

use losslens_core::analysis::{self, CkaConfig, CkaEstimator, CkaForm, Classes, Distance, MinibatchCkaConfig};
use losslens_core::features::{FeatureFile, Layer};
use losslens_core::{Compute, Precision};
use serde_json::Value;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn inputs() -> FeatureFile {
    FeatureFile::open(golden_dir().join("inputs.npz")).expect("golden inputs")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(golden_dir().join("expected.json")).expect("golden values");
    serde_json::from_str(&text).expect("valid JSON")
}

fn value(e: &Value, key: &str) -> f64 {
    e[key]
        .as_f64()
        .unwrap_or_else(|| panic!("expected.json has no number `{key}`"))
}

fn list(e: &Value, key: &str) -> Vec<f64> {
    e[key]
        .as_array()
        .unwrap_or_else(|| panic!("no list `{key}`"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn layer(file: &FeatureFile, name: &str) -> Layer {
    file.layer(Some(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `check` on the CPU in both precisions with their tolerances.
///
/// A third run streams every layer through the device in chunks of 16 elements (a few rows, or
/// one class, at a time), which must not change any result.
fn both_precisions(check: impl Fn(&Compute, f64)) {
    check(&Compute::cpu().with_precision(Precision::F64), 1e-8);
    check(&Compute::cpu(), 1e-4);
    check(
        &Compute::cpu().with_precision(Precision::F64).with_chunk_elements(16),
        1e-8,
    );
}

#[track_caller]
fn assert_close(actual: f64, expected: f64, rel: f64, what: &str) {
    let scale = expected.abs().max(1e-12);
    assert!(
        (actual - expected).abs() <= rel * scale,
        "{what}: got {actual}, expected {expected} (relative error {:.2e} > {rel:.0e})",
        (actual - expected).abs() / scale
    );
}

fn run<T>(f: impl Future<Output = losslens_core::Result<T>>) -> T {
    pollster::block_on(f).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn linear_cka_matches_numpy_in_both_forms_and_estimators() {
    let (f, e) = (inputs(), expected());
    let relu = f.layer(Some("relu")).unwrap();
    assert_eq!((relu.rows, relu.cols), (60, 12), "4-D activations flatten per example");
    let cases = [
        ("x", "y", CkaEstimator::Biased, "cka_xy_biased"),
        ("x", "y", CkaEstimator::Debiased, "cka_xy_debiased"),
        ("wide", "wide2", CkaEstimator::Biased, "cka_wide_biased"),
        ("wide", "wide2", CkaEstimator::Debiased, "cka_wide_debiased"),
        ("x", "relu", CkaEstimator::Biased, "cka_x_relu_biased"),
    ];
    both_precisions(|compute, tol| {
        for (a, b, estimator, key) in cases {
            for form in [CkaForm::Feature, CkaForm::Gram, CkaForm::Auto] {
                let config = CkaConfig { estimator, form };
                let r = run(analysis::linear_cka(compute, &layer(&f, a), &layer(&f, b), &config));
                assert_close(
                    r.cka,
                    value(&e, key),
                    tol,
                    &format!("{key} ({form:?}, {:?})", compute.precision),
                );
            }
        }
    });
}

#[test]
fn minibatch_cka_matches_numpy() {
    let (f, e) = (inputs(), expected());
    let a: Vec<Layer> = ["mb_a0", "mb_a1", "mb_a2"].iter().map(|n| layer(&f, n)).collect();
    let b: Vec<Layer> = ["mb_b0", "mb_b1"].iter().map(|n| layer(&f, n)).collect();
    both_precisions(|compute, tol| {
        for (batch_size, key, batches) in [(16, "minibatch_cka", 4), (50, "minibatch_cka_full_batch", 1)] {
            let config = MinibatchCkaConfig {
                batch_size,
                shuffle_seed: None,
            };
            let m = run(analysis::minibatch_cka(compute, &a, &b, &config));
            assert_eq!(
                (m.batches, m.batch_size, m.n),
                (batches, if batches == 4 { 13 } else { 50 }, 50)
            );
            let want = e[key].as_array().unwrap();
            for (i, row) in want.iter().enumerate() {
                for (j, v) in row.as_array().unwrap().iter().enumerate() {
                    // Entries near zero are compared on the scale of the matrix.
                    let v = v.as_f64().unwrap();
                    let err = (m.values[i][j] - v).abs();
                    assert!(
                        err <= tol * v.abs().max(0.1),
                        "{key}[{i}][{j}]: got {}, expected {v}",
                        m.values[i][j]
                    );
                }
            }
        }
    });
}

#[test]
fn one_batch_minibatch_cka_is_debiased_cka() {
    let f = inputs();
    let compute = Compute::cpu().with_precision(Precision::F64);
    let (x, y) = (layer(&f, "mb_a1"), layer(&f, "mb_b0"));
    let config = MinibatchCkaConfig {
        batch_size: 1000,
        shuffle_seed: None,
    };
    let m = run(analysis::minibatch_cka(
        &compute,
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
        &config,
    ));
    let debiased = CkaConfig {
        estimator: CkaEstimator::Debiased,
        form: CkaForm::Feature,
    };
    let full = run(analysis::linear_cka(&compute, &x, &y, &debiased));
    assert_close(m.values[0][0], full.cka, 1e-10, "one-batch minibatch CKA");
}

#[test]
fn class_separation_matches_brute_force_numpy() {
    let (f, e) = (inputs(), expected());
    let classes = Classes::new(f.labels().unwrap(), None).unwrap();
    assert_eq!(classes.counts(), &[24, 12, 12, 12]);
    both_precisions(|compute, tol| {
        for (name, distance, key) in [
            ("emb", Distance::Cosine, "r2_cosine"),
            ("emb", Distance::CosineMeanSubtracted, "r2_cosine_mean_subtracted"),
            ("emb", Distance::SquaredEuclidean, "r2_euclidean"),
            ("x", Distance::Cosine, "r2_cosine_x"),
        ] {
            let s = run(analysis::class_separation(
                compute,
                &layer(&f, name),
                &classes,
                distance,
            ));
            assert_close(s.r2, value(&e, key), tol, key);
            assert_close(1.0 - s.within / s.total, value(&e, key), tol, key);
        }
    });
}

#[test]
fn sparsity_matches_numpy() {
    let (f, e) = (inputs(), expected());
    both_precisions(|compute, _| {
        for (name, key) in [("relu", "sparsity_relu"), ("x", "sparsity_x")] {
            let got = run(analysis::fraction_nonzero(compute, &layer(&f, name)));
            assert_eq!(got, value(&e, key), "{key}: counts are exact");
        }
    });
}

#[test]
fn neural_collapse_matches_numpy() {
    let (f, e) = (inputs(), expected());
    let classes = Classes::new(f.labels().unwrap(), None).unwrap();
    let weights = f.weights("weights").unwrap();
    both_precisions(|compute, tol| {
        let c = run(analysis::neural_collapse(
            compute,
            &layer(&f, "emb"),
            &classes,
            Some(&weights),
        ));
        assert_close(c.means.equinorm, value(&e, "nc_equinorm_means"), tol, "equinorm means");
        assert_close(
            c.means.equiangular,
            value(&e, "nc_equiangular_means"),
            tol,
            "equiangular means",
        );
        assert_close(
            c.means.max_angle,
            value(&e, "nc_maxangle_means"),
            tol,
            "max angle means",
        );
        let w = c.weights.expect("weights given");
        assert_close(w.equinorm, value(&e, "nc_equinorm_weights"), tol, "equinorm weights");
        assert_close(
            w.equiangular,
            value(&e, "nc_equiangular_weights"),
            tol,
            "equiangular weights",
        );
        assert_close(w.max_angle, value(&e, "nc_maxangle_weights"), tol, "max angle weights");
        assert_close(
            c.self_duality.unwrap(),
            value(&e, "nc_self_duality"),
            tol,
            "self-duality",
        );
        assert_close(c.nc1, value(&e, "nc1"), tol, "Tr(Sw Sb+)/C");
        assert_eq!(c.rank_between, 3);

        let x = run(analysis::neural_collapse(compute, &layer(&f, "x"), &classes, None));
        assert_close(x.means.equinorm, value(&e, "x_nc_equinorm_means"), tol, "x equinorm");
        assert_close(
            x.means.equiangular,
            value(&e, "x_nc_equiangular_means"),
            tol,
            "x equiangular",
        );
        assert_close(x.means.max_angle, value(&e, "x_nc_maxangle_means"), tol, "x max angle");
        assert_close(x.nc1, value(&e, "x_nc1"), tol, "x Tr(Sw Sb+)/C");
        assert!(x.weights.is_none() && x.self_duality.is_none());
    });
}

#[test]
fn spectra_match_numpy_svd() {
    let (f, e) = (inputs(), expected());
    let classes = Classes::new(f.labels().unwrap(), None).unwrap();
    let weights = f.weights("weights").unwrap();
    // Rank-deficient inputs end in a singular value that is pure rounding noise: compare those
    // on the scale of the largest one.
    let compare = |got: &[f64], want: &[f64], tol: f64, noise_tol: f64, what: &str| {
        assert_eq!(got.len(), want.len(), "{what}: count");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            if *w < 1e-10 * want[0] {
                assert!(g.abs() <= noise_tol * want[0], "{what}[{i}]: {g} should be ~0");
            } else {
                assert_close(*g, *w, tol, &format!("{what}[{i}]"));
            }
        }
    };
    for (compute, tol, noise_tol) in [
        (Compute::cpu().with_precision(Precision::F64), 1e-8, 1e-6),
        (Compute::cpu(), 1e-3, 3e-3),
        (
            Compute::cpu().with_precision(Precision::F64).with_chunk_elements(16),
            1e-8,
            1e-6,
        ),
    ] {
        let s = run(analysis::spectra(
            &compute,
            &layer(&f, "emb"),
            Some(&classes),
            Some(&weights),
        ));
        compare(
            &s.features.singular_values,
            &list(&e, "sv_emb_centered"),
            tol,
            noise_tol,
            "emb",
        );
        compare(
            &s.class_means.unwrap().singular_values,
            &list(&e, "sv_class_means"),
            tol,
            noise_tol,
            "centroids",
        );
        compare(
            &s.weights.unwrap().singular_values,
            &list(&e, "sv_weights"),
            tol,
            noise_tol,
            "weights",
        );
        let wide = run(analysis::spectra(&compute, &layer(&f, "wide"), None, None));
        compare(
            &wide.features.singular_values,
            &list(&e, "sv_wide_centered"),
            tol,
            noise_tol,
            "wide",
        );
    }
}

#[test]
fn statistics_match_scipy() {
    let (f, e) = (inputs(), expected());
    let vector = |name: &str| match &f.array(name).unwrap().data {
        losslens_core::features::ArrayData::F64(v) => v.clone(),
        other => panic!("{name}: {other:?}"),
    };
    let (a, b) = (vector("stats_a"), vector("stats_b"));
    let sa = analysis::mean_sd(&a).unwrap();
    let sb = analysis::mean_sd(&b).unwrap();
    assert_close(sa.mean, value(&e, "stats_a_mean"), 1e-12, "mean a");
    assert_close(sa.sd, value(&e, "stats_a_sd"), 1e-10, "sd a");
    assert_close(sb.mean, value(&e, "stats_b_mean"), 1e-12, "mean b");
    assert_close(sb.sd, value(&e, "stats_b_sd"), 1e-10, "sd b");
    let t = analysis::welch_t_test(&a, &b).unwrap();
    assert_close(t.t, value(&e, "welch_t"), 1e-9, "Welch t");
    assert_close(t.p, value(&e, "welch_p"), 1e-6, "Welch p");
    let t = analysis::welch_t_test(&[1.0, 2.0, 3.0], &[1.5, 2.5, 3.5, 4.5]).unwrap();
    assert_close(t.t, value(&e, "welch_t_ab_equal"), 1e-9, "Welch t (2)");
    assert_close(t.p, value(&e, "welch_p_ab_equal"), 1e-6, "Welch p (2)");
    let s = analysis::spearman(&vector("spear_x"), &vector("spear_y")).unwrap();
    assert_close(s.rho, value(&e, "spearman_rho"), 1e-12, "Spearman rho");
    assert_close(s.p, value(&e, "spearman_p"), 1e-6, "Spearman p");
    let s = analysis::spearman(
        &[1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0],
        &[2.0, 1.0, 3.0, 3.0, 5.0, 4.0, 6.0],
    )
    .unwrap();
    assert_close(s.rho, value(&e, "spearman_ties_rho"), 1e-12, "Spearman rho (ties)");
    assert_close(s.p, value(&e, "spearman_ties_p"), 1e-6, "Spearman p (ties)");
}

#[test]
fn two_way_anova_matches_nested_least_squares() {
    // golden/make_anova.py: the F-test of the objective factor from nested least-squares models
    // (numpy, scipy), with several seeds per cell and with one (the additive model).
    let cases: serde_json::Value = serde_json::from_str(include_str!("golden/anova.json")).unwrap();
    let cells = |v: &serde_json::Value| -> Vec<Vec<f64>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
            .collect()
    };
    for case in cases.as_array().unwrap() {
        let (a, b) = (cells(&case["a"]), cells(&case["b"]));
        let test = losslens_core::analysis::stats::two_way_anova(&a, &b).unwrap();
        let (p, f, df) = (
            case["p"].as_f64().unwrap(),
            case["f"].as_f64().unwrap(),
            case["df"].as_f64().unwrap(),
        );
        assert_eq!(test.df, df);
        assert!(
            (test.t * test.t - f).abs() <= 1e-9 * f.max(1.0),
            "F {} vs {f}",
            test.t * test.t
        );
        assert!((test.p - p).abs() <= 1e-9_f64.max(1e-6 * p), "p {} vs {p}", test.p);
    }
}

/// Angular visual hardness and the cosine-distance histograms (Figs. E.1, E.3) against numpy
/// (`angles/make_angles_reference.py`), including a zero feature vector, in `f64` (also in
/// chunks of a few rows) and in `f32`; and the invariants: AVH in [0, 1], `1/K` for a vector at
/// right angles to every class, every pair counted once.
#[test]
fn angles_match_numpy() {
    use losslens_core::analysis::angles::{angular_visual_hardness, cosine_distance_histograms};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/angles/reference.json");
    let e: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let count = |key: &str| e[key].as_u64().unwrap() as usize;
    let (n, p, k, bins) = (count("examples"), count("width"), count("classes"), count("bins"));
    let features = Layer::from_f64("x", n, p, list(&e, "features"));
    let weights = Layer::from_f64("w", k, p, list(&e, "weights"));
    let labels: Vec<usize> = list(&e, "labels").iter().map(|&l| l as usize).collect();
    for (compute, tol, slack) in [
        (Compute::cpu().with_precision(Precision::F64), 1e-10, 0),
        (
            Compute::cpu().with_precision(Precision::F64).with_chunk_elements(40),
            1e-10,
            0,
        ),
        (Compute::cpu(), 1e-5, 2),
    ] {
        let avh = run(angular_visual_hardness(&compute, &features, &labels, &weights));
        for (i, (got, want)) in avh.iter().zip(list(&e, "avh")).enumerate() {
            assert!((got - want).abs() <= tol, "AVH[{i}]: {got} vs {want}");
        }
        assert!((avh[5] - 1.0 / k as f64).abs() < 1e-6, "a zero vector is 1/K hard");
        let (within, between) = run(cosine_distance_histograms(&compute, &features, &labels, bins));
        assert_eq!(within.count + between.count, (n * (n - 1) / 2) as u64);
        for (h, key) in [(&within, "within"), (&between, "between")] {
            let want = list(&e, key);
            let off: u64 = h.counts.iter().zip(&want).map(|(&c, &w)| c.abs_diff(w as u64)).sum();
            // In f32 a distance within rounding of a bin edge may land in the next bin.
            assert!(off <= slack, "{key}: {:?} vs {want:?}", h.counts);
            let mean = value(&e, &format!("{key}_mean"));
            assert!(
                (h.mean - mean).abs() <= tol.max(1e-6),
                "{key} mean {} vs {mean}",
                h.mean
            );
        }
    }
    // Bad input is refused by name.
    let compute = Compute::cpu();
    let narrow = Layer::from_f64("w", k, p - 1, vec![1.0; k * (p - 1)]);
    assert!(run_err(angular_visual_hardness(&compute, &features, &labels, &narrow)).contains("classifier rows"));
    let mut bad = labels.clone();
    bad[3] = k;
    assert!(run_err(angular_visual_hardness(&compute, &features, &bad, &weights)).contains("out of range"));
    assert!(run_err(cosine_distance_histograms(&compute, &features, &labels[1..], bins)).contains("labels"));
}

fn run_err<T>(f: impl Future<Output = losslens_core::Result<T>>) -> String {
    match pollster::block_on(f) {
        Ok(_) => panic!("bad input was accepted"),
        Err(e) => e.to_string(),
    }
}

/// Prediction agreement (Figs. C.4, C.5), modal-vote ensembles (Figs. C.6, C.7) and the
/// average-linkage clustering with its dendrogram order against numpy and scipy
/// (`agreement/make_agreement_reference.py`).
#[test]
fn agreement_ensembles_and_linkage_match_scipy() {
    use losslens_core::analysis::agreement::{accuracy, average_linkage, leaf_order, modal_vote, pairwise_agreement};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agreement/reference.json");
    let e: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ints = |v: &Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    };
    let matrix = |v: &Value| -> Vec<Vec<f64>> {
        let row = |r: &Value| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        v.as_array().unwrap().iter().map(row).collect()
    };
    let predictions: Vec<Vec<usize>> = e["predictions"].as_array().unwrap().iter().map(ints).collect();
    let labels = ints(&e["labels"]);
    let found = pairwise_agreement(&predictions, &labels).unwrap();
    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-12, "{what}: {a} vs {b}");
    for (got, want, what) in [
        (&found.same_prediction, matrix(&e["same_prediction"]), "same prediction"),
        (
            &found.same_correctness,
            matrix(&e["same_correctness"]),
            "same correctness",
        ),
    ] {
        for (i, row) in want.iter().enumerate() {
            for (j, w) in row.iter().enumerate() {
                close(got[i][j], *w, &format!("{what} [{i}][{j}]"));
            }
        }
    }
    let same_error = matrix(&e["same_error"]);
    for (i, row) in same_error.iter().enumerate() {
        for (j, w) in row.iter().enumerate() {
            close(found.same_error[i][j].unwrap(), *w, &format!("same error [{i}][{j}]"));
        }
    }
    let distance: Vec<Vec<f64>> = same_error
        .iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(|(j, s)| if i == j { 0.0 } else { 1.0 - s })
                .collect()
        })
        .collect();
    let merges = average_linkage(&distance);
    for (m, want) in merges.iter().zip(matrix(&e["linkage"])) {
        assert_eq!(
            (m.a, m.b, m.size),
            (want[0] as usize, want[1] as usize, want[3] as usize),
            "{m:?}"
        );
        close(m.distance, want[2], "linkage distance");
    }
    assert_eq!(leaf_order(&merges, predictions.len()), ints(&e["leaves"]));
    for (name, ensemble) in e["ensembles"].as_object().unwrap() {
        let members: Vec<&[usize]> = ints(&ensemble["members"])
            .iter()
            .map(|&m| predictions[m].as_slice())
            .collect();
        let votes = modal_vote(&members);
        assert_eq!(votes, ints(&ensemble["votes"]), "{name}");
        close(accuracy(&votes, &labels), ensemble["accuracy"].as_f64().unwrap(), name);
    }
    // Predictions of another length are refused.
    assert!(pairwise_agreement(&[vec![0; 3]], &labels).is_err());
}

/// A damaged clustering (a merge naming itself or a cluster not made yet) still gives a finite
/// leaf order.
#[test]
fn damaged_linkage_orders_without_looping() {
    use losslens_core::analysis::agreement::{Merge, leaf_order};
    let merge = |a, b| Merge {
        a,
        b,
        distance: 0.1,
        size: 2,
    };
    assert_eq!(leaf_order(&[merge(3, 0), merge(1, 4)], 3), [1]);
    assert_eq!(leaf_order(&[merge(0, 1), merge(2, 3)], 3), [2, 0, 1]);
}
