//! The training loop (Appendix A.1): SGD with Nesterov momentum, weight decay on weights only,
//! warm-up then decay, EMA evaluation, holdout early stopping, a checkpoint every epoch. The
//! steps it takes are named: prepare the data ([`crate::train::data`]), resume or initialise
//! ([`crate::train::setup`]), run an epoch ([`crate::train::step`]), end the epoch (evaluate,
//! checkpoint, log; here).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use crate::data::ImageSet;
use crate::error::{Error, Result, invalid_setting};
use crate::inference::{self, InputSpec, Pooling, Request};
use crate::model::Classifier;
use crate::objective::Objective;
use crate::train::config::TrainConfig;
use crate::train::data::TrainData;
use crate::train::event::Event;
use crate::train::run::{EpochRecord, RunDir, RunInfo, weights_bytes};
use crate::train::setup::{Plan, TrainState, checkpoint_to_resume, pretrained_base};
use crate::train::step::{EpochTotals, Parallel, run_epoch};

/// How a call to [`train`] behaves besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the run in the output folder from its last checkpoint (it must exist and hold
    /// the same configuration).
    pub resume: bool,
    /// Stop (cleanly) at the first checkpoint once this many epochs are done (every epoch has
    /// one unless [`TrainConfig::checkpoints`] spreads them).
    pub stop_after_epoch: Option<usize>,
    /// Folder for decoded-image caches of ImageFolder datasets; none decodes every time.
    pub cache_dir: Option<PathBuf>,
    /// More devices for data-parallel training: each step splits its batch between the main
    /// device and these (batch-norm statistics are per device, as in PyTorch's DDP without
    /// SyncBatchNorm). Empty: one device.
    pub replicas: Vec<Device>,
    /// When set (by another thread), training stops at the end of the epoch, before it writes
    /// anything more, with [`Error::Cancelled`]: a study's worker sets it when another worker
    /// took its unit over.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Other processes that train the same network (one per machine, see
    /// [`crate::train::collective`]): this one computes its shard of every batch, the gradients
    /// are summed over all of them, and only rank 0 writes the run folder. None: this process
    /// alone.
    pub collective: Option<std::rc::Rc<dyn crate::train::collective::Collective>>,
}

/// The outcome of [`train`].
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The run information (as saved in `run.json`).
    pub info: RunInfo,
    /// Every epoch's record.
    pub history: Vec<EpochRecord>,
}

/// Whether epoch `epoch` of `epochs` ends with a holdout evaluation and a checkpoint: every
/// epoch, or `checkpoints` of them spread evenly (always the last).
fn checkpointed(epoch: usize, epochs: usize, checkpoints: Option<usize>) -> bool {
    match checkpoints {
        None => true,
        Some(c) => epoch == epochs || epoch * c / epochs > (epoch - 1) * c / epochs,
    }
}

