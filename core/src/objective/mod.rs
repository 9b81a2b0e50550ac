//! The nine training objectives of Kornblith et al. (2021), section 2 and Table A.1.
//!
//! Each objective is a config (its hyperparameters, with the paper's tuned ImageNet values as
//! defaults, and a `validate()`) in its own file. [`ObjectiveConfig`] is the closed set of them,
//! written in configs as `kind = "cosine-softmax"` plus fields and on the command line as
//! `cosine-softmax:temperature=0.02`; [`Objective`] is a validated one, which maps
//! (penultimate features, final layer, targets) to (loss, outputs).
//!
//! All objectives share one [`Head`] (a linear layer initialised `N(0, 0.01²)`, bias 0); they
//! differ in how they turn it into logits (cosine softmax normalises it), what they do to the
//! features first (dropout) and what they penalise. The body of the network never changes.
//!
//! Objectives combine (the paper's Table C.4): `cosine-softmax+label-smoothing`,
//! `sigmoid+dropout`, `label-smoothing+logit-penalty` (see [`combined`]). Every objective, single
//! or combined, computes its loss from its [`CombinedConfig`] parts.

pub mod combined;
pub mod cosine_softmax;
pub mod dropout;
pub mod extra_l2;
pub mod functional;
pub mod label_smoothing;
pub mod logit_norm;
pub mod logit_penalty;
pub mod sigmoid;
pub mod softmax;
pub mod squared_error;

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

pub use combined::{CombinedConfig, LogitLoss, Normalization};
pub use cosine_softmax::{CosineSoftmaxConfig, LossScaling};
pub use dropout::DropoutConfig;
pub use extra_l2::ExtraL2Config;
pub use label_smoothing::LabelSmoothingConfig;
pub use logit_norm::LogitNormConfig;
pub use logit_penalty::LogitPenaltyConfig;
pub use sigmoid::SigmoidConfig;
pub use softmax::SoftmaxConfig;
pub use squared_error::SquaredErrorConfig;

use crate::error::{Error, Result};
use crate::model::Head;

/// The nine objectives, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    /// Softmax cross-entropy.
    Softmax,
    /// Label smoothing.
    LabelSmoothing,
    /// Sigmoid cross-entropy.
    Sigmoid,
    /// Extra final-layer L².
    ExtraL2,
    /// Dropout on the penultimate layer.
    Dropout,
    /// Logit penalty.
    LogitPenalty,
    /// Logit normalisation.
    LogitNorm,
    /// Cosine softmax.
    CosineSoftmax,
    /// Squared error.
    SquaredError,
}

impl ObjectiveKind {
    /// Every objective, in the order of the paper's tables.
    pub const ALL: [ObjectiveKind; 9] = [
        ObjectiveKind::Softmax,
        ObjectiveKind::LabelSmoothing,
        ObjectiveKind::Sigmoid,
        ObjectiveKind::ExtraL2,
        ObjectiveKind::Dropout,
        ObjectiveKind::LogitPenalty,
        ObjectiveKind::LogitNorm,
        ObjectiveKind::CosineSoftmax,
        ObjectiveKind::SquaredError,
    ];

