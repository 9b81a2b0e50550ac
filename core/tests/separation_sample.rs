//! Class separation R² on growing per-class samples of one real feature set (the 2×2-pooled
//! pixels of MNIST's 10,000 test images, 196 values each) approaches the value on the whole
//! set. Eq. 11 counts each example paired with itself, so a sample of `N_k` images per class
//! reads about `(1 − R²) / N_k` too high; at the study's default of 256 per class the bias is
//! below 0.005.

mod common;

use common::shared_data;
use losslens_core::analysis::{Classes, Distance, class_separation};
use losslens_core::data::idx::read_idx_set;
use losslens_core::rng::SplitMix64;
use losslens_core::{Compute, Precision};

#[test]
fn r2_on_growing_samples_approaches_the_whole_set() {
    let dir = shared_data().join("mnist");
    let images = dir.join("t10k-images-idx3-ubyte.gz");
    if !images.exists() {
        assert!(!common::require_data(), "no {}", images.display());
        return;
    }
    let set = read_idx_set(&images, &dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let features = set.pooled_features(2).unwrap();
    let compute = Compute::cpu().with_precision(Precision::F64);
    let r2 = |rows: &[usize]| -> f64 {
        let layer = features.select_rows(rows);
        let labels: Vec<usize> = rows.iter().map(|&i| set.labels[i]).collect();
        let classes = Classes::new(labels, Some(10)).unwrap();
        pollster::block_on(class_separation(&compute, &layer, &classes, Distance::Cosine))
            .unwrap()
            .r2
    };
    let all: Vec<usize> = (0..set.len()).collect();
    let whole = r2(&all);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 10];
    for (i, &l) in set.labels.iter().enumerate() {
        by_class[l].push(i);
    }
    let mut rng = SplitMix64::new(5);
    let mut previous_bias = f64::INFINITY;
    for per_class in [2usize, 10, 50, 256] {
        // Mean over draws, so the expected bias shows through the sampling noise.
        let draws = 40;
        let mean: f64 = (0..draws)
            .map(|_| {
                let rows: Vec<usize> = by_class
                    .iter()
                    .flat_map(|members| {
                        rng.permutation(members.len())
                            .into_iter()
                            .take(per_class)
                            .map(|j| members[j])
                            .collect::<Vec<_>>()
                    })
                    .collect();
                r2(&rows)
            })
            .sum::<f64>()
            / draws as f64;
        let bias = mean - whole;
        let predicted = (1.0 - whole) / per_class as f64;
        eprintln!(
            "{per_class:>4} per class: R² {mean:.4} (whole set {whole:.4}), bias {bias:.4}, predicted {predicted:.4}"
        );
        assert!(bias < previous_bias, "the bias does not shrink with the sample");
        assert!(
            (bias - predicted).abs() <= 0.3 * predicted + 0.002,
            "{per_class} per class: bias {bias} vs (1 − R²)/N_k = {predicted}"
        );
        previous_bias = bias;
    }
    assert!(previous_bias < 0.005, "the bias at 256 per class is {previous_bias}");
}
