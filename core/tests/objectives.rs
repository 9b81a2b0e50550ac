//! Golden tests of the nine objectives: loss values and gradients against an independent numpy
//! implementation (`objectives/make_objectives.py`, whose hand-derived gradients are checked
//! against finite differences before it writes `objectives/expected.json`).
//!
//! Every case runs in `f64` (relative tolerance 1e-9) and `f32` (2e-4) on the CPU with autodiff,
//! including logits of ±1e4, all-zero logits, zero features and features of norm ~1e4.

use std::path::PathBuf;

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use losslens_core::model::Head;
use losslens_core::objective::{Objective, ObjectiveConfig, ObjectiveKind, ObjectiveOutput};
use serde_json::Value;

fn expected() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/objectives/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("expected.json")).expect("valid JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn usize_of(v: &Value, key: &str) -> usize {
    v[key].as_u64().expect("a count") as usize
}

fn config(case: &Value) -> ObjectiveConfig {
    let mut object = case["params"].as_object().expect("params").clone();
    object.insert("kind".into(), case["kind"].clone());
    let config: ObjectiveConfig = serde_json::from_value(Value::Object(object)).expect("a valid objective");
    config.validate().expect("valid settings");
    config
}

struct Setup {
    device: Device,
    dtype: DType,
    tol: f64,
}

impl Setup {
    fn all() -> [Setup; 2] {
        let device = Device::flex().autodiff();
        [
            Setup {
                device: device.clone(),
                dtype: DType::F64,
                tol: 1e-9,
            },
            Setup {
                device,
                dtype: DType::F32,
                tol: 2e-4,
            },
        ]
    }

    fn leaf<const D: usize>(&self, values: Vec<f64>, shape: [usize; D]) -> Tensor<D> {
        Tensor::<D>::from_data(TensorData::new(values, shape), (&self.device, self.dtype)).require_grad()
    }

    fn targets(&self, e: &Value) -> Tensor<1, Int> {
        let t: Vec<i64> = e["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let n = t.len();
        Tensor::<1, Int>::from_data(TensorData::new(t, [n]), &self.device)
    }
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("float data")
}

#[track_caller]
fn assert_all_close(actual: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(a.is_finite(), "{what}[{i}] is {a}");
        assert!(
            (a - e).abs() <= tol * scale,
            "{what}[{i}]: got {a}, expected {e} (scale {scale}, tol {tol})"
        );
    }
}

#[test]
fn losses_and_logit_gradients_match_numpy() {
    let e = expected();
    let [b, k] = [usize_of(&e, "batch"), usize_of(&e, "classes")];
    for setup in Setup::all() {
        for case in e["logit_cases"].as_array().unwrap() {
            let config = config(case);
            let which = case["logits"].as_str().unwrap();
            let what = format!("{config} on {which} logits ({:?})", setup.dtype);
            let z = setup.leaf(floats(&e["logits"][which]), [b, k]);
            let t = setup.targets(&e);
            let loss = match config {
                ObjectiveConfig::Softmax(c) => c.loss(z.clone(), t),
                ObjectiveConfig::LabelSmoothing(c) => c.loss(z.clone(), t),
                ObjectiveConfig::Sigmoid(c) => c.loss(z.clone(), t),
                ObjectiveConfig::LogitPenalty(c) => c.loss(z.clone(), t),
                ObjectiveConfig::LogitNorm(c) => c.loss(z.clone(), t),
                ObjectiveConfig::SquaredError(c) => c.loss(z.clone(), t),
                other => panic!("{other} is not a loss of the logits alone"),
            };
            let grads = loss.backward();
            let grad = z.grad(&grads).expect("a gradient for the logits");
            assert_all_close(
                &read(loss),
                &[case["loss"].as_f64().unwrap()],
                setup.tol,
                &format!("{what}: loss"),
            );
            assert_all_close(
                &read(grad),
                &floats(&case["grad_logits"]),
                setup.tol,
                &format!("{what}: dL/dz"),
            );
        }
    }
}

