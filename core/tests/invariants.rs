//! Invariants of the analyses on random inputs (proptest), in `f64` on the CPU device.

use losslens_core::analysis::{
    self, CkaConfig, CkaEstimator, CkaForm, Classes, Distance, MinibatchCkaConfig, minibatch_cka::permutation,
};
use losslens_core::features::Layer;
use losslens_core::{Compute, Precision};
use proptest::prelude::*;

fn compute() -> Compute {
    Compute::cpu().with_precision(Precision::F64)
}

fn run<T>(f: impl Future<Output = losslens_core::Result<T>>) -> T {
    pollster::block_on(f).unwrap_or_else(|e| panic!("{e}"))
}

fn cka(x: &Layer, y: &Layer, estimator: CkaEstimator, form: CkaForm) -> f64 {
    run(analysis::linear_cka(&compute(), x, y, &CkaConfig { estimator, form })).cka
}

/// A random `[n, p]` layer with entries in [-1, 1).
fn matrix(n: std::ops::Range<usize>, p: std::ops::Range<usize>) -> impl Strategy<Value = Layer> {
    (n, p).prop_flat_map(|(n, p)| {
        prop::collection::vec(-1.0f64..1.0, n * p).prop_map(move |v| Layer::from_f64("m", n, p, v))
    })
}

/// A random orthogonal `p × p` matrix (Gram–Schmidt of a random matrix), row-major.
fn orthogonal(p: usize, seed: &[f64]) -> Vec<f64> {
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(p);
    for i in 0..p {
        let mut v: Vec<f64> = (0..p)
            .map(|j| seed[(i * p + j) % seed.len()] + if i == j { 2.0 } else { 0.0 })
            .collect();
        for u in &q {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        q.push(v.into_iter().map(|a| a / norm).collect());
    }
    q.into_iter().flatten().collect()
}

fn times(x: &Layer, q: &[f64], scale: f64) -> Layer {
    let (n, p) = (x.rows, x.cols);
    let v = match &x.data {
        losslens_core::features::FloatData::F64(v) => v,
        _ => unreachable!(),
    };
    let mut out = vec![0.0; n * p];
    for i in 0..n {
        for j in 0..p {
            out[i * p + j] = scale * (0..p).map(|k| v[i * p + k] * q[k * p + j]).sum::<f64>();
        }
    }
    Layer::from_f64("xq", n, p, out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn cka_of_a_representation_with_itself_is_one(x in matrix(6..40, 1..12)) {
        for estimator in [CkaEstimator::Biased, CkaEstimator::Debiased] {
            for form in [CkaForm::Feature, CkaForm::Gram] {
                prop_assert!((cka(&x, &x, estimator, form) - 1.0).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn cka_is_symmetric_and_its_forms_agree(x in matrix(8..30, 1..10), seed in prop::collection::vec(-1.0f64..1.0, 300)) {
        let q = Layer::from_f64("y", x.rows, 5, (0..x.rows * 5).map(|i| seed[i % seed.len()] * (i as f64).sin()).collect());
        for estimator in [CkaEstimator::Biased, CkaEstimator::Debiased] {
            let xy = cka(&x, &q, estimator, CkaForm::Feature);
            prop_assert!((xy - cka(&q, &x, estimator, CkaForm::Feature)).abs() < 1e-9);
            prop_assert!((xy - cka(&x, &q, estimator, CkaForm::Gram)).abs() < 1e-9);
            if estimator == CkaEstimator::Biased {
                prop_assert!((-1e-12..=1.0 + 1e-12).contains(&xy));
            }
        }
    }

    #[test]
    fn cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling(
        x in matrix(8..30, 2..8),
        seed in prop::collection::vec(-1.0f64..1.0, 64),
        scale in 0.01f64..100.0,
    ) {
        let y = Layer::from_f64("y", x.rows, 3, (0..x.rows * 3).map(|i| seed[i % seed.len()] + (i as f64 * 0.7).cos()).collect());
        let xq = times(&x, &orthogonal(x.cols, &seed), scale);
        for estimator in [CkaEstimator::Biased, CkaEstimator::Debiased] {
            let before = cka(&x, &y, estimator, CkaForm::Auto);
            let after = cka(&xq, &y, estimator, CkaForm::Auto);
            prop_assert!((before - after).abs() < 1e-8, "{before} vs {after}");
        }
    }

    #[test]
    fn class_separation_lies_in_unit_interval(
        x in matrix(12..50, 1..8),
        k in 2usize..5,
    ) {
        let labels: Vec<usize> = (0..x.rows).map(|i| i % k).collect();
        let classes = Classes::new(labels, None).unwrap();
        for distance in Distance::ALL {
            match pollster::block_on(analysis::class_separation(&compute(), &x, &classes, distance)) {
                Ok(s) => prop_assert!((0.0..=1.0).contains(&s.r2), "{distance:?}: {}", s.r2),
                // A random row can only be all-zero by construction here, never by chance.
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }

    #[test]
    fn perfectly_collapsed_classes_have_r2_one(
        centres in prop::collection::vec(0.1f64..1.0, 12),
        per_class in 1usize..6,
    ) {
        // Three distinct class centres in 4 dimensions (positive, so never zero or identical
        // after the small offsets); every example equals its class centre.
        let k = 3;
        let p = 4;
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for i in 0..k * per_class {
            let c = i % k;
            labels.push(c);
            data.extend((0..p).map(|j| centres[c * p + j] + if j == c { 3.0 } else { 0.0 }));
        }
        let x = Layer::from_f64("collapsed", k * per_class, p, data);
        let classes = Classes::new(labels, None).unwrap();
        for distance in Distance::ALL {
            let s = run(analysis::class_separation(&compute(), &x, &classes, distance));
            prop_assert!((s.r2 - 1.0).abs() < 1e-12, "{distance:?}: {}", s.r2);
        }
    }

    #[test]
    fn shuffled_minibatch_cka_equals_cka_of_shuffled_data(x in matrix(20..40, 2..6), seed in 0u64..1000) {
        let y = Layer::from_f64("y", x.rows, 2, (0..x.rows * 2).map(|i| (i as f64 * 0.37).sin()).collect());
        let shuffled = MinibatchCkaConfig { batch_size: 8, shuffle_seed: Some(seed) };
        let a = run(analysis::minibatch_cka(&compute(), std::slice::from_ref(&x), std::slice::from_ref(&y), &shuffled));
        let order = permutation(x.rows, seed);
        let (xs, ys) = (x.select_rows(&order), y.select_rows(&order));
        let plain = MinibatchCkaConfig { batch_size: 8, shuffle_seed: None };
        let b = run(analysis::minibatch_cka(&compute(), &[xs], &[ys], &plain));
        prop_assert!((a.values[0][0] - b.values[0][0]).abs() < 1e-10);
    }
}

#[test]
fn permutation_is_a_permutation() {
    let mut p = permutation(1000, 7);
    p.sort_unstable();
    assert_eq!(p, (0..1000).collect::<Vec<_>>());
    assert_ne!(permutation(10, 1), permutation(10, 2));
}
