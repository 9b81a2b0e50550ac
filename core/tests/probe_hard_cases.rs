//! Hard problems for the probes: they finish, report, and never panic.

use losslens_core::Compute;
use losslens_core::features::Layer;
use losslens_core::probe::{KnnConfig, LbfgsConfig, LinearProbeConfig, Vote, fit_logistic, knn_probe, linear_probe};

fn run<T>(f: impl Future<Output = losslens_core::Result<T>>) -> losslens_core::Result<T> {
    pollster::block_on(f)
}

/// Two well-separated classes on a line, plus noise features.
fn separable(n: usize) -> (Layer, Vec<usize>) {
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let class = i % 2;
        data.extend([
            if class == 0 {
                -1.0 - i as f32 * 0.01
            } else {
                1.0 + i as f32 * 0.01
            },
            (i as f32 * 0.7).sin(),
        ]);
        labels.push(class);
    }
    (Layer::from_f32("separable", n, 2, data), labels)
}

#[test]
fn separable_data_at_tiny_lambda_stops_and_reports() {
    let (x, y) = separable(200);
    let optimizer = LbfgsConfig {
        max_iterations: 200,
        ..Default::default()
    };
    let (model, point) = run(fit_logistic(&Compute::cpu(), &x, &y, 1e-6, &optimizer)).unwrap();
    assert!(point.iterations <= 200);
    assert!(model.params.iter().all(|v| v.is_finite()));
    assert!(point.objective.is_finite() && point.objective < 0.01);
    // The whole path on separable data: finishes, everything finite.
    let config = LinearProbeConfig {
        lambda_count: 12,
        optimizer,
        ..Default::default()
    };
    let result = run(linear_probe(&Compute::cpu(), &x, &y, &x, &y, &config, &mut |_| {})).unwrap();
    assert_eq!(result.accuracy, 1.0);
    assert!(result.path.iter().all(|p| p.objective.is_finite()));
}

#[test]
fn duplicates_singletons_and_zero_features() {
    // Class 2 has a single example; rows 0..10 are identical; row 11 is all zeros.
    let mut data = [0.5f32, -0.25, 1.0].repeat(10);
    data.extend([0.0, 0.0, 0.0]);
    let mut labels = vec![0; 10];
    labels.push(1);
    for i in 0..20 {
        data.extend([(i as f32).cos(), (i as f32 * 1.3).sin(), 0.1 * i as f32]);
        labels.push(if i == 7 { 2 } else { i % 2 });
    }
    let n = labels.len();
    let x = Layer::from_f32("hard", n, 3, data);
    let linear = run(linear_probe(
        &Compute::cpu(),
        &x,
        &labels,
        &x,
        &labels,
        &LinearProbeConfig::default(),
        &mut |_| {},
    ))
    .unwrap();
    assert!((0.0..=1.0).contains(&linear.accuracy));
    for vote in [Vote::Majority, Vote::Weighted { temperature: 0.07 }] {
        let config = KnnConfig {
            vote,
            ..Default::default()
        };
        let knn = run(knn_probe(&Compute::cpu(), &x, &labels, &x, &labels, &config)).unwrap();
        assert!((0.0..=1.0).contains(&knn.accuracy));
        assert!(knn.config.k_max < n);
    }
}

#[test]
fn a_thousand_classes() {
    let classes = 1000;
    let n = 2 * classes;
    let data: Vec<f32> = (0..n * 8)
        .map(|i| (((i / 8) % classes) as f32 * 0.37 + (i % 8) as f32).sin())
        .collect();
    let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
    let x = Layer::from_f32("many", n, 8, data);
    let config = LinearProbeConfig {
        lambda_count: 3,
        validation_fraction: 0.5,
        optimizer: LbfgsConfig {
            max_iterations: 50,
            ..Default::default()
        },
        ..Default::default()
    };
    let linear = run(linear_probe(
        &Compute::cpu(),
        &x,
        &labels,
        &x,
        &labels,
        &config,
        &mut |_| {},
    ))
    .unwrap();
    assert_eq!(linear.classes, classes);
    let knn = run(knn_probe(
        &Compute::cpu(),
        &x,
        &labels,
        &x,
        &labels,
        &KnnConfig::default(),
    ))
    .unwrap();
    assert!(
        knn.accuracy > 0.9,
        "each example's twin is its nearest neighbour: {}",
        knn.accuracy
    );
}

#[test]
fn bad_inputs_are_clear_errors() {
    let x = Layer::from_f32("x", 4, 2, vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.5, 0.5]);
    let wide = Layer::from_f32("wide", 2, 3, vec![0.0; 6]);
    let msg = |r: losslens_core::Result<_>| match r {
        Ok(_) => panic!("accepted"),
        Err(e) => losslens_core::Error::to_string(&e),
    };
    let err = msg(run(knn_probe(
        &Compute::cpu(),
        &x,
        &[0, 1, 0, 1],
        &wide,
        &[0, 1],
        &KnnConfig::default(),
    ))
    .map(|_| ()));
    assert!(err.contains("3") && err.contains("2"), "{err}");
    let err = msg(run(knn_probe(
        &Compute::cpu(),
        &x,
        &[0, 1, 0, 1],
        &x,
        &[0, 1, 0, 5],
        &KnnConfig::default(),
    ))
    .map(|_| ()));
    assert!(err.contains("label 5"), "{err}");
    let err = msg(run(knn_probe(
        &Compute::cpu(),
        &x,
        &[0, 1, 0],
        &x,
        &[0, 1, 0, 1],
        &KnnConfig::default(),
    ))
    .map(|_| ()));
    assert!(err.contains("examples"), "{err}");
    let err = msg(run(knn_probe(
        &Compute::cpu(),
        &x,
        &[0, 2, 0, 2],
        &x,
        &[0, 0, 0, 0],
        &KnnConfig::default(),
    ))
    .map(|_| ()));
    assert!(err.contains("class 1"), "{err}");
    let config = LinearProbeConfig {
        validation_fraction: 1.5,
        ..Default::default()
    };
    let err = msg(run(linear_probe(
        &Compute::cpu(),
        &x,
        &[0, 1, 0, 1],
        &x,
        &[0, 1, 0, 1],
        &config,
        &mut |_| {},
    ))
    .map(|_| ()));
    assert!(err.contains("validation fraction"), "{err}");
    let config = KnnConfig {
        vote: Vote::Weighted { temperature: 0.0 },
        ..Default::default()
    };
    let err = msg(run(knn_probe(
        &Compute::cpu(),
        &x,
        &[0, 1, 0, 1],
        &x,
        &[0, 1, 0, 1],
        &config,
    ))
    .map(|_| ()));
    assert!(err.contains("temperature"), "{err}");
}
