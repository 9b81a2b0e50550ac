//! Objective configurations: names, defaults, parsing, and refusal of invalid hyperparameters.

use losslens_core::objective::{CosineSoftmaxConfig, LossScaling, ObjectiveConfig, ObjectiveKind};

#[test]
fn the_nine_objectives_with_the_papers_defaults() {
    let names: Vec<String> = ObjectiveConfig::paper_defaults()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        names,
        [
            "softmax",
            "label-smoothing:alpha=0.1",
            "sigmoid",
            "extra-l2:lambda=0.0008",
            "dropout:keep-prob=0.7",
            "logit-penalty:beta=0.0006",
            "logit-norm:temperature=0.04",
            "cosine-softmax:loss-scaling=auto,temperature=0.05",
            "squared-error:kappa=9.0,m=60.0,scale=10.0",
        ]
    );
}

#[test]
fn display_and_parse_round_trip() {
    let mut configs = ObjectiveConfig::paper_defaults();
    configs.extend(ObjectiveConfig::temperature_sweep(
        &CosineSoftmaxConfig::TABLE4_TEMPERATURES,
        CosineSoftmaxConfig::default(),
    ));
    for config in configs {
        let text = config.to_string();
        assert_eq!(text.parse::<ObjectiveConfig>().unwrap(), config, "{text}");
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<ObjectiveConfig>(&json).unwrap(),
            config,
            "{json}"
        );
    }
}

#[test]
fn the_table4_temperature_sweep() {
    let sweep = ObjectiveConfig::temperature_sweep(
        &CosineSoftmaxConfig::TABLE4_TEMPERATURES,
        CosineSoftmaxConfig::default(),
    );
    assert_eq!(sweep.len(), 8);
    let factors: Vec<f64> = sweep
        .iter()
        .map(|c| match c {
            ObjectiveConfig::CosineSoftmax(c) => c.loss_factor(),
            other => panic!("{other}"),
        })
        .collect();
    // Footnote 1: the loss is scaled by τ below τ = 0.05 only.
    assert_eq!(factors, [0.01, 0.02, 0.03, 0.04, 1.0, 1.0, 1.0, 1.0]);
    let never = "cosine-softmax:temperature=0.01,loss-scaling=never"
        .parse::<ObjectiveConfig>()
        .unwrap();
    assert_eq!(
        never,
        ObjectiveConfig::CosineSoftmax(CosineSoftmaxConfig {
            temperature: 0.01,
            loss_scaling: LossScaling::Never
        })
    );
}

#[test]
fn parameters_may_be_partial_and_use_aliases() {
    assert_eq!(
        "dropout:rho=0.8".parse::<ObjectiveConfig>().unwrap().to_string(),
        "dropout:keep-prob=0.8"
    );
    assert_eq!(
        "logit-norm:tau=0.03".parse::<ObjectiveConfig>().unwrap().to_string(),
        "logit-norm:temperature=0.03"
    );
    assert_eq!(
        "squared-error:kappa=1".parse::<ObjectiveConfig>().unwrap().to_string(),
        "squared-error:kappa=1.0,m=60.0,scale=10.0"
    );
    let toml_like = serde_json::json!({"kind": "label-smoothing"});
    assert_eq!(
        serde_json::from_value::<ObjectiveConfig>(toml_like)
            .unwrap()
            .to_string(),
        "label-smoothing:alpha=0.1"
    );
}

#[track_caller]
fn refused(spec: &str, mentions: &[&str]) {
    let err = match spec.parse::<ObjectiveConfig>() {
        Ok(config) => panic!("`{spec}` was accepted as {config}"),
        Err(err) => err.to_string(),
    };
    for m in mentions {
        assert!(err.contains(m), "error for `{spec}` should mention `{m}`: {err}");
    }
}

#[test]
fn invalid_hyperparameters_are_refused_with_the_allowed_range() {
    refused("label-smoothing:alpha=1", &["alpha", "[0, 1)"]);
    refused("label-smoothing:alpha=-0.1", &["alpha", "[0, 1)"]);
    refused("logit-norm:temperature=0", &["temperature", "> 0"]);
    refused("cosine-softmax:temperature=-0.05", &["temperature", "> 0"]);
    refused("dropout:keep-prob=0", &["keep_prob", "(0, 1]"]);
    refused("dropout:keep-prob=1.5", &["keep_prob", "(0, 1]"]);
    refused("extra-l2:lambda=-1e-4", &["lambda", "≥ 0"]);
    refused("logit-penalty:beta=-1", &["beta", "≥ 0"]);
    refused("squared-error:kappa=-9", &["kappa", "≥ 0"]);
    refused("squared-error:scale=0", &["scale", "> 0"]);
    refused("logit-penalty:beta=nan", &["beta"]);
}

#[test]
fn unknown_names_and_fields_are_refused() {
    refused("softmax-xent", &["softmax-xent", "cosine-softmax", "squared-error"]);
    refused("label-smoothing:alpah=0.1", &["alpah"]);
    refused("label-smoothing:alpha", &["="]);
    refused("cosine-softmax:loss-scaling=sometimes", &["sometimes"]);
    let json = serde_json::json!({"kind": "dropout", "keep_prob": 0.7, "p": 0.3});
    assert!(serde_json::from_value::<ObjectiveConfig>(json).is_err());
    // Validation happens before any work: `init` refuses what serde let through.
    let config: ObjectiveConfig =
        serde_json::from_value(serde_json::json!({"kind": "logit-norm", "temperature": -1.0})).unwrap();
    assert!(config.init().is_err());
}

