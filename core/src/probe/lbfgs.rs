//! Limited-memory BFGS (Nocedal 1980; Liu & Nocedal 1989) with a strong-Wolfe line search
//! (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithms 3.5–3.6 and 7.4).
//!
//! The iterate lives on the host in `f64`; the objective evaluates wherever it likes (the linear
//! probe evaluates on a burn device). Stopping rules follow SciPy's L-BFGS-B as scikit-learn calls
//! it: the largest gradient component at most `gradient_tolerance`, or a relative decrease of the
//! objective below `relative_decrease_tolerance`, or `max_iterations`. A line search that fails
//! ends the run with [`Termination::LineSearchFailed`] and keeps the best point found — it is
//! reported, never fatal.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid_setting};

/// Settings of the optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LbfgsConfig {
    /// Number of correction pairs kept. Default 10 (SciPy's default).
    pub memory: usize,
    /// Maximum number of iterations. Default 1000.
    pub max_iterations: usize,
    /// Stop when `max_i |∇f_i| ≤` this. Default 1e-4 (scikit-learn's `tol`).
    pub gradient_tolerance: f64,
    /// Stop when `(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤` this. Default `64 ε` (as
    /// scikit-learn sets SciPy's `ftol`).
    pub relative_decrease_tolerance: f64,
    /// Maximum evaluations in one line search. Default 25.
    pub max_line_search: usize,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        Self {
            memory: 10,
            max_iterations: 1000,
            gradient_tolerance: 1e-4,
            relative_decrease_tolerance: 64.0 * f64::EPSILON,
            max_line_search: 25,
        }
    }
}

impl LbfgsConfig {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.memory == 0 {
            return invalid_setting("L-BFGS memory", "0", "at least 1");
        }
        if self.max_iterations == 0 {
            return invalid_setting("max iterations", "0", "at least 1");
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance >= 0.0) {
            return invalid_setting(
                "gradient tolerance",
                self.gradient_tolerance.to_string(),
                "a finite number ≥ 0",
            );
        }
        if !(self.relative_decrease_tolerance.is_finite() && self.relative_decrease_tolerance >= 0.0) {
            return invalid_setting(
                "relative decrease tolerance",
                self.relative_decrease_tolerance.to_string(),
                "a finite number ≥ 0",
            );
        }
        if self.max_line_search < 2 {
            return invalid_setting(
                "line-search evaluations",
                self.max_line_search.to_string(),
                "at least 2",
            );
        }
        Ok(())
    }
}

/// Why the optimiser stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Termination {
    /// The gradient is below the tolerance.
    Gradient,
    /// The objective stopped decreasing (relative decrease below the tolerance).
    SmallDecrease,
    /// The iteration budget ran out.
    MaxIterations,
    /// No step satisfying the Wolfe conditions was found; the best point is kept.
    LineSearchFailed(String),
}

impl Termination {
    /// Whether this counts as convergence.
    pub fn converged(&self) -> bool {
        matches!(self, Termination::Gradient | Termination::SmallDecrease)
    }
}

/// The result of a minimisation.
#[derive(Debug, Clone)]
pub(crate) struct LbfgsOutcome {
    /// The final iterate.
    pub x: Vec<f64>,
    /// The objective there.
    pub value: f64,
    /// `max_i |∇f_i|` there.
    pub gradient_norm: f64,
    /// Iterations taken.
    pub iterations: usize,
    /// Objective evaluations.
    pub evaluations: usize,
    /// Why it stopped.
    pub termination: Termination,
}