    /// The kebab-case name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ObjectiveKind::Softmax => "softmax",
            ObjectiveKind::LabelSmoothing => "label-smoothing",
            ObjectiveKind::Sigmoid => "sigmoid",
            ObjectiveKind::ExtraL2 => "extra-l2",
            ObjectiveKind::Dropout => "dropout",
            ObjectiveKind::LogitPenalty => "logit-penalty",
            ObjectiveKind::LogitNorm => "logit-norm",
            ObjectiveKind::CosineSoftmax => "cosine-softmax",
            ObjectiveKind::SquaredError => "squared-error",
        }
    }

    /// The name the paper's tables use.
    pub fn title(self) -> &'static str {
        match self {
            ObjectiveKind::Softmax => "Softmax",
            ObjectiveKind::LabelSmoothing => "Label smoothing",
            ObjectiveKind::Sigmoid => "Sigmoid",
            ObjectiveKind::ExtraL2 => "Extra final layer L²",
            ObjectiveKind::Dropout => "Dropout",
            ObjectiveKind::LogitPenalty => "Logit penalty",
            ObjectiveKind::LogitNorm => "Logit normalization",
            ObjectiveKind::CosineSoftmax => "Cosine softmax",
            ObjectiveKind::SquaredError => "Squared error",
        }
    }

    /// The hyperparameters this objective takes in a table, as written there (snake_case, with
    /// their aliases); a combination hands each of its fields to the term that takes it.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            ObjectiveKind::Softmax | ObjectiveKind::Sigmoid => &[],
            ObjectiveKind::LabelSmoothing => &["alpha"],
            ObjectiveKind::ExtraL2 => &["lambda"],
            ObjectiveKind::Dropout => &["keep_prob", "rho"],
            ObjectiveKind::LogitPenalty => &["beta"],
            ObjectiveKind::LogitNorm => &["temperature", "tau"],
            ObjectiveKind::CosineSoftmax => &["temperature", "tau", "loss_scaling"],
            ObjectiveKind::SquaredError => &["kappa", "m", "scale"],
        }
    }
}

impl fmt::Display for ObjectiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ObjectiveKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ObjectiveKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| unknown_objective(s))
    }
}

fn unknown_objective(name: &str) -> Error {
    Error::InvalidSetting {
        name: "objective",
        value: format!("`{name}`"),
        allowed: format!("one of {}", ObjectiveKind::ALL.map(ObjectiveKind::name).join(", ")),
    }
}

/// One objective with its hyperparameters.
///
/// In TOML: `kind = "label-smoothing"` and `alpha = 0.1` in one table; fields left out take
/// their defaults, unknown fields are refused. On the command line ([`FromStr`]):
/// `label-smoothing`, `label-smoothing:alpha=0.12`, `cosine-softmax:temperature=0.02,loss-scaling=never`.
/// A combination joins names with `+` and takes every term's fields in the same table or list:
/// `kind = "cosine-softmax+dropout"` with `temperature = 0.05` and `keep_prob = 0.8`, or
/// `cosine-softmax+dropout:temperature=0.05,keep-prob=0.8`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ObjectiveConfig {
    /// Softmax cross-entropy.
    Softmax(SoftmaxConfig),
    /// Label smoothing.
    LabelSmoothing(LabelSmoothingConfig),
    /// Sigmoid cross-entropy.
    Sigmoid(SigmoidConfig),
    /// Extra final-layer L².
    ExtraL2(ExtraL2Config),
    /// Dropout on the penultimate layer.
    Dropout(DropoutConfig),
    /// Logit penalty.
    LogitPenalty(LogitPenaltyConfig),
    /// Logit normalisation.
    LogitNorm(LogitNormConfig),
    /// Cosine softmax.
    CosineSoftmax(CosineSoftmaxConfig),
    /// Squared error.
    SquaredError(SquaredErrorConfig),
    /// A combination of several of the above (Table C.4); holds two or more parts that differ
    /// from the defaults (built by [`CombinedConfig::into_objective`], which gives a single
    /// objective where the parts are one).
    Combined(CombinedConfig),
}

/// The serialised form of a single objective: `{"kind": "label-smoothing", "alpha": 0.1}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Single {
    Softmax(SoftmaxConfig),
    LabelSmoothing(LabelSmoothingConfig),
    Sigmoid(SigmoidConfig),
    ExtraL2(ExtraL2Config),
    Dropout(DropoutConfig),
    LogitPenalty(LogitPenaltyConfig),
    LogitNorm(LogitNormConfig),
    CosineSoftmax(CosineSoftmaxConfig),
    SquaredError(SquaredErrorConfig),
}