/// Trains a network as `config` says, writing the run to `out` ([`RunDir`]).
pub fn train(
    config: &TrainConfig,
    out: &Path,
    options: &TrainOptions,
    device: &Device,
    observer: &mut dyn FnMut(Event),
) -> Result<TrainSummary> {
    config.validate()?;
    let run = RunDir::new(out);
    let checkpoint = checkpoint_to_resume(&run, options.resume)?;
    let base = pretrained_base(config)?;
    let data = TrainData::prepare(config, base.as_ref(), options.cache_dir.as_deref())?;
    let (_, tensor_cores_f16) = crate::device::kernel_features(device);
    let plan = Plan::new(config, &run, &data, base.as_ref(), (options.resume, tensor_cores_f16))?;
    if plan.mixed && !options.replicas.is_empty() {
        return invalid_setting(
            "precision",
            "mixed",
            "f32 for data-parallel training on several GPUs (mixed precision runs on one)",
        );
    }
    let collective = options.collective.as_deref();
    if let Some(c) = collective {
        if plan.mixed || !options.replicas.is_empty() {
            return invalid_setting(
                "nodes",
                c.size(),
                "one device per process in f32 (neither --gpus nor mixed precision with --nodes)",
            );
        }
        if plan.batch_size < c.size() {
            return invalid_setting(
                "batch_size",
                plan.batch_size,
                format!(
                    "at least the number of processes ({}), so that each has a shard",
                    c.size()
                ),
            );
        }
    }
    // Rank 0 writes the run folder; the other processes keep their state in memory.
    let writes = collective.is_none_or(|c| c.rank() == 0);
    let info = plan.info(&data);
    if !options.resume && writes {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        run.write_config(&plan.config)?;
        run.write_info(&info)?;
    }
    let mut state = TrainState::start(&plan, info, checkpoint, device)?;
    observer(Event::Start {
        config: &plan.config,
        info: &state.info,
        steps_per_epoch: plan.steps_per_epoch,
        start_epoch: state.progress.epoch,
    });
    let start = state.progress.epoch + 1;
    // The first step's time (kernel compilation and tuning) goes into the next epoch record.
    let mut first_step = None;
    for epoch in start..=plan.epochs {
        let parallel = Parallel {
            replicas: &options.replicas,
            collective,
        };
        let (next, mut totals) = run_epoch(
            state,
            &plan,
            &data.train,
            epoch,
            epoch == start,
            device,
            parallel,
            observer,
        )?;
        state = next;
        if options
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(Error::Cancelled);
        }
        first_step = first_step.or(totals.first_step_seconds.take());
        if writes && plan.config.keep_every.is_some_and(|every| epoch % every == 0) {
            run.write_kept(epoch, &weights_bytes(evaluated(&state, &plan))?)?;
        }
        if !checkpointed(epoch, plan.epochs, plan.config.checkpoints) {
            // Between checkpoints the epoch's numbers stay on the device: no sync, no files.
            continue;
        }
        totals.first_step_seconds = first_step.take();
        let run = writes.then_some(&run);
        let record = end_epoch(&mut state, &plan, run, &data.holdout, totals, epoch, device, observer)?;
        observer(Event::Epoch(&record));
        if options.stop_after_epoch.is_some_and(|stop| epoch >= stop) {
            break;
        }
    }
    Ok(TrainSummary {
        info: state.info,
        history: state.progress.history,
    })
}

