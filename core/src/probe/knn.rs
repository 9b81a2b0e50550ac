//! The k-nearest-neighbour probe (section 3.1, Appendix A.2): cosine similarity on
//! L2-normalised features, a vote among the `k` most similar training examples, and `k` chosen
//! by leave-one-out accuracy on the training set.
//!
//! The `k_max` nearest neighbours of every training example (itself excluded) and of every
//! test example are found once; each `k ≤ k_max` is then scored from them, so the whole grid
//! costs one neighbour search. Similarities are computed on the device in blocks of at most
//! [`Compute::chunk_elements`] entries; the running top-`k_max` is kept on the host (and, on a
//! GPU, each block's top-`k_max` is taken on the device first, so little is read back).
//!
//! Votes: [`Vote::Majority`] (each neighbour one vote) or [`Vote::Weighted`] (DINO, Caron et al.
//! 2021: weight `exp(sim / T)`, `T = 0.07`). A tie between classes is broken by
//! [`TieBreak::Nearest`] (the tied class of the most similar neighbour; the default) or
//! [`TieBreak::SmallestLabel`] (scikit-learn's rule). A feature vector of zero norm has
//! similarity 0 to everything.

use serde::{Deserialize, Serialize};

use crate::analysis::products;
use crate::compute::{Compute, NoPause, Pacer};
use crate::error::{Error, Result};
use crate::features::Layer;
use crate::probe::metrics::{Measure, accuracy, mean_per_class_accuracy};

/// How neighbours vote.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Vote {
    /// One vote per neighbour.
    Majority,
    /// A vote of `exp(similarity / temperature)` per neighbour (DINO's weighted kNN).
    Weighted {
        /// The temperature `T`. DINO uses 0.07.
        temperature: f64,
    },
}

/// How a tie between classes is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TieBreak {
    /// The tied class that holds the most similar of the neighbours.
    #[default]
    Nearest,
    /// The smallest tied class label (scikit-learn's `KNeighborsClassifier`).
    SmallestLabel,
}

/// Settings of the kNN probe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KnnConfig {
    /// The largest `k` of the grid; every `k` in `1..=k_max` is tried. Default 50.
    pub k_max: usize,
    /// The vote. Default majority.
    pub vote: Vote,
    /// The tie-break. Default nearest.
    pub tie_break: TieBreak,
    /// The leave-one-out accuracy `k` is chosen by (the target's measure). Default top-1.
    #[serde(default)]
    pub select_by: Measure,
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self {
            k_max: 50,
            vote: Vote::Majority,
            tie_break: TieBreak::Nearest,
            select_by: Measure::Top1,
        }
    }
}

impl KnnConfig {
    /// Refuses `k_max = 0` and a non-positive temperature.
    pub fn validate(&self) -> Result<()> {
        if self.k_max == 0 {
            return Err(Error::InvalidSetting {
                name: "k_max",
                value: "0".into(),
                allowed: "at least 1".into(),
            });
        }
        if let Vote::Weighted { temperature } = self.vote
            && !(temperature.is_finite() && temperature > 0.0)
        {
            return Err(Error::InvalidSetting {
                name: "kNN temperature",
                value: temperature.to_string(),
                allowed: "a finite number > 0".into(),
            });
        }
        Ok(())
    }
}

/// Leave-one-out accuracy of one `k`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// `k`.
    pub k: usize,
    /// Leave-one-out accuracy on the training set.
    pub accuracy: f64,
}

/// The result of the kNN probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnnResult {
    /// The chosen `k` (the smallest among equal leave-one-out accuracies).
    pub k: usize,
    /// Test top-1 accuracy, a fraction.
    pub accuracy: f64,
    /// Test mean per-class accuracy, a fraction.
    pub mean_per_class_accuracy: f64,
    /// Leave-one-out accuracy at the chosen `k`.
    pub leave_one_out_accuracy: f64,
    /// Leave-one-out accuracy of every `k` on the grid.
    pub grid: Vec<GridPoint>,
    /// The settings used (`k_max` capped at the training set size − 1).
    pub config: KnnConfig,
    /// Number of classes.
    pub classes: usize,
    /// Training examples.
    pub train_examples: usize,
    /// Test examples.
    pub test_examples: usize,
}

/// The `k` most similar reference rows of every query row, most similar first.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    /// Neighbours per query.
    pub k: usize,
    /// Reference indices, `[queries * k]`.
    pub indices: Vec<usize>,
    /// Cosine similarities, `[queries * k]`.
    pub similarities: Vec<f64>,
}