impl From<Single> for ObjectiveConfig {
    fn from(single: Single) -> Self {
        match single {
            Single::Softmax(c) => Self::Softmax(c),
            Single::LabelSmoothing(c) => Self::LabelSmoothing(c),
            Single::Sigmoid(c) => Self::Sigmoid(c),
            Single::ExtraL2(c) => Self::ExtraL2(c),
            Single::Dropout(c) => Self::Dropout(c),
            Single::LogitPenalty(c) => Self::LogitPenalty(c),
            Single::LogitNorm(c) => Self::LogitNorm(c),
            Single::CosineSoftmax(c) => Self::CosineSoftmax(c),
            Single::SquaredError(c) => Self::SquaredError(c),
        }
    }
}

impl Single {
    /// `None` for a combination.
    fn of(config: &ObjectiveConfig) -> Option<Self> {
        Some(match *config {
            ObjectiveConfig::Softmax(c) => Single::Softmax(c),
            ObjectiveConfig::LabelSmoothing(c) => Single::LabelSmoothing(c),
            ObjectiveConfig::Sigmoid(c) => Single::Sigmoid(c),
            ObjectiveConfig::ExtraL2(c) => Single::ExtraL2(c),
            ObjectiveConfig::Dropout(c) => Single::Dropout(c),
            ObjectiveConfig::LogitPenalty(c) => Single::LogitPenalty(c),
            ObjectiveConfig::LogitNorm(c) => Single::LogitNorm(c),
            ObjectiveConfig::CosineSoftmax(c) => Single::CosineSoftmax(c),
            ObjectiveConfig::SquaredError(c) => Single::SquaredError(c),
            ObjectiveConfig::Combined(_) => return None,
        })
    }
}

/// `{"kind": NAME, fields...}`: a single objective as its own table; a combination with
/// `kind = "a+b"` and every term's fields (which never share a name) in the one table.
impl Serialize for ObjectiveConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let Self::Combined(combined) = self else {
            return Single::of(self).expect("a single objective").serialize(serializer);
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", &combined.name())?;
        for term in combined.terms() {
            let fields = serde_json::to_value(Single::of(&term).expect("terms are single objectives"))
                .map_err(S::Error::custom)?;
            for (key, value) in fields.as_object().into_iter().flatten() {
                if key != "kind" {
                    map.serialize_entry(key, value)?;
                }
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ObjectiveConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        ObjectiveConfig::from_table(value).map_err(serde::de::Error::custom)
    }
}

impl ObjectiveConfig {
    /// Reads `{"kind": ..., fields...}`; a combination's fields go to the term that takes them
    /// ([`ObjectiveKind::fields`]) and the terms are combined ([`CombinedConfig::from_terms`],
    /// which validates them).
    fn from_table(value: serde_json::Value) -> Result<Self> {
        let invalid = |kind: &str, allowed: String| Error::InvalidSetting {
            name: "objective",
            value: format!("`{kind}`"),
            allowed,
        };
        let serde_json::Value::Object(mut table) = value else {
            return Err(invalid(
                &value.to_string(),
                "a table with `kind` and its settings".into(),
            ));
        };
        let kind = match table.remove("kind") {
            Some(serde_json::Value::String(kind)) => kind,
            other => {
                let shown = other.map_or("nothing".to_string(), |v| v.to_string());
                return Err(invalid(
                    &shown,
                    "`kind` naming the objective, e.g. `kind = \"softmax\"`".into(),
                ));
            }
        };
        let single = |table: serde_json::Map<String, serde_json::Value>| -> Result<ObjectiveConfig> {
            serde_json::from_value::<Single>(serde_json::Value::Object(table))
                .map(ObjectiveConfig::from)
                .map_err(|e| invalid(&kind, e.to_string()))
        };
        let names: Vec<&str> = kind.split('+').map(str::trim).collect();
        if let [name] = names.as_slice() {
            let kind: ObjectiveKind = name.parse()?;
            table.insert("kind".into(), kind.name().into());
            return single(table);
        }
        let kinds: Vec<ObjectiveKind> = names.iter().map(|n| n.parse()).collect::<Result<_>>()?;
        let mut tables: Vec<serde_json::Map<String, serde_json::Value>> = kinds
            .iter()
            .map(|k| serde_json::Map::from_iter([("kind".to_string(), k.name().into())]))
            .collect();
        for (key, value) in table {
            // A field two terms take (τ of two normalisations) goes to the first; combining
            // them is refused below with the reason.
            let Some(owner) = kinds.iter().position(|k| k.fields().contains(&key.as_str())) else {
                let known: Vec<&str> = kinds.iter().flat_map(|k| k.fields().iter().copied()).collect();
                return Err(invalid(
                    &kind,
                    format!(
                        "the fields of its terms ({}); `{key}` is none of them",
                        known.join(", ")
                    ),
                ));
            };
            tables[owner].insert(key, value);
        }
        let terms: Vec<ObjectiveConfig> = tables.into_iter().map(single).collect::<Result<_>>()?;
        Ok(CombinedConfig::from_terms(&terms)?.into_objective())
    }

