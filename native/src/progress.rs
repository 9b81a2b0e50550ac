//! Training progress a user can read: on a terminal, a bar per run (epoch, step, images/s, the
//! last epoch's loss, time left in the epoch and in the run); otherwise (logs, CI) a plain line
//! per epoch and at most one every 30 s within an epoch.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use losslens_core::train::Event;

/// Shows the events of one training run.
pub struct TrainProgress {
    bar: ProgressBar,
    terminal: bool,
    quiet: bool,
    label: String,
    steps_per_epoch: usize,
    epochs: usize,
    epoch_started: Instant,
    last_line: Instant,
    last_loss: Option<f64>,
}

impl TrainProgress {
    /// Progress of the run called `label` (empty for `losslens train`); `quiet` shows nothing.
    pub fn new(label: impl Into<String>, quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal() && !quiet;
        let bar = if terminal {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:25}] {pos}/{len} steps, eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        Self {
            bar,
            terminal,
            quiet,
            label: label.into(),
            steps_per_epoch: 0,
            epochs: 0,
            epoch_started: Instant::now(),
            last_line: Instant::now(),
            last_loss: None,
        }
    }

    /// Prints a line above the bar (or on its own without one).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.terminal {
            self.bar.println(line.as_ref());
        } else {
            eprintln!("{}", line.as_ref());
        }
    }

    fn prefix(&self) -> String {
        if self.label.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.label)
        }
    }

    /// Shows one event.
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::Start {
                info,
                steps_per_epoch,
                start_epoch,
                ..
            } => {
                self.steps_per_epoch = *steps_per_epoch;
                self.epochs = info.epochs;
                self.bar
                    .set_length((steps_per_epoch * (info.epochs - start_epoch)) as u64);
                self.bar.set_position(0);
                self.epoch_started = Instant::now();
                self.last_line = Instant::now();
            }
            Event::Step {
                epoch,
                step,
                batch_size,
                ..
            } => {
                if *step == 1 {
                    self.epoch_started = Instant::now();
                }
                let elapsed = self.epoch_started.elapsed().as_secs_f64().max(1e-9);
                let rate = (step.saturating_sub(1) * batch_size) as f64 / elapsed;
                let left = if *step > 1 {
                    let per_step = elapsed / (*step - 1) as f64;
                    format!(
                        ", epoch ends in {}",
                        clock((self.steps_per_epoch - step) as f64 * per_step)
                    )
                } else {
                    String::new()
                };
                let loss = self.last_loss.map_or(String::new(), |l| format!(", loss {l:.4}"));
                let message = format!(
                    "{}epoch {epoch}/{}, step {step}/{}, {rate:.0} images/s{loss}{left}",
                    self.prefix(),
                    self.epochs,
                    self.steps_per_epoch
                );
                self.bar.set_message(message.clone());
                self.bar.inc(1);
                if !self.terminal && !self.quiet && self.last_line.elapsed() >= Duration::from_secs(30) {
                    let eta = self.bar.eta();
                    eprintln!("{message}; the run ends in {}", clock(eta.as_secs_f64()));
                    self.last_line = Instant::now();
                }
            }
            Event::Evaluating { epoch } => {
                self.bar
                    .set_message(format!("{}epoch {epoch}, evaluating", self.prefix()));
            }
            Event::Epoch(r) => {
                self.last_loss = Some(r.train_loss);
                let mut line = format!(
                    "{}epoch {:>3}: loss {:.4}, train acc {:.4}, holdout acc {}, lr {:.4}, {:.0} images/s",
                    self.prefix(),
                    r.epoch,
                    r.train_loss,
                    r.train_accuracy,
                    r.holdout_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
                    r.learning_rate,
                    r.images_per_second
                );
                if let Some(first) = r.first_step_seconds {
                    line.push_str(&format!(", first step {first:.1} s"));
                }
                if let (Some(scale), Some(skipped)) = (r.loss_scale, r.skipped_steps) {
                    line.push_str(&format!(", loss scale {scale}, {skipped} steps skipped"));
                }
                self.println(line);
                self.last_line = Instant::now();
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `1 h 02 min`, `3 min 05 s`, `12 s`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}