/// L2-normalised rows (zero rows stay zero), as `f64`.
fn normalized_rows(layer: &Layer) -> Vec<f64> {
    let p = layer.cols;
    let mut v: Vec<f64> = match &layer.data {
        crate::features::FloatData::F32(x) => x.iter().map(|&a| f64::from(a)).collect(),
        crate::features::FloatData::F64(x) => x.clone(),
    };
    for row in v.chunks_mut(p) {
        let norm = row.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|a| *a /= norm);
        }
    }
    v
}

/// A bounded list of the best `(similarity, index)` pairs, most similar first; equal
/// similarities keep the lower index first.
struct TopK {
    k: usize,
    items: Vec<(f64, usize)>,
}

impl TopK {
    fn push(&mut self, sim: f64, index: usize) {
        if self.items.len() == self.k {
            let (worst, worst_index) = self.items[self.k - 1];
            if sim < worst || (sim == worst && index > worst_index) {
                return;
            }
            self.items.pop();
        }
        let at = self.items.partition_point(|&(s, i)| s > sim || (s == sim && i < index));
        self.items.insert(at, (sim, index));
    }
}

/// Finds the `k` most similar rows of `reference` for every row of `queries` (cosine
/// similarity). With `exclude_self`, `queries` must be `reference` and each row skips itself.
pub async fn nearest_neighbors(
    compute: &Compute,
    queries: &Layer,
    reference: &Layer,
    k: usize,
    exclude_self: bool,
) -> Result<Neighbors> {
    nearest_neighbors_paced(compute, queries, reference, k, exclude_self, &NoPause).await
}

/// [`nearest_neighbors`], pausing with `pacer` after each block of queries × reference rows
/// (blocks hold at most `compute.chunk_elements` similarities).
pub async fn nearest_neighbors_paced(
    compute: &Compute,
    queries: &Layer,
    reference: &Layer,
    k: usize,
    exclude_self: bool,
    pacer: &impl Pacer,
) -> Result<Neighbors> {
    super::check_same_width(queries, reference)?;
    let available = reference.rows - usize::from(exclude_self);
    let k = k.min(available);
    let p = queries.cols;
    let q = Layer::from_f64("queries", queries.rows, p, normalized_rows(queries));
    let r = Layer::from_f64("reference", reference.rows, p, normalized_rows(reference));
    // Blocks of queries × reference rows with at most chunk_elements similarities (and inputs).
    let side = ((compute.chunk_elements as f64).sqrt() as usize).max(1);
    let q_chunks = compute.row_chunks(q.rows, p.max(side));
    let r_chunks = compute.row_chunks(r.rows, p.max(side));
    let mut tops: Vec<TopK> = (0..q.rows)
        .map(|_| TopK {
            k,
            items: Vec::with_capacity(k + 1),
        })
        .collect();
    let device_topk = !compute.is_cpu();
    let r_tensors: Vec<_> = r_chunks
        .iter()
        .map(|c| compute.upload_rows(&r, c.start, c.end))
        .collect();
    let blocks = q_chunks.len() * r_chunks.len();
    let mut done = 0;
    for qc in &q_chunks {
        let qt = compute.upload_rows(&q, qc.start, qc.end);
        for (rc, rt) in r_chunks.iter().zip(&r_tensors) {
            if done > 0 {
                pacer.pause(done, blocks).await?;
            }
            done += 1;
            let sims = products::product_nt(compute, qt.clone(), rt.clone()).await?; // [q rows, r rows]
            let width = rc.end - rc.start;
            let take = (k + usize::from(exclude_self)).min(width);
            if device_topk && take < width {
                let (values, indices) = sims.topk_with_indices(take, 1);
                let values = compute.read(values).await?;
                let indices = compute.read(indices.float()).await?;
                for (row, (vs, is)) in values.chunks(take).zip(indices.chunks(take)).enumerate() {
                    let qi = qc.start + row;
                    for (&s, &i) in vs.iter().zip(is) {
                        let ri = rc.start + i as usize;
                        if !(exclude_self && ri == qi) {
                            tops[qi].push(s, ri);
                        }
                    }
                }
            } else {
                let values = compute.read(sims).await?;
                for (row, vs) in values.chunks(width).enumerate() {
                    let qi = qc.start + row;
                    for (j, &s) in vs.iter().enumerate() {
                        let ri = rc.start + j;
                        if !(exclude_self && ri == qi) {
                            tops[qi].push(s, ri);
                        }
                    }
                }
            }
        }
    }
    let mut indices = Vec::with_capacity(q.rows * k);
    let mut similarities = Vec::with_capacity(q.rows * k);
    for top in tops {
        for (s, i) in top.items {
            similarities.push(s);
            indices.push(i);
        }
    }
    Ok(Neighbors {
        k,
        indices,
        similarities,
    })
}