    /// The objective with the paper's default hyperparameters.
    pub fn default_for(kind: ObjectiveKind) -> Self {
        match kind {
            ObjectiveKind::Softmax => Self::Softmax(SoftmaxConfig::default()),
            ObjectiveKind::LabelSmoothing => Self::LabelSmoothing(LabelSmoothingConfig::default()),
            ObjectiveKind::Sigmoid => Self::Sigmoid(SigmoidConfig::default()),
            ObjectiveKind::ExtraL2 => Self::ExtraL2(ExtraL2Config::default()),
            ObjectiveKind::Dropout => Self::Dropout(DropoutConfig::default()),
            ObjectiveKind::LogitPenalty => Self::LogitPenalty(LogitPenaltyConfig::default()),
            ObjectiveKind::LogitNorm => Self::LogitNorm(LogitNormConfig::default()),
            ObjectiveKind::CosineSoftmax => Self::CosineSoftmax(CosineSoftmaxConfig::default()),
            ObjectiveKind::SquaredError => Self::SquaredError(SquaredErrorConfig::default()),
        }
    }

    /// All nine objectives with their default hyperparameters (the paper's Table 1 set).
    pub fn paper_defaults() -> Vec<Self> {
        ObjectiveKind::ALL.into_iter().map(Self::default_for).collect()
    }

    /// Cosine softmax at each temperature, the other settings as in `base` (the paper's Table 4
    /// is `temperature_sweep(&CosineSoftmaxConfig::TABLE4_TEMPERATURES, Default::default())`).
    pub fn temperature_sweep(temperatures: &[f64], base: CosineSoftmaxConfig) -> Vec<Self> {
        temperatures
            .iter()
            .map(|&temperature| Self::CosineSoftmax(CosineSoftmaxConfig { temperature, ..base }))
            .collect()
    }

    /// Which of the nine objectives this is; `None` for a combination.
    pub fn kind(&self) -> Option<ObjectiveKind> {
        Some(match self {
            Self::Softmax(_) => ObjectiveKind::Softmax,
            Self::LabelSmoothing(_) => ObjectiveKind::LabelSmoothing,
            Self::Sigmoid(_) => ObjectiveKind::Sigmoid,
            Self::ExtraL2(_) => ObjectiveKind::ExtraL2,
            Self::Dropout(_) => ObjectiveKind::Dropout,
            Self::LogitPenalty(_) => ObjectiveKind::LogitPenalty,
            Self::LogitNorm(_) => ObjectiveKind::LogitNorm,
            Self::CosineSoftmax(_) => ObjectiveKind::CosineSoftmax,
            Self::SquaredError(_) => ObjectiveKind::SquaredError,
            Self::Combined(_) => return None,
        })
    }

    /// The single objectives it is made of: itself, or a combination's terms in canonical order.
    pub fn terms(&self) -> Vec<ObjectiveConfig> {
        match self {
            Self::Combined(c) => c.terms(),
            single => vec![*single],
        }
    }