/// A differentiable objective `x ↦ (f(x), ∇f(x))`.
#[allow(async_fn_in_trait)]
pub(crate) trait Differentiable {
    /// Evaluates the objective and its gradient. A non-finite value is allowed (the line search
    /// backs off); an error ends the minimisation.
    async fn evaluate(&mut self, x: &[f64]) -> Result<(f64, Vec<f64>)>;
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn inf_norm(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// A point of the line search: step, value, gradient, directional derivative.
struct Trial {
    step: f64,
    value: f64,
    x: Vec<f64>,
    gradient: Vec<f64>,
    slope: f64,
}

/// Minimises `f` from `x0`.
pub(crate) async fn minimize<F: Differentiable>(f: &mut F, x0: Vec<f64>, config: &LbfgsConfig) -> Result<LbfgsOutcome> {
    config.validate()?;
    let mut x = x0;
    let (mut value, mut gradient) = f.evaluate(&x).await?;
    let mut evaluations = 1;
    if !value.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
        return Err(Error::Degenerate {
            what: "L-BFGS".into(),
            reason: format!("the objective is not finite at the starting point (value {value})"),
        });
    }
    let mut pairs: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = std::collections::VecDeque::new();
    let mut iterations = 0;
    let termination = loop {
        if inf_norm(&gradient) <= config.gradient_tolerance {
            break Termination::Gradient;
        }
        if iterations >= config.max_iterations {
            break Termination::MaxIterations;
        }
        // Two-loop recursion: direction = −H ∇f.
        let mut q = gradient.clone();
        let mut alphas = Vec::with_capacity(pairs.len());
        for (s, y, rho) in pairs.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        if let Some((s, y, _)) = pairs.back() {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let mut direction: Vec<f64> = q.into_iter().map(|v| -v).collect();
        let mut slope = dot(&gradient, &direction);
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            pairs.clear();
            direction = gradient.iter().map(|g| -g).collect();
            slope = dot(&gradient, &direction);
        }
        let first_step = if pairs.is_empty() {
            (1.0 / dot(&direction, &direction).sqrt()).min(1.0)
        } else {
            1.0
        };
        let search = line_search(f, &x, value, &direction, slope, first_step, config, &mut evaluations).await?;
        let trial = match search {
            Ok(trial) => trial,
            Err(reason) => break Termination::LineSearchFailed(reason),
        };
        iterations += 1;
        let s: Vec<f64> = trial.x.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = trial.gradient.iter().zip(&gradient).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-10 * dot(&y, &y) {
            if pairs.len() == config.memory {
                pairs.pop_front();
            }
            pairs.push_back((s, y, 1.0 / sy));
        }
        let previous = value;
        x = trial.x;
        value = trial.value;
        gradient = trial.gradient;
        if (previous - value) <= config.relative_decrease_tolerance * previous.abs().max(value.abs()).max(1.0)
            && inf_norm(&gradient) > config.gradient_tolerance
        {
            break Termination::SmallDecrease;
        }
    };
    Ok(LbfgsOutcome {
        gradient_norm: inf_norm(&gradient),
        x,
        value,
        iterations,
        evaluations,
        termination,
    })
}

/// Strong-Wolfe line search along `direction` (N&W Algorithm 3.5); `Err` carries why it failed.
#[allow(clippy::too_many_arguments)]
async fn line_search<F: Differentiable>(
    f: &mut F,
    x: &[f64],
    value: f64,
    direction: &[f64],
    slope: f64,
    first_step: f64,
    config: &LbfgsConfig,
    evaluations: &mut usize,
) -> Result<std::result::Result<Trial, String>> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let mut evaluate = async |f: &mut F, step: f64| -> Result<Trial> {
        let point: Vec<f64> = x.iter().zip(direction).map(|(a, d)| a + step * d).collect();
        let (v, g) = f.evaluate(&point).await?;
        *evaluations += 1;
        let finite = v.is_finite() && g.iter().all(|x| x.is_finite());
        let slope = if finite { dot(&g, direction) } else { f64::NAN };
        Ok(Trial {
            step,
            value: if finite { v } else { f64::INFINITY },
            x: point,
            gradient: g,
            slope,
        })
    };
    let armijo = |t: &Trial| t.value <= value + C1 * t.step * slope;
    let curvature = |t: &Trial| t.slope.abs() <= -C2 * slope;
    let mut budget = config.max_line_search;
    let mut previous = Trial {
        step: 0.0,
        value,
        x: x.to_vec(),
        gradient: Vec::new(),
        slope,
    };
    let mut step = first_step;
    let mut best: Option<Trial> = None;
    let (mut lo, mut hi);
    loop {
        if budget == 0 {
            return Ok(best.ok_or_else(|| "no decrease along the search direction".to_string()));
        }
        budget -= 1;
        let t = evaluate(f, step).await?;
        if !armijo(&t) || (previous.step > 0.0 && t.value >= previous.value) {
            (lo, hi) = (previous, t);
            break;
        }
        if curvature(&t) {
            return Ok(Ok(t));
        }
        if t.slope >= 0.0 {
            (lo, hi) = (t, previous);
            break;
        }
        step = t.step * 2.0;
        previous = t;
        best = Some(Trial {
            gradient: previous.gradient.clone(),
            x: previous.x.clone(),
            ..previous
        });
    }
    // Zoom (N&W Algorithm 3.6) between lo (satisfies Armijo, lowest value) and hi.
    loop {
        if armijo(&lo) && lo.step > 0.0 && best.as_ref().is_none_or(|b| lo.value < b.value) {
            best = Some(Trial {
                gradient: lo.gradient.clone(),
                x: lo.x.clone(),
                ..lo
            });
        }
        if budget == 0 || (hi.step - lo.step).abs() <= 1e-16 * lo.step.abs().max(1e-300) {
            return Ok(best.map(Ok).unwrap_or_else(|| {
                Err(format!(
                    "no step satisfies the Wolfe conditions after {} evaluations",
                    config.max_line_search
                ))
            }));
        }
        budget -= 1;
        let step = interpolate(&lo, &hi);
        let t = evaluate(f, step).await?;
        if !armijo(&t) || t.value >= lo.value {
            hi = t;
        } else {
            if curvature(&t) {
                return Ok(Ok(t));
            }
            if t.slope * (hi.step - lo.step) >= 0.0 {
                hi = lo;
            }
            lo = t;
        }
    }
}