/// Predictions for every `k` in `1..=neighbors.k`: `out[k - 1][query]`.
pub fn predict_all_k(neighbors: &Neighbors, labels: &[usize], classes: usize, config: &KnnConfig) -> Vec<Vec<usize>> {
    let k_max = neighbors.k;
    let queries = neighbors.indices.len().checked_div(k_max).unwrap_or(0);
    let mut out = vec![Vec::with_capacity(queries); k_max];
    let mut score = vec![0f64; classes];
    let mut first_rank = vec![usize::MAX; classes];
    for q in 0..queries {
        score.iter_mut().for_each(|s| *s = 0.0);
        first_rank.iter_mut().for_each(|r| *r = usize::MAX);
        for (rank, predictions) in out.iter_mut().enumerate() {
            let i = neighbors.indices[q * k_max + rank];
            let class = labels[i];
            score[class] += match config.vote {
                Vote::Majority => 1.0,
                Vote::Weighted { temperature } => (neighbors.similarities[q * k_max + rank] / temperature).exp(),
            };
            first_rank[class] = first_rank[class].min(rank);
            let best = (0..classes)
                .filter(|&c| first_rank[c] != usize::MAX)
                .max_by(|&a, &b| {
                    score[a].total_cmp(&score[b]).then_with(|| match config.tie_break {
                        // Higher is better for max_by: the nearer class, or the smaller label.
                        TieBreak::Nearest => first_rank[b].cmp(&first_rank[a]),
                        TieBreak::SmallestLabel => b.cmp(&a),
                    })
                })
                .expect("at least one neighbour voted");
            predictions.push(best);
        }
    }
    out
}

/// Runs the kNN protocol: leave-one-out accuracy on the training set for every `k ≤ k_max`,
/// the best `k` (smallest among ties), then test accuracy at that `k`.
pub async fn knn_probe(
    compute: &Compute,
    train: &Layer,
    train_labels: &[usize],
    test: &Layer,
    test_labels: &[usize],
    config: &KnnConfig,
) -> Result<KnnResult> {
    knn_probe_paced(compute, train, train_labels, test, test_labels, config, &NoPause).await
}

/// [`knn_probe`], pausing with `pacer` between blocks of the similarity computations.
pub async fn knn_probe_paced(
    compute: &Compute,
    train: &Layer,
    train_labels: &[usize],
    test: &Layer,
    test_labels: &[usize],
    config: &KnnConfig,
    pacer: &impl Pacer,
) -> Result<KnnResult> {
    config.validate()?;
    let classes = super::check_probe_inputs(train, train_labels, test, test_labels)?;
    if train.rows < 2 {
        return Err(Error::TooFewExamples {
            analysis: "kNN leave-one-out",
            needed: 2,
            found: train.rows,
        });
    }
    for layer in [train, test] {
        // Cosine similarity needs a direction: features that are all zero have none (a single
        // zero row is kept, with similarity 0 to everything).
        layer.unit_scale("the cosine similarity of the kNN probe")?;
    }
    let k_max = config.k_max.min(train.rows - 1);
    let config = KnnConfig { k_max, ..*config };
    let loo = nearest_neighbors_paced(compute, train, train, k_max, true, pacer).await?;
    let grid: Vec<GridPoint> = predict_all_k(&loo, train_labels, classes, &config)
        .iter()
        .enumerate()
        .map(|(i, predictions)| GridPoint {
            k: i + 1,
            accuracy: config.select_by.of(predictions, train_labels, classes),
        })
        .collect();
    let best = grid
        .iter()
        .fold(grid[0], |b, g| if g.accuracy > b.accuracy { *g } else { b });
    let neighbors = nearest_neighbors_paced(compute, test, train, best.k, false, pacer).await?;
    let predictions = predict_all_k(&neighbors, train_labels, classes, &config)
        .pop()
        .unwrap_or_default();
    Ok(KnnResult {
        k: best.k,
        accuracy: accuracy(&predictions, test_labels),
        mean_per_class_accuracy: mean_per_class_accuracy(&predictions, test_labels, classes),
        leave_one_out_accuracy: best.accuracy,
        grid,
        config,
        classes,
        train_examples: train.rows,
        test_examples: test.rows,
    })
}