/// Runs `forward` (the objective, features, head and dropout mask to its output) on a head case
/// and checks the loss and the gradients of features, weight and bias.
fn check_through_head(
    e: &Value,
    setup: &Setup,
    case: &Value,
    forward: &dyn Fn(&Objective, Tensor<2>, &Head, Tensor<2>) -> ObjectiveOutput,
) {
    let [b, k, p] = [usize_of(e, "batch"), usize_of(e, "classes"), usize_of(e, "features")];
    let objective = config(case).init().unwrap();
    let which = case["features"].as_str().unwrap();
    let what = format!("{} on {which} features ({:?})", objective.config(), setup.dtype);
    let x = setup.leaf(floats(&e["feature_sets"][which]), [b, p]);
    let head = Head::from_tensors(
        setup.leaf(floats(&e["weight"]), [p, k]),
        setup.leaf(floats(&e["bias"]), [k]),
    );
    let mask = Tensor::<2>::from_data(
        TensorData::new(floats(&e["mask"]), [b, p]),
        (&setup.device, setup.dtype),
    );
    let out = forward(&objective, x.clone(), &head, mask);
    let grads = out.loss.backward();
    assert_all_close(
        &read(out.loss),
        &[case["loss"].as_f64().unwrap()],
        setup.tol,
        &format!("{what}: loss"),
    );
    let dx = x.grad(&grads).expect("dL/dx");
    let dw = head.linear.weight.val().grad(&grads).expect("dL/dW");
    let db = head.bias().grad(&grads).expect("dL/db");
    assert_all_close(
        &read(dx),
        &floats(&case["grad_features"]),
        setup.tol,
        &format!("{what}: dL/dx"),
    );
    assert_all_close(
        &read(dw),
        &floats(&case["grad_weight"]),
        setup.tol,
        &format!("{what}: dL/dW"),
    );
    assert_all_close(
        &read(db),
        &floats(&case["grad_bias"]),
        setup.tol,
        &format!("{what}: dL/db"),
    );
}

#[test]
fn losses_and_parameter_gradients_through_the_head_match_numpy() {
    let e = expected();
    for setup in Setup::all() {
        for case in e["head_cases"].as_array().unwrap() {
            check_through_head(&e, &setup, case, &|objective, x, head, mask| {
                objective.forward_with_mask(x, head, setup.targets(&e), Some(mask))
            });
        }
    }
}

/// Mixup's targets (each one-hot target mixed with its partner's, λ = 0.3): every loss of the
/// logits, and objectives through the head, against numpy.
#[test]
fn losses_against_mixed_targets_match_numpy() {
    let e = expected();
    let [b, k] = [usize_of(&e, "batch"), usize_of(&e, "classes")];
    for setup in Setup::all() {
        let mixed = || {
            Tensor::<2>::from_data(
                TensorData::new(floats(&e["mixed_targets"]), [b, k]),
                (&setup.device, setup.dtype),
            )
        };
        for case in e["soft_logit_cases"].as_array().unwrap() {
            let config = config(case);
            let which = case["logits"].as_str().unwrap();
            let what = format!("{config} on {which} logits, mixed targets ({:?})", setup.dtype);
            let z = setup.leaf(floats(&e["logits"][which]), [b, k]);
            let loss = match config {
                ObjectiveConfig::Softmax(c) => c.soft_loss(z.clone(), mixed()),
                ObjectiveConfig::LabelSmoothing(c) => c.soft_loss(z.clone(), mixed()),
                ObjectiveConfig::Sigmoid(c) => c.soft_loss(z.clone(), mixed()),
                ObjectiveConfig::SquaredError(c) => c.soft_loss(z.clone(), mixed()),
                other => panic!("{other} is not a loss of the logits alone"),
            };
            let grads = loss.backward();
            let grad = z.grad(&grads).expect("a gradient for the logits");
            assert_all_close(&read(loss), &[case["loss"].as_f64().unwrap()], setup.tol, &what);
            assert_all_close(&read(grad), &floats(&case["grad_logits"]), setup.tol, &what);
        }
        for case in e["soft_head_cases"].as_array().unwrap() {
            check_through_head(&e, &setup, case, &|objective, x, head, mask| {
                objective.forward_soft(x, head, mixed(), Some(mask))
            });
        }
    }
}