/// The minimiser of the cubic through two points with their slopes, kept inside the middle 80 %
/// of the interval; bisection when the cubic is unusable.
fn interpolate(a: &Trial, b: &Trial) -> f64 {
    let (lo, hi) = (a.step.min(b.step), a.step.max(b.step));
    let width = hi - lo;
    let bisect = 0.5 * (lo + hi);
    if !(a.value.is_finite() && b.value.is_finite() && a.slope.is_finite() && b.slope.is_finite()) {
        return bisect;
    }
    let d1 = a.slope + b.slope - 3.0 * (a.value - b.value) / (a.step - b.step);
    let disc = d1 * d1 - a.slope * b.slope;
    if disc < 0.0 {
        return bisect;
    }
    let d2 = disc.sqrt().copysign(b.step - a.step);
    let step = b.step - (b.step - a.step) * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2);
    if step.is_finite() && step >= lo + 0.1 * width && step <= hi - 0.1 * width {
        step
    } else {
        bisect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rosenbrock function in `n` dimensions.
    struct Rosenbrock;

    impl Differentiable for Rosenbrock {
        async fn evaluate(&mut self, x: &[f64]) -> Result<(f64, Vec<f64>)> {
            let n = x.len();
            let mut f = 0.0;
            let mut g = vec![0.0; n];
            for i in 0..n - 1 {
                let a = x[i + 1] - x[i] * x[i];
                let b = 1.0 - x[i];
                f += 100.0 * a * a + b * b;
                g[i] += -400.0 * x[i] * a - 2.0 * b;
                g[i + 1] += 200.0 * a;
            }
            Ok((f, g))
        }
    }

    #[test]
    fn minimises_rosenbrock() {
        let config = LbfgsConfig {
            gradient_tolerance: 1e-8,
            ..Default::default()
        };
        let out = pollster::block_on(minimize(&mut Rosenbrock, vec![-1.2, 1.0, -1.2, 1.0], &config)).unwrap();
        assert!(out.termination.converged(), "{:?}", out.termination);
        for v in &out.x {
            assert!((v - 1.0).abs() < 1e-5, "{:?}", out.x);
        }
        assert!(out.iterations < 200, "{} iterations", out.iterations);
    }

    /// A function that is infinite beyond x = 1: the line search must back off, not fail.
    struct Wall;

    impl Differentiable for Wall {
        async fn evaluate(&mut self, x: &[f64]) -> Result<(f64, Vec<f64>)> {
            if x[0] >= 1.0 {
                return Ok((f64::INFINITY, vec![f64::NAN]));
            }
            // −log(1 − x) + x²: minimum inside the wall.
            Ok((-(1.0 - x[0]).ln() + x[0] * x[0], vec![1.0 / (1.0 - x[0]) + 2.0 * x[0]]))
        }
    }

    #[test]
    fn backs_off_from_non_finite_values() {
        let out = pollster::block_on(minimize(&mut Wall, vec![-20.0], &LbfgsConfig::default())).unwrap();
        assert!(out.value.is_finite() && out.x[0] < 1.0);
        assert!(out.termination.converged(), "{:?}", out.termination);
    }
}
