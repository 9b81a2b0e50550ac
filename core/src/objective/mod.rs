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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
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
}

impl ObjectiveConfig {
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

    /// Which objective this is.
    pub fn kind(&self) -> ObjectiveKind {
        match self {
            Self::Softmax(_) => ObjectiveKind::Softmax,
            Self::LabelSmoothing(_) => ObjectiveKind::LabelSmoothing,
            Self::Sigmoid(_) => ObjectiveKind::Sigmoid,
            Self::ExtraL2(_) => ObjectiveKind::ExtraL2,
            Self::Dropout(_) => ObjectiveKind::Dropout,
            Self::LogitPenalty(_) => ObjectiveKind::LogitPenalty,
            Self::LogitNorm(_) => ObjectiveKind::LogitNorm,
            Self::CosineSoftmax(_) => ObjectiveKind::CosineSoftmax,
            Self::SquaredError(_) => ObjectiveKind::SquaredError,
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
        f.write_str(self.kind().name())?;
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

    /// Parses `kind` or `kind:name=value,...` (names in kebab- or snake-case) and validates it.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let (name, params) = match s.split_once(':') {
            Some((name, params)) => (name.trim(), params.trim()),
            None => (s, ""),
        };
        let kind: ObjectiveKind = name.parse()?;
        let mut map = serde_json::Map::new();
        map.insert("kind".into(), kind.name().into());
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
        let config: ObjectiveConfig =
            serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| Error::InvalidSetting {
                name: "objective",
                value: format!("`{s}`"),
                allowed: e.to_string(),
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

    /// How this objective's outputs become probabilities: normalised sigmoids for the sigmoid
    /// objective, softmax for every other (Table C.3).
    pub fn probability(&self) -> crate::probe::metrics::Probability {
        match self.config {
            ObjectiveConfig::Sigmoid(_) => crate::probe::metrics::Probability::NormalizedSigmoid,
            _ => crate::probe::metrics::Probability::Softmax,
        }
    }

    /// The classifier's weights as this objective applies them, one row per class: the raw
    /// rows, or for cosine softmax the L²-normalised rows its logits use (the paper's Table E.2
    /// measures these: their norms are all equal, Std/Avg ‖w‖ = 0).
    ///
    /// # Shapes
    /// - returns `[classes, features]`
    pub fn classifier_rows(&self, head: &Head) -> Tensor<2> {
        let weight = head.weight(); // [features, classes]
        match self.config {
            ObjectiveConfig::CosineSoftmax(_) => functional::normalize(weight, 0).transpose(),
            _ => weight.transpose(),
        }
    }

    /// The training loss and outputs; dropout draws a fresh mask from the device's generator.
    ///
    /// # Shapes
    /// - `features`: `[batch, features]` (the penultimate layer)
    /// - `targets`: `[batch]`, class indices below the head's number of classes
    pub fn forward(&self, features: Tensor<2>, head: &Head, targets: Tensor<1, Int>) -> ObjectiveOutput {
        let mask = match &self.config {
            ObjectiveConfig::Dropout(c) if c.keep_prob < 1.0 => Some(c.sample_mask(&features)),
            _ => None,
        };
        self.forward_with_mask(features, head, targets, mask)
    }

    /// [`Objective::forward`] with a given dropout keep-mask (0s and 1s, `[batch, features]`);
    /// objectives other than dropout ignore it.
    pub fn forward_with_mask(
        &self,
        features: Tensor<2>,
        head: &Head,
        targets: Tensor<1, Int>,
        mask: Option<Tensor<2>>,
    ) -> ObjectiveOutput {
        match &self.config {
            ObjectiveConfig::Softmax(c) => {
                let z = head.forward(features);
                ObjectiveOutput {
                    loss: c.loss(z.clone(), targets),
                    outputs: z,
                }
            }
            ObjectiveConfig::LabelSmoothing(c) => {
                let z = head.forward(features);
                ObjectiveOutput {
                    loss: c.loss(z.clone(), targets),
                    outputs: z,
                }
            }
            ObjectiveConfig::Sigmoid(c) => {
                let z = head.forward(features);
                ObjectiveOutput {
                    loss: c.loss(z.clone(), targets),
                    outputs: c.outputs(z),
                }
            }
            ObjectiveConfig::ExtraL2(c) => {
                let z = head.forward(features);
                ObjectiveOutput {
                    loss: c.loss(z.clone(), targets, head.weight()),
                    outputs: z,
                }
            }
            ObjectiveConfig::Dropout(c) => {
                let x = match mask {
                    Some(mask) => c.apply(features, mask),
                    None => features,
                };
                let z = head.forward(x);
                ObjectiveOutput {
                    loss: SoftmaxConfig {}.loss(z.clone(), targets),
                    outputs: z,
                }
            }
            ObjectiveConfig::LogitPenalty(c) => {
                let z = head.forward(features);
                ObjectiveOutput {
                    loss: c.loss(z.clone(), targets),
                    outputs: z,
                }
            }
            ObjectiveConfig::LogitNorm(c) => {
                let z = c.outputs(head.forward(features));
                ObjectiveOutput {
                    loss: SoftmaxConfig {}.loss(z.clone(), targets),
                    outputs: z,
                }
            }
            ObjectiveConfig::CosineSoftmax(c) => {
                let z = c.logits(features, head.weight(), head.bias());
                ObjectiveOutput {
                    loss: c.loss(z.clone(), targets),
                    outputs: z,
                }
            }
            ObjectiveConfig::SquaredError(c) => {
                let z = head.forward(features);
                ObjectiveOutput {
                    loss: c.loss(z.clone(), targets),
                    outputs: z,
                }
            }
        }
    }

    /// The evaluation outputs (no dropout): the logits accuracy, NLL and calibration use.
    ///
    /// # Shapes
    /// - `features`: `[batch, features]`
    /// - output: `[batch, classes]`
    pub fn outputs(&self, features: Tensor<2>, head: &Head) -> Tensor<2> {
        match &self.config {
            ObjectiveConfig::Sigmoid(c) => c.outputs(head.forward(features)),
            ObjectiveConfig::LogitNorm(c) => c.outputs(head.forward(features)),
            ObjectiveConfig::CosineSoftmax(c) => c.logits(features, head.weight(), head.bias()),
            _ => head.forward(features),
        }
    }
}