#[test]
fn every_objective_has_a_golden_case() {
    let e = expected();
    let covered: Vec<String> = ["logit_cases", "head_cases"]
        .iter()
        .flat_map(|key| {
            e[*key]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_object().unwrap()["kind"].as_str().unwrap().to_string())
        })
        .collect();
    for kind in ObjectiveKind::ALL {
        assert!(covered.iter().any(|c| c == kind.name()), "no golden case for {kind}");
    }
}

#[test]
fn outputs_are_what_accuracy_is_measured_on() {
    let device = Device::flex();
    let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0, 0.5, 0.0, 3.0, 1.0], [2, 3]), &device);
    let w = Tensor::<2>::from_data(
        TensorData::new(vec![0.5f32, -1.0, 2.0, 0.1, -0.3, 0.7], [3, 2]),
        &device,
    );
    let head = Head::from_tensors(w, Tensor::<1>::from_data([0.25f32, -0.25], &device));
    let plain = read(head.forward(x.clone()));
    let outputs = |spec: &str| {
        read(
            spec.parse::<ObjectiveConfig>()
                .unwrap()
                .init()
                .unwrap()
                .outputs(x.clone(), &head),
        )
    };
    // Dropout is off at evaluation; the penalties do not change the logits.
    for spec in [
        "softmax",
        "dropout:keep-prob=0.5",
        "extra-l2",
        "logit-penalty",
        "label-smoothing",
        "squared-error",
    ] {
        assert_all_close(&outputs(spec), &plain, 1e-6, spec);
    }
    let shifted: Vec<f64> = plain.iter().map(|z| z - 2f64.ln()).collect();
    assert_all_close(&outputs("sigmoid"), &shifted, 1e-6, "sigmoid");
    let norm = outputs("logit-norm:temperature=0.1");
    for row in norm.chunks(2) {
        let n = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((n - 10.0).abs() < 1e-4, "logit-norm outputs have norm 1/τ, got {n}");
    }
    // Combinations: the sigmoid loss shifts whatever logits it is given; dropout stays off.
    assert_all_close(
        &outputs("sigmoid+dropout:keep-prob=0.5"),
        &shifted,
        1e-6,
        "sigmoid+dropout",
    );
    for row in outputs("logit-norm+sigmoid:temperature=0.1").chunks(2) {
        let n = row.iter().map(|v| (v + 2f64.ln()).powi(2)).sum::<f64>().sqrt();
        assert!((n - 10.0).abs() < 1e-4, "shifted normalised logits, norm {n}");
    }
    for (i, v) in outputs("cosine-softmax:temperature=0.5").iter().enumerate() {
        let b = [0.25, -0.25][i % 2];
        assert!((v - b).abs() <= 2.0 + 1e-5, "cosine outputs lie in b ± 1/τ, got {v}");
    }
}

#[test]
fn dropout_draws_a_mask_only_in_training() {
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::ones([64, 100], &device);
    let w = Tensor::<2>::ones([100, 2], &device);
    let head = Head::from_tensors(w, Tensor::<1>::zeros([2], &device));
    let objective = "dropout:keep-prob=0.5"
        .parse::<ObjectiveConfig>()
        .unwrap()
        .init()
        .unwrap();
    let targets = Tensor::<1, Int>::zeros([64], &device);
    // Each logit is Σ of 100 features kept with probability ½ and scaled by 2: mean 100.
    let out = read(objective.forward(x.clone(), &head, targets).outputs);
    let mean = out.iter().sum::<f64>() / out.len() as f64;
    assert!(
        (mean - 100.0).abs() < 5.0,
        "inverted dropout keeps the mean, got {mean}"
    );
    assert!(out.iter().any(|&v| v != 100.0), "a mask was applied");
    assert!(
        out.iter().all(|&v| v % 2.0 == 0.0),
        "kept features are scaled by 1/ρ = 2"
    );
}