/// Ends a checkpointed epoch: refuses a diverged loss, evaluates the weights that would be kept
/// (the average, else the current ones) on the holdout, keeps them as `model.bpk` when they
/// are the best so far, and writes the checkpoint, the metrics and `run.json` (into `run`; none
/// on processes other than rank 0).
#[allow(clippy::too_many_arguments)]
fn end_epoch(
    state: &mut TrainState,
    plan: &Plan,
    run: Option<&RunDir>,
    holdout: &ImageSet,
    totals: EpochTotals,
    epoch: usize,
    device: &Device,
    observer: &mut dyn FnMut(Event),
) -> Result<EpochRecord> {
    let images = (plan.steps_per_epoch * plan.batch_size) as f64;
    // Steps skipped for an overflow (mixed precision) count in neither the loss nor the accuracy.
    let counted = totals.counted_steps.max(1) as f64;
    let train_loss = scalar(totals.loss_sum)? / counted;
    if !train_loss.is_finite() {
        return Err(Error::Diverged {
            epoch,
            loss: train_loss,
            learning_rate: plan.config.learning_rate,
        });
    }
    let train_accuracy = scalar_int(totals.correct)? / (counted * plan.batch_size as f64);

    observer(Event::Evaluating { epoch });
    let evaluated = evaluated(state, plan);
    let input = InputSpec {
        image_size: plan.image_size,
        normalization: plan.stats.clone(),
    };
    let holdout = if holdout.is_empty() {
        None
    } else {
        Some(accuracy(
            &evaluated,
            &plan.objective,
            holdout,
            &input,
            plan.config.eval_batch_size,
            device,
        )?)
    };
    let holdout_accuracy = holdout.map(|h| h.0);
    let progress = &mut state.progress;
    let improved = match (holdout_accuracy, progress.best) {
        (None, _) => true,
        (Some(a), Some((_, best))) => a > best,
        (Some(_), None) => true,
    };
    if let Some(run) = run.filter(|_| improved) {
        crate::atomic::write(&run.model_path(), &weights_bytes(evaluated)?)?;
    }
    if improved {
        progress.best = Some((epoch, holdout_accuracy.unwrap_or(f64::NAN)));
    }
    let record = EpochRecord {
        epoch,
        step: progress.step,
        learning_rate: totals.learning_rate,
        train_loss,
        train_accuracy,
        holdout_accuracy,
        holdout_mean_per_class_accuracy: holdout.map(|h| h.1),
        seconds: totals.seconds,
        images_per_second: images / totals.seconds.max(1e-9),
        first_step_seconds: totals.first_step_seconds,
        precision: plan.mixed.then(|| "mixed".to_string()),
        loss_scale: progress.loss_scale.map(|s| s.scale),
        skipped_steps: plan.mixed.then_some(totals.skipped_steps),
    };
    progress.history.push(record.clone());
    progress.epoch = epoch;
    progress.ema_updates = state.ema.updates();
    let info = &mut state.info;
    info.epochs_done = epoch;
    info.best_epoch = progress.best.map(|b| b.0);
    info.best_holdout_accuracy = progress.best.and_then(|b| b.1.is_finite().then_some(b.1));
    info.finished = epoch == plan.epochs;
    let Some(run) = run else {
        return Ok(record);
    };
    let optimizer_state = state
        .optimizer
        .into_bytes()
        .map_err(|e| Error::Device(format!("cannot serialise the optimiser state: {e}")))?;
    run.write_checkpoint(
        progress,
        &[
            ("model.bpk", weights_bytes(state.model.valid())?),
            ("ema.bpk", weights_bytes(state.ema.model().clone())?),
            ("optimizer.bpk", optimizer_state.to_vec()),
        ],
    )?;
    run.write_metrics(&progress.history)?;
    run.write_info(&state.info)?;
    Ok(record)
}

/// The weights a run evaluates and keeps: the average when enabled, else the current ones.
fn evaluated(state: &TrainState, plan: &Plan) -> Classifier {
    if plan.config.ema_decay > 0.0 {
        state.ema.model().clone()
    } else {
        state.model.valid()
    }
}

/// Top-1 and mean per-class accuracy of `model` on `set`.
pub(crate) fn accuracy(
    model: &Classifier,
    objective: &Objective,
    set: &ImageSet,
    input: &InputSpec,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    let request = Request {
        taps: &[],
        pooling: Pooling::Mean,
        objective: Some(objective),
        batch_size,
    };
    let forward = inference::forward(model, set, input, &request, device, &mut |_, _| {})?;
    let outputs = forward.outputs.unwrap_or_default();
    let k = outputs.len() / set.len().max(1);
    if k == 0 {
        return invalid_setting("classes", 0, "at least 1");
    }
    let scores: Vec<f64> = outputs.iter().map(|&v| f64::from(v)).collect();
    let predictions = crate::probe::metrics::argmax_rows(&scores, k);
    Ok((
        crate::probe::metrics::accuracy(&predictions, &set.labels),
        crate::probe::metrics::mean_per_class_accuracy(&predictions, &set.labels, k),
    ))
}

fn scalar(t: Tensor<1>) -> Result<f64> {
    let v = t
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .map_err(|e| Error::Device(format!("{e:?}")))?;
    Ok(v[0])
}

fn scalar_int(t: Tensor<1, Int>) -> Result<f64> {
    let v = t
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .map_err(|e| Error::Device(format!("{e:?}")))?;
    Ok(v[0] as f64)
}
