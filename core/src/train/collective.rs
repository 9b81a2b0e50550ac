//! Data-parallel training across processes (one per machine): every process computes its shard
//! of each step's batch, and the gradients are summed across processes before every process
//! takes the same optimiser step, so the weights stay identical everywhere. The sum goes through
//! a [`Collective`], an existing collective engine behind a small trait: MPI in the command line
//! (`losslens train --nodes N` under `mpirun`; burn 0.22's own distributed operations reduce
//! across the devices of one process only), or threads in one process ([`ThreadCollective`],
//! for tests).
//!
//! Only rank 0 writes the run folder (configuration, checkpoints, metrics, weights); every rank
//! reads the same checkpoint to resume. Batch-norm statistics stay per process, as they are per
//! device with `--gpus` (PyTorch's DDP without SyncBatchNorm).

use std::sync::{Arc, Barrier, Mutex};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::model::Classifier;

/// A group of processes that sum buffers together.
pub trait Collective: std::fmt::Debug {
    /// This process's rank, in `0..size()`.
    fn rank(&self) -> usize;
    /// Processes in the group.
    fn size(&self) -> usize;
    /// Replaces `values` by their element-wise sum over every process of the group. Every
    /// process must call it with a buffer of the same length, else an error (never a hang).
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()>;
}

/// The images `lo..hi` of a batch of `n` that process `rank` of `size` computes.
pub(crate) fn shard_of(n: usize, rank: usize, size: usize) -> (usize, usize) {
    (rank * n / size, (rank + 1) * n / size)
}

/// Sums the gradients `grads` of `model` over the processes of `collective`, with this
/// process's share of the batch's loss and correct count: every process gets the whole batch's
/// gradients, loss and count. The gradients come back on `device`.
pub(crate) fn all_reduce_step(
    grads: GradientsParams,
    model: &Classifier,
    loss: Tensor<1>,
    hits: Tensor<1, Int>,
    collective: &dyn Collective,
    device: &Device,
) -> Result<(GradientsParams, Tensor<1>, Tensor<1, Int>)> {
    struct Gather {
        grads: GradientsParams,
        flat: Vec<f32>,
        parts: Vec<(ParamId, Vec<usize>, usize)>,
        error: Option<Error>,
    }
    impl ModuleVisitor for Gather {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some(g) = self.grads.remove::<D>(param.id) else {
                return;
            };
            let shape = g.dims().to_vec();
            match g.into_data().convert::<f32>().try_to_vec::<f32>() {
                Ok(values) => {
                    self.parts.push((param.id, shape, self.flat.len()));
                    self.flat.extend(values);
                }
                Err(e) => self.error = Some(Error::Device(format!("cannot read a gradient: {e:?}"))),
            }
        }
    }
    let mut gather = Gather {
        grads,
        flat: Vec::new(),
        parts: Vec::new(),
        error: None,
    };
    model.visit(&mut gather);
    if let Some(e) = gather.error {
        return Err(e);
    }
    let loss_value = read_scalar(loss.into_data())?;
    let hits_value = read_scalar(hits.into_data())?;
    let mut flat = gather.flat;
    flat.push(loss_value as f32);
    flat.push(hits_value as f32);
    collective.all_reduce_sum(&mut flat)?;

    struct Scatter<'a> {
        grads: GradientsParams,
        flat: &'a [f32],
        parts: std::collections::HashMap<ParamId, (Vec<usize>, usize)>,
        device: &'a Device,
    }
    impl ModuleVisitor for Scatter<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some((shape, offset)) = self.parts.remove(&param.id) {
                let len: usize = shape.iter().product();
                let data = TensorData::new(self.flat[offset..offset + len].to_vec(), shape);
                self.grads
                    .register::<D>(param.id, Tensor::<D>::from_data(data, self.device));
            }
        }
    }
    let count = flat.len();
    let mut scatter = Scatter {
        grads: gather.grads,
        flat: &flat,
        parts: gather
            .parts
            .into_iter()
            .map(|(id, shape, at)| (id, (shape, at)))
            .collect(),
        device,
    };
    model.visit(&mut scatter);
    let loss = Tensor::<1>::from_data(TensorData::new(vec![flat[count - 2]], [1]), device);
    let hits = Tensor::<1, Int>::from_data(TensorData::new(vec![flat[count - 1].round() as i64], [1]), device);
    Ok((scatter.grads, loss, hits))
}

/// The one value of a `[1]` tensor's data.
fn read_scalar(data: TensorData) -> Result<f64> {
    data.convert::<f64>()
        .try_to_vec::<f64>()
        .ok()
        .and_then(|v| v.first().copied())
        .ok_or_else(|| Error::Device("cannot read a step's loss".into()))
}

/// Processes simulated by threads of one process: `size` handles ([`ThreadCollective::group`]),
/// one per thread, that sum through shared memory. For tests and single-machine checks of
/// the data-parallel code; the sums are in rank order, so they do not depend on thread timing.
#[derive(Debug, Clone)]
pub struct ThreadCollective {
    rank: usize,
    shared: Arc<ThreadShared>,
}

#[derive(Debug)]
struct ThreadShared {
    size: usize,
    barrier: Barrier,
    buffers: Mutex<Vec<Vec<f32>>>,
}

impl ThreadCollective {
    /// One handle per rank of a group of `size`.
    pub fn group(size: usize) -> Vec<ThreadCollective> {
        let shared = Arc::new(ThreadShared {
            size,
            barrier: Barrier::new(size),
            buffers: Mutex::new(vec![Vec::new(); size]),
        });
        (0..size)
            .map(|rank| ThreadCollective {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }
}

impl Collective for ThreadCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        let poisoned = |_| Error::Device("a thread of the collective panicked".into());
        self.shared.buffers.lock().map_err(poisoned)?[self.rank] = values.to_vec();
        self.shared.barrier.wait();
        let result = {
            let buffers = self.shared.buffers.lock().map_err(poisoned)?;
            if buffers.iter().any(|b| b.len() != values.len()) {
                Err(Error::Device(format!(
                    "the processes reduce buffers of different lengths ({:?})",
                    buffers.iter().map(Vec::len).collect::<Vec<_>>()
                )))
            } else {
                for (i, v) in values.iter_mut().enumerate() {
                    *v = buffers.iter().fold(0.0, |sum, b| sum + b[i]);
                }
                Ok(())
            }
        };
        // Nobody writes the next round's buffer before everyone has read this one.
        self.shared.barrier.wait();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order() {
        let parts: Vec<_> = (0..3).map(|r| shard_of(10, r, 3)).collect();
        assert_eq!(parts, [(0, 3), (3, 6), (6, 10)]);
    }

    #[test]
    fn threads_sum_in_rank_order_and_refuse_different_lengths() {
        let group = ThreadCollective::group(3);
        let sums: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let mut v = vec![c.rank() as f32, 1.0];
                        c.all_reduce_sum(&mut v).unwrap();
                        v
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(sums.iter().all(|v| v == &[3.0, 3.0]), "{sums:?}");
        let errors: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let mut v = vec![0.0; 1 + c.rank()];
                        c.all_reduce_sum(&mut v).is_err()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(errors, [true, true, true]);
    }
}