#[test]
fn kinds_have_names_and_titles() {
    for kind in ObjectiveKind::ALL {
        assert_eq!(kind.name().parse::<ObjectiveKind>().unwrap(), kind);
        assert_eq!(ObjectiveConfig::default_for(kind).kind(), Some(kind));
        assert!(!kind.title().is_empty());
    }
}

#[test]
fn combinations_round_trip_through_text_json_and_toml() {
    let specs = [
        "cosine-softmax+dropout",
        "label-smoothing+logit-penalty:alpha=0.2,beta=1e-4",
        "sigmoid+extra-l2",
        "logit-norm+sigmoid:tau=0.03",
        "cosine-softmax+label-smoothing+dropout:temperature=0.045,keep-prob=0.9,alpha=0.1",
        "squared-error+dropout+extra-l2+logit-penalty",
    ];
    for spec in specs {
        let config: ObjectiveConfig = spec.parse().unwrap();
        assert_eq!(config.kind(), None, "{spec} is a combination");
        let text = config.to_string();
        assert_eq!(text.parse::<ObjectiveConfig>().unwrap(), config, "{text}");
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<ObjectiveConfig>(&json).unwrap(),
            config,
            "{json}"
        );
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Study {
            objectives: Vec<ObjectiveConfig>,
        }
        let toml_text = toml::to_string(&Study {
            objectives: vec![config],
        })
        .unwrap();
        let back: Study = toml::from_str(&toml_text).unwrap();
        assert_eq!(back.objectives, [config], "{toml_text}");
    }
    // As a study file writes it: the terms' fields in one table.
    let study: toml::Table =
        toml::from_str(r#"o = { kind = "cosine-softmax+dropout", temperature = 0.06, keep_prob = 0.8 }"#).unwrap();
    let config: ObjectiveConfig = study["o"].clone().try_into().unwrap();
    assert_eq!(
        config.to_string(),
        "cosine-softmax+dropout:keep-prob=0.8,loss-scaling=auto,temperature=0.06"
    );
    assert_eq!(config.title(), "Cosine softmax + Dropout");
}

#[test]
fn combinations_have_one_canonical_form() {
    let parse = |s: &str| s.parse::<ObjectiveConfig>().unwrap();
    // Terms in any order, with spaces; softmax is the default loss, so naming it adds nothing.
    assert_eq!(parse("dropout + cosine-softmax"), parse("cosine-softmax+dropout"));
    assert_eq!(
        parse("logit-penalty+label-smoothing").name(),
        "label-smoothing+logit-penalty"
    );
    assert_eq!(parse("softmax+dropout"), parse("dropout"));
    assert_eq!(
        parse("softmax+cosine-softmax").kind(),
        Some(ObjectiveKind::CosineSoftmax)
    );
    assert_eq!(parse("softmax+dropout").to_string(), "dropout:keep-prob=0.7");
    let combined = parse("sigmoid+logit-norm+extra-l2");
    assert_eq!(combined.name(), "logit-norm+sigmoid+extra-l2");
    let kinds: Vec<_> = combined.terms().iter().map(|t| t.kind().unwrap()).collect();
    assert_eq!(
        kinds,
        [ObjectiveKind::LogitNorm, ObjectiveKind::Sigmoid, ObjectiveKind::ExtraL2]
    );
}

#[test]
fn combinations_that_make_no_sense_are_refused_with_the_reason() {
    refused("softmax+sigmoid", &["at most one loss", "softmax", "sigmoid"]);
    refused("label-smoothing+squared-error", &["at most one loss"]);
    refused("logit-norm+cosine-softmax", &["at most one normalisation"]);
    refused("dropout+dropout", &["at most once", "dropout"]);
    refused("logit-norm+logit-penalty", &["logit penalty", "constant"]);
    refused("cosine-softmax+extra-l2", &["extra L²", "normalises W"]);
    // Hyperparameters of each term are still checked, and a field no term takes is refused.
    refused("sigmoid+dropout:keep-prob=0", &["keep_prob", "(0, 1]"]);
    refused("sigmoid+dropout:alpha=0.1", &["alpha", "keep_prob"]);
    refused("sigmoid+nothing", &["nothing", "cosine-softmax"]);
    let json = serde_json::json!({"kind": "sigmoid+logit-penalty", "beta": 0.1, "temperature": 0.2});
    let err = serde_json::from_value::<ObjectiveConfig>(json).unwrap_err().to_string();
    assert!(err.contains("temperature"), "{err}");
}

#[test]
fn fields_are_the_names_each_objective_serialises() {
    for kind in ObjectiveKind::ALL {
        let json = serde_json::to_value(ObjectiveConfig::default_for(kind)).unwrap();
        let written: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "kind")
            .collect();
        for field in &written {
            assert!(
                kind.fields().contains(field),
                "{kind} writes `{field}` but does not list it"
            );
        }
        for field in kind.fields() {
            let mut spec = serde_json::Map::new();
            spec.insert("kind".into(), kind.name().into());
            spec.insert(field.to_string(), serde_json::Value::Null);
            let spec = serde_json::Value::Object(spec);
            let err = serde_json::from_value::<ObjectiveConfig>(spec).unwrap_err().to_string();
            assert!(
                !err.contains("unknown field"),
                "{kind} lists `{field}` but refuses it: {err}"
            );
        }
    }
}
