//! The learning-rate schedule: linear warm-up, then exponential or cosine decay.
//!
//! The rate is a pure function of the step, so a resumed run continues exactly where it
//! stopped with nothing to restore. (burn's schedulers cap the rate at 1, below the paper's peak
//! of 1.6 at batch 4,096.)

use crate::train::config::Decay;

/// The schedule of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Step size at the end of the warm-up.
    pub peak: f64,
    /// Steps of warm-up.
    pub warmup_steps: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Steps in the whole run.
    pub total_steps: usize,
    /// The decay after the warm-up.
    pub decay: Decay,
}

impl Schedule {
    /// The step size of step `step` (counted from 0): `peak · (step + 1) / warmup_steps` during
    /// the warm-up, then `peak · factor^(steps since warm-up / steps_per_epoch)` or
    /// `peak · ½ (1 + cos(π · progress))`.
    pub fn rate(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let since = (step - self.warmup_steps) as f64;
        match self.decay {
            Decay::Exponential { factor } => self.peak * factor.powf(since / self.steps_per_epoch.max(1) as f64),
            Decay::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                self.peak * 0.5 * (1.0 + (std::f64::consts::PI * (since / span).min(1.0)).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        let s = Schedule {
            peak: 1.6,
            warmup_steps: 10,
            steps_per_epoch: 5,
            total_steps: 110,
            decay: Decay::Exponential { factor: 0.975 },
        };
        assert!((s.rate(0) - 0.16).abs() < 1e-12);
        assert!((s.rate(9) - 1.6).abs() < 1e-12);
        assert!((s.rate(10) - 1.6).abs() < 1e-12);
        assert!((s.rate(15) - 1.6 * 0.975).abs() < 1e-12);
        assert!((s.rate(20) - 1.6 * 0.975 * 0.975).abs() < 1e-12);
        let c = Schedule {
            decay: Decay::Cosine,
            ..s
        };
        assert!((c.rate(10) - 1.6).abs() < 1e-12);
        assert!((c.rate(60) - 0.8).abs() < 1e-12);
        assert!(c.rate(109) < 1e-3);
    }
}
