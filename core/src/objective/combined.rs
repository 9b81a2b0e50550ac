//! Combinations of losses, logit normalisations and regularisers (the paper's Table C.4).
//!
//! Every objective is built from three parts:
//! - how the logits are formed: the plain final layer `z = W x + b`, logit normalisation
//!   `z / (τ ‖z‖)` (eq. 6) or the cosine classifier `z_k = cos(W_k, x) / τ + b_k` (eq. 7);
//! - the loss of those logits: softmax cross-entropy (eq. 1), label smoothing (eq. 2), sigmoid
//!   cross-entropy (eq. 8) or squared error (eq. 9);
//! - regularisers: dropout on the penultimate layer (eq. 3), extra final-layer L² (eq. 4), the
//!   logit penalty (eq. 5).
//!
//! The nine objectives are the choices with at most one part away from the defaults (plain
//! logits, softmax cross-entropy, no regulariser). [`CombinedConfig`] is every other choice,
//! written as the objectives' names joined by `+`: `cosine-softmax+label-smoothing` (the cosine
//! classifier trained on smoothed targets), `sigmoid+dropout`, `label-smoothing+logit-penalty`.
//! The paper's Table C.4 crosses {softmax, label smoothing, sigmoid, cosine softmax} with
//! {dropout, logit penalty, logit normalisation, cosine normalisation}.
//!
//! The loss of a combination is
//! `L = f · loss(z(x̃), t) + λ ‖W‖²_F / 2 + β · mean ‖z(x̃)‖² / 2`,
//! with `x̃` the features after dropout (or `x`), `z` the logits as the normalisation forms them,
//! `f` the cosine classifier's loss factor (τ below 0.05, footnote 1; otherwise 1) and each
//! penalty present only with its regulariser. The outputs (what accuracy is measured on) are
//! `z`, shifted by `−log K` with the sigmoid loss.
//!
//! A combination is refused when it names two losses (`softmax+sigmoid`), two normalisations
//! (`logit-norm+cosine-softmax`) or one objective twice, when it puts the logit penalty on
//! normalised logits (`‖z‖ = 1/τ` there, so the penalty is a constant), and when it puts extra L²
//! on the cosine classifier (which normalises `W`, so the penalty cannot change the function).

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::model::Head;
use crate::objective::{
    CosineSoftmaxConfig, DropoutConfig, ExtraL2Config, LabelSmoothingConfig, LogitNormConfig, LogitPenaltyConfig,
    ObjectiveConfig, ObjectiveKind, ObjectiveOutput, SigmoidConfig, SoftmaxConfig, SquaredErrorConfig,
};

/// How the logits are normalised, if they are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalization {
    /// Logit normalisation: `z / (τ ‖z‖)` of the plain logits.
    LogitNorm(LogitNormConfig),
    /// The cosine classifier: `cos(W_k, x) / τ + b_k`, its loss multiplied by its loss factor.
    Cosine(CosineSoftmaxConfig),
}

/// The loss of the logits.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LogitLoss {
    /// Softmax cross-entropy, the default.
    #[default]
    Softmax,
    /// Cross-entropy against smoothed targets.
    LabelSmoothing(LabelSmoothingConfig),
    /// Sigmoid cross-entropy on `z − log K`.
    Sigmoid,
    /// Squared error against scaled one-hot targets.
    SquaredError(SquaredErrorConfig),
}

/// An objective as its three parts; see the [module docs](self).
///
/// Build one from objectives with [`CombinedConfig::from_terms`]; every [`ObjectiveConfig`]
/// also has its parts ([`ObjectiveConfig::parts`]), which is how all objectives compute
/// their loss.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CombinedConfig {
    /// The normalisation of the logits; `None` for the plain final layer.
    pub normalization: Option<Normalization>,
    /// The loss of the logits.
    pub loss: LogitLoss,
    /// Dropout on the penultimate layer.
    pub dropout: Option<DropoutConfig>,
    /// Extra L² on the final layer's weights.
    pub extra_l2: Option<ExtraL2Config>,
    /// The L² penalty on the logits.
    pub logit_penalty: Option<LogitPenaltyConfig>,
}