    /// The kebab-case name used in configs and on the command line (`softmax`,
    /// `cosine-softmax+dropout`).
    pub fn name(&self) -> String {
        match self.kind() {
            Some(kind) => kind.name().to_string(),
            None => self.terms().iter().map(|t| t.name()).collect::<Vec<_>>().join("+"),
        }
    }

    /// The name the paper's tables use (`Cosine softmax + Dropout` for a combination).
    pub fn title(&self) -> String {
        match self.kind() {
            Some(kind) => kind.title().to_string(),
            None => self.terms().iter().map(|t| t.title()).collect::<Vec<_>>().join(" + "),
        }
    }

    /// Its parts: how it forms the logits, their loss, its regularisers.
    pub fn parts(&self) -> CombinedConfig {
        match self {
            Self::Combined(c) => *c,
            single => CombinedConfig::default().with(*single),
        }
    }

    /// Checks every hyperparameter, naming the bad one and its allowed range.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Softmax(c) => c.validate(),
            Self::LabelSmoothing(c) => c.validate(),
            Self::Sigmoid(c) => c.validate(),
            Self::ExtraL2(c) => c.validate(),
            Self::Dropout(c) => c.validate(),
            Self::LogitPenalty(c) => c.validate(),
            Self::LogitNorm(c) => c.validate(),
            Self::CosineSoftmax(c) => c.validate(),
            Self::SquaredError(c) => c.validate(),
            Self::Combined(c) => c.validate(),
        }
    }

    /// The hyperparameters as `(name, value)` pairs, names in kebab-case, sorted by name.
    pub fn hyperparameters(&self) -> Vec<(String, String)> {
        let value = serde_json::to_value(self).expect("objective configs serialise");
        let serde_json::Value::Object(map) = value else {
            unreachable!("an internally tagged enum serialises to an object")
        };
        map.into_iter()
            .filter(|(key, _)| key != "kind")
            .map(|(key, value)| {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (key.replace('_', "-"), value)
            })
            .collect()
    }

    /// Validates and returns the objective ready to compute losses.
    pub fn init(&self) -> Result<Objective> {
        self.validate()?;
        Ok(Objective { config: *self })
    }
}

/// `kind` or `kind:name=value,name=value` — the same string [`FromStr`] reads.
impl fmt::Display for ObjectiveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        let params = self.hyperparameters();
        if !params.is_empty() {
            let joined: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, ":{}", joined.join(","))?;
        }
        Ok(())
    }
}

impl FromStr for ObjectiveConfig {
    type Err = Error;

    /// Parses `kind` or `kind:name=value,...` (names in kebab- or snake-case), where `kind` may
    /// join several objectives with `+`, and validates it.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let (name, params) = match s.split_once(':') {
            Some((name, params)) => (name.trim(), params.trim()),
            None => (s, ""),
        };
        let kinds: Vec<ObjectiveKind> = name.split('+').map(|n| n.trim().parse()).collect::<Result<_>>()?;
        let mut map = serde_json::Map::new();
        map.insert(
            "kind".into(),
            kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join("+").into(),
        );
        for pair in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| Error::InvalidSetting {
                name: "objective",
                value: format!("`{s}`"),
                allowed: format!("`{name}:name=value,...`; `{pair}` has no `=`"),
            })?;
            let value = value.trim();
            let json = match value.parse::<f64>() {
                Ok(number) => serde_json::Number::from_f64(number)
                    .map(serde_json::Value::Number)
                    .unwrap_or_else(|| serde_json::Value::String(value.to_string())),
                Err(_) => serde_json::Value::String(value.to_string()),
            };
            map.insert(key.trim().replace('-', "_"), json);
        }
        let config = ObjectiveConfig::from_table(serde_json::Value::Object(map)).map_err(|e| match e {
            Error::InvalidSetting {
                name: "objective",
                allowed,
                ..
            } => Error::InvalidSetting {
                name: "objective",
                value: format!("`{s}`"),
                allowed,
            },
            other => other,
        })?;
        config.validate()?;
        Ok(config)
    }
}