/// Which part an objective sets, for the messages that refuse a combination.
fn part_of(kind: ObjectiveKind) -> &'static str {
    match kind {
        ObjectiveKind::Softmax
        | ObjectiveKind::LabelSmoothing
        | ObjectiveKind::Sigmoid
        | ObjectiveKind::SquaredError => "loss",
        ObjectiveKind::LogitNorm | ObjectiveKind::CosineSoftmax => "normalisation of the logits",
        ObjectiveKind::Dropout => "dropout",
        ObjectiveKind::ExtraL2 => "extra L²",
        ObjectiveKind::LogitPenalty => "logit penalty",
    }
}

fn refuse(name: &str, why: String) -> Error {
    Error::InvalidSetting {
        name: "objective",
        value: format!("`{name}`"),
        allowed: why,
    }
}

impl CombinedConfig {
    /// The parts of objectives combined, each objective setting its own part: a loss, a
    /// normalisation or a regulariser (softmax cross-entropy and plain logits where none is
    /// named). Combinations among the terms are expanded. Refuses two terms that set the same
    /// part, and what [`CombinedConfig::validate`] refuses.
    pub fn from_terms(terms: &[ObjectiveConfig]) -> Result<Self> {
        let singles: Vec<ObjectiveConfig> = terms.iter().flat_map(ObjectiveConfig::terms).collect();
        let name = singles.iter().map(|t| t.name()).collect::<Vec<_>>().join("+");
        let mut parts = CombinedConfig::default();
        let mut set_by: Vec<(&'static str, ObjectiveKind)> = Vec::new();
        for term in &singles {
            let kind = term.kind().expect("terms are single objectives");
            let part = part_of(kind);
            if let Some((_, first)) = set_by.iter().find(|(p, _)| *p == part) {
                let why = if *first == kind {
                    format!("each objective at most once; `{kind}` appears twice")
                } else {
                    format!("at most one {part}; `{first}` and `{kind}` each set one")
                };
                return Err(refuse(&name, why));
            }
            set_by.push((part, kind));
            parts = parts.with(*term);
        }
        parts.validate()?;
        Ok(parts)
    }

    /// These parts with the one a single objective sets (a combination's, all of them).
    pub(crate) fn with(mut self, term: ObjectiveConfig) -> Self {
        match term {
            ObjectiveConfig::Softmax(_) => self.loss = LogitLoss::Softmax,
            ObjectiveConfig::LabelSmoothing(c) => self.loss = LogitLoss::LabelSmoothing(c),
            ObjectiveConfig::Sigmoid(_) => self.loss = LogitLoss::Sigmoid,
            ObjectiveConfig::SquaredError(c) => self.loss = LogitLoss::SquaredError(c),
            ObjectiveConfig::LogitNorm(c) => self.normalization = Some(Normalization::LogitNorm(c)),
            ObjectiveConfig::CosineSoftmax(c) => self.normalization = Some(Normalization::Cosine(c)),
            ObjectiveConfig::Dropout(c) => self.dropout = Some(c),
            ObjectiveConfig::ExtraL2(c) => self.extra_l2 = Some(c),
            ObjectiveConfig::LogitPenalty(c) => self.logit_penalty = Some(c),
            ObjectiveConfig::Combined(c) => return c.terms().into_iter().fold(self, Self::with),
        }
        self
    }

    /// Checks every part's hyperparameters, and refuses the combinations that make no sense
    /// (see the [module docs](self)).
    pub fn validate(&self) -> Result<()> {
        for term in self.terms() {
            match term {
                ObjectiveConfig::Combined(_) => unreachable!("terms are single objectives"),
                single => single.validate()?,
            }
        }
        let name = self.name();
        if let (Some(Normalization::LogitNorm(_)), Some(_)) = (self.normalization, self.logit_penalty) {
            return Err(refuse(
                &name,
                "no logit penalty on normalised logits: their norm is 1/τ, so the penalty is a constant".into(),
            ));
        }
        if let (Some(Normalization::Cosine(_)), Some(_)) = (self.normalization, self.extra_l2) {
            return Err(refuse(
                &name,
                "no extra L² with the cosine classifier: it normalises W, so the penalty cannot change what it computes"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The single objectives this is made of, in the canonical order: the normalisation, the
    /// loss (softmax only when it is the only part), then dropout, extra L² and the logit
    /// penalty.
    pub fn terms(&self) -> Vec<ObjectiveConfig> {
        let mut terms = Vec::new();
        match self.normalization {
            Some(Normalization::LogitNorm(c)) => terms.push(ObjectiveConfig::LogitNorm(c)),
            Some(Normalization::Cosine(c)) => terms.push(ObjectiveConfig::CosineSoftmax(c)),
            None => {}
        }
        match self.loss {
            LogitLoss::Softmax => {}
            LogitLoss::LabelSmoothing(c) => terms.push(ObjectiveConfig::LabelSmoothing(c)),
            LogitLoss::Sigmoid => terms.push(ObjectiveConfig::Sigmoid(SigmoidConfig {})),
            LogitLoss::SquaredError(c) => terms.push(ObjectiveConfig::SquaredError(c)),
        }
        terms.extend(self.dropout.map(ObjectiveConfig::Dropout));
        terms.extend(self.extra_l2.map(ObjectiveConfig::ExtraL2));
        terms.extend(self.logit_penalty.map(ObjectiveConfig::LogitPenalty));
        if terms.is_empty() {
            terms.push(ObjectiveConfig::Softmax(SoftmaxConfig {}));
        }
        terms
    }

    /// The terms' names joined by `+`, e.g. `cosine-softmax+dropout`.
    pub fn name(&self) -> String {
        self.terms()
            .iter()
            .map(ObjectiveConfig::name)
            .collect::<Vec<_>>()
            .join("+")
    }

    /// The one objective these parts are: a single objective where only one part differs from
    /// the defaults, else the combination.
    pub fn into_objective(self) -> ObjectiveConfig {
        match self.terms().as_slice() {
            [single] => *single,
            _ => ObjectiveConfig::Combined(self),
        }
    }

    /// The logits the loss and the accuracy use, before the sigmoid's shift.
    ///
    /// # Shapes
    /// - `features`: `[batch, features]`
    /// - output: `[batch, classes]`
    fn logits(&self, features: Tensor<2>, head: &Head) -> Tensor<2> {
        match self.normalization {
            None => head.forward(features),
            Some(Normalization::LogitNorm(c)) => c.outputs(head.forward(features)),
            Some(Normalization::Cosine(c)) => c.logits(features, head.weight(), head.bias()),
        }
    }

    /// The outputs accuracy is measured on, from [`CombinedConfig::logits`].
    fn shifted(&self, logits: Tensor<2>) -> Tensor<2> {
        match self.loss {
            LogitLoss::Sigmoid => SigmoidConfig {}.outputs(logits),
            _ => logits,
        }
    }

    /// The evaluation outputs (no dropout).
    ///
    /// # Shapes
    /// - `features`: `[batch, features]`
    /// - output: `[batch, classes]`
    pub fn outputs(&self, features: Tensor<2>, head: &Head) -> Tensor<2> {
        self.shifted(self.logits(features, head))
    }

    /// The training loss and outputs against target vectors in [0, 1] (one-hot, or Mixup's
    /// mixtures of two; each loss takes them as its targets, see the losses' `soft_loss`), with
    /// a given dropout keep-mask (0s and 1s); without dropout, or without a mask, the features
    /// are used as they are.
    ///
    /// # Shapes
    /// - `features`, `mask`: `[batch, features]`
    /// - `targets`: `[batch, classes]`
    pub fn forward_soft(
        &self,
        features: Tensor<2>,
        head: &Head,
        targets: Tensor<2>,
        mask: Option<Tensor<2>>,
    ) -> ObjectiveOutput {
        let x = match (self.dropout, mask) {
            (Some(dropout), Some(mask)) => dropout.apply(features, mask),
            _ => features,
        };
        let z = self.logits(x, head);
        let t = targets.cast(z.dtype());
        let loss = match self.loss {
            LogitLoss::Softmax => SoftmaxConfig {}.soft_loss(z.clone(), t),
            LogitLoss::LabelSmoothing(c) => c.soft_loss(z.clone(), t),
            LogitLoss::Sigmoid => SigmoidConfig {}.soft_loss(z.clone(), t),
            LogitLoss::SquaredError(c) => c.soft_loss(z.clone(), t),
        };
        let factor = match self.normalization {
            Some(Normalization::Cosine(c)) => c.loss_factor(),
            _ => 1.0,
        };
        let mut loss = if factor == 1.0 { loss } else { loss.mul_scalar(factor) };
        if let Some(extra_l2) = self.extra_l2 {
            loss = loss + extra_l2.penalty(head.weight());
        }
        if let Some(logit_penalty) = self.logit_penalty {
            loss = loss + logit_penalty.penalty(z.clone());
        }
        ObjectiveOutput {
            loss,
            outputs: self.shifted(z),
        }
    }
}