/// What an objective gives for a batch.
#[derive(Debug, Clone)]
pub struct ObjectiveOutput {
    /// The loss averaged over the batch (plus any penalty). Shape `[1]`.
    pub loss: Tensor<1>,
    /// The logits accuracy is measured on (the scaled or normalised ones where the objective
    /// transforms them). Shape `[batch, classes]`.
    pub outputs: Tensor<2>,
}

/// A validated objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    config: ObjectiveConfig,
}

impl Objective {
    /// The configuration it was built from.
    pub fn config(&self) -> &ObjectiveConfig {
        &self.config
    }

    /// How this objective's outputs become probabilities: normalised sigmoids with the sigmoid
    /// loss, softmax with every other (Table C.3).
    pub fn probability(&self) -> crate::probe::metrics::Probability {
        match self.config.parts().loss {
            LogitLoss::Sigmoid => crate::probe::metrics::Probability::NormalizedSigmoid,
            _ => crate::probe::metrics::Probability::Softmax,
        }
    }

    /// The probability ρ of keeping a penultimate feature in training, where the objective
    /// uses dropout with ρ < 1.
    pub fn keep_prob(&self) -> Option<f64> {
        self.config
            .parts()
            .dropout
            .map(|d| d.keep_prob)
            .filter(|&keep| keep < 1.0)
    }

    /// The classifier's weights as this objective applies them, one row per class: the raw
    /// rows, or for the cosine classifier the L²-normalised rows its logits use (the paper's
    /// Table E.2 measures these: their norms are all equal, Std/Avg ‖w‖ = 0).
    ///
    /// # Shapes
    /// - returns `[classes, features]`
    pub fn classifier_rows(&self, head: &Head) -> Tensor<2> {
        let weight = head.weight(); // [features, classes]
        match self.config.parts().normalization {
            Some(Normalization::Cosine(_)) => functional::normalize(weight, 0).transpose(),
            _ => weight.transpose(),
        }
    }

    /// The training loss and outputs; dropout draws a fresh mask from the device's generator.
    ///
    /// # Shapes
    /// - `features`: `[batch, features]` (the penultimate layer)
    /// - `targets`: `[batch]`, class indices below the head's number of classes
    pub fn forward(&self, features: Tensor<2>, head: &Head, targets: Tensor<1, Int>) -> ObjectiveOutput {
        let mask = match self.config.parts().dropout {
            Some(c) if c.keep_prob < 1.0 => Some(c.sample_mask(&features)),
            _ => None,
        };
        self.forward_with_mask(features, head, targets, mask)
    }

    /// [`Objective::forward`] with a given dropout keep-mask (0s and 1s, `[batch, features]`);
    /// objectives without dropout ignore it.
    pub fn forward_with_mask(
        &self,
        features: Tensor<2>,
        head: &Head,
        targets: Tensor<1, Int>,
        mask: Option<Tensor<2>>,
    ) -> ObjectiveOutput {
        let t = functional::one_hot(targets, head.classes(), &features);
        self.config.parts().forward_soft(features, head, t, mask)
    }

    /// The training loss and outputs against target vectors (Mixup's mixtures; one-hot rows
    /// give [`Objective::forward_with_mask`]), with a given dropout keep-mask.
    ///
    /// # Shapes
    /// - `features`, `mask`: `[batch, features]`
    /// - `targets`: `[batch, classes]`, each row in [0, 1] summing to 1
    pub fn forward_soft(
        &self,
        features: Tensor<2>,
        head: &Head,
        targets: Tensor<2>,
        mask: Option<Tensor<2>>,
    ) -> ObjectiveOutput {
        self.config.parts().forward_soft(features, head, targets, mask)
    }

    /// The evaluation outputs (no dropout): the logits accuracy, NLL and calibration use.
    ///
    /// # Shapes
    /// - `features`: `[batch, features]`
    /// - output: `[batch, classes]`
    pub fn outputs(&self, features: Tensor<2>, head: &Head) -> Tensor<2> {
        self.config.parts().outputs(features, head)
    }
}
