//! Class separation R² streamed batch by batch (Kornblith et al. 2021, eq. 11–12): the same
//! quantity as [`crate::analysis::separation::class_separation`], for layers too large to hold
//! (every spatial position of a block's output flattened: 256 × 56 × 56 values per image of
//! ResNet-50's first stage), in `O(N·P)` time and `O(P)` memory.
//!
//! Examples arrive sorted by class. Within a class, each batch's segment contributes its mean
//! and its sum of squared residuals, merged into the class's by Chan et al.'s parallel update;
//! when a class is complete its mean joins a running (Welford) mean and spread of the class
//! means. With `z` the L²-normalised embedding (cosine) or the embedding itself (squared
//! Euclidean), `W = mean_k mean_{i∈k} ‖z_i − μ_k‖²`, `B = mean_k ‖μ_k − mean_j μ_j‖²` and
//! `R² = B / (W + B)`; each example's pair with itself counts, as in eq. 11.

use burn::tensor::Tensor;

use crate::analysis::separation::{Distance, Separation};
use crate::compute::Compute;
use crate::error::{Error, Result};

/// The running sums of the class being read.
#[derive(Debug, Clone)]
struct OpenClass {
    n: usize,
    mean: Vec<f64>,
    m2: f64,
}

/// Streaming class separation of one layer under one distance.
#[derive(Debug, Clone)]
pub struct StreamingSeparation {
    distance: Distance,
    counts: Vec<usize>,
    width: usize,
    /// Subtracted from every embedding first (the mean embedding, for
    /// [`Distance::CosineMeanSubtracted`]).
    centre: Option<Vec<f64>>,
    class: usize,
    open: Option<OpenClass>,
    /// Classes closed so far, their mean of means and its sum of squared deviations.
    closed: usize,
    mean_of_means: Vec<f64>,
    m2_means: f64,
    within_sum: f64,
    /// Examples seen so far (for messages).
    seen: usize,
    name: String,
}

impl StreamingSeparation {
    /// R² of the layer `name`, `width` values per example, whose examples will arrive sorted by
    /// class with `counts[k]` examples of class `k` (every class at least one); `centre` is
    /// subtracted from every embedding first (required for the mean-subtracted cosine).
    pub fn new(
        name: impl Into<String>,
        distance: Distance,
        counts: &[usize],
        width: usize,
        centre: Option<Vec<f64>>,
    ) -> Result<Self> {
        if counts.len() < 2 || counts.contains(&0) {
            return Err(Error::TooFewClasses {
                analysis: "class separation",
                needed: 2,
                found: counts.iter().filter(|&&c| c > 0).count(),
            });
        }
        if distance == Distance::CosineMeanSubtracted && centre.is_none() {
            return Err(Error::invalid_setting(
                "centre",
                "none",
                "the mean embedding, for the mean-subtracted cosine distance",
            ));
        }
        Ok(Self {
            distance,
            counts: counts.to_vec(),
            width,
            centre,
            class: 0,
            open: None,
            closed: 0,
            mean_of_means: vec![0.0; width],
            m2_means: 0.0,
            within_sum: 0.0,
            seen: 0,
            name: name.into(),
        })
    }

    /// Adds the next `rows` (`[b, width]`, on the device), the next examples in class order.
    ///
    /// # Shapes
    /// - `rows`: `[b, width]`
    pub async fn add(&mut self, compute: &Compute, rows: Tensor<2>) -> Result<()> {
        let [b, p] = rows.dims();
        if p != self.width {
            return Err(Error::degenerate(
                &self.name,
                format!("{p} values per example, expected {}", self.width),
            ));
        }
        let rows = match &self.centre {
            Some(c) => rows - compute.matrix(c.clone(), 1, p),
            None => rows,
        };
        let rows = match self.distance {
            Distance::SquaredEuclidean => rows,
            _ => self.normalize(compute, rows).await?,
        };
        let mut start = 0;
        while start < b {
            let Some(&count) = self.counts.get(self.class) else {
                return Err(Error::degenerate(&self.name, "more examples than the class counts say"));
            };
            let have = self.open.as_ref().map_or(0, |o| o.n);
            let take = (count - have).min(b - start);
            let segment = rows.clone().slice(start..start + take); // [take, P]
            let mean = segment.clone().mean_dim(0); // [1, P]
            let m2 = compute.scalar((segment - mean.clone()).square().sum()).await?;
            let mean = compute.read(mean).await?;
            self.merge(take, mean, m2);
            if self.open.as_ref().is_some_and(|o| o.n == count) {
                self.close();
            }
            start += take;
        }
        self.seen += b;
        Ok(())
    }

    /// L²-normalises each row; a row of zeros has no direction and is an error naming it.
    async fn normalize(&self, compute: &Compute, rows: Tensor<2>) -> Result<Tensor<2>> {
        let norms = rows.clone().square().sum_dim(1).sqrt(); // [b, 1]
        let host = compute.read(norms.clone()).await?;
        if let Some(i) = host.iter().position(|&v| v.is_nan() || v <= 0.0) {
            return Err(Error::degenerate(
                &self.name,
                format!(
                    "example {} (in class order) has an all-zero embedding, for which cosine distance is undefined",
                    self.seen + i
                ),
            ));
        }
        Ok(rows / norms)
    }

    /// Merges a segment of `n` rows with mean `mean` and residual sum of squares `m2` into the
    /// open class (Chan, Golub & LeVeque 1979).
    fn merge(&mut self, n: usize, mean: Vec<f64>, m2: f64) {
        match self.open.as_mut() {
            None => self.open = Some(OpenClass { n, mean, m2 }),
            Some(open) => {
                let total = (open.n + n) as f64;
                let weight = n as f64 / total;
                let mut delta_sq = 0.0;
                for (a, b) in open.mean.iter_mut().zip(&mean) {
                    let delta = b - *a;
                    delta_sq += delta * delta;
                    *a += delta * weight;
                }
                open.m2 += m2 + delta_sq * open.n as f64 * n as f64 / total;
                open.n += n;
            }
        }
    }

    /// Closes the open class: its within-class spread, and its mean into the running mean and
    /// spread of class means (Welford).
    fn close(&mut self) {
        let open = self.open.take().expect("an open class");
        self.within_sum += open.m2 / open.n as f64;
        self.closed += 1;
        let c = self.closed as f64;
        let mut delta_sq = 0.0;
        for (a, m) in self.mean_of_means.iter_mut().zip(&open.mean) {
            let delta = m - *a;
            *a += delta / c;
            delta_sq += delta * (m - *a);
        }
        self.m2_means += delta_sq;
        self.class += 1;
    }

    /// R² once every class is complete.
    pub fn finish(self) -> Result<Separation> {
        if self.closed != self.counts.len() {
            return Err(Error::degenerate(
                &self.name,
                format!("{} of {} classes arrived complete", self.closed, self.counts.len()),
            ));
        }
        let k = self.counts.len() as f64;
        let within = self.within_sum / k;
        let between = self.m2_means / k;
        let total = within + between;
        if total.is_nan() || total <= 0.0 {
            return Err(Error::degenerate(
                &self.name,
                "every embedding is the same, so the total distance is zero and R² is undefined",
            ));
        }
        // Cosine distance is half the squared distance of normalised embeddings.
        let scale = match self.distance {
            Distance::SquaredEuclidean => 2.0,
            _ => 1.0,
        };
        Ok(Separation {
            distance: self.distance,
            r2: (between / total).clamp(0.0, 1.0),
            within: scale * within,
            total: scale * total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::classes::Classes;
    use crate::analysis::separation::class_separation;
    use crate::compute::Precision;
    use crate::features::Layer;
    use crate::rng::SplitMix64;

    #[test]
    fn streaming_equals_the_whole_layer_for_every_distance_and_batching() {
        let compute = Compute::cpu().with_precision(Precision::F64);
        // Unequal classes, already in class order.
        let counts = [5usize, 9, 3, 7];
        let p = 6;
        let mut rng = SplitMix64::new(3);
        let mut labels = Vec::new();
        let mut values = Vec::new();
        for (k, &n) in counts.iter().enumerate() {
            for _ in 0..n {
                labels.push(k);
                values.extend((0..p).map(|j| (k as f64) * 0.7 * ((j + k) % 3) as f64 + rng.normal()));
            }
        }
        let n = labels.len();
        let layer = Layer::from_f64("x", n, p, values.clone());
        let classes = Classes::new(labels, None).unwrap();
        let mean: Vec<f64> = (0..p)
            .map(|j| (0..n).map(|i| values[i * p + j]).sum::<f64>() / n as f64)
            .collect();
        for distance in Distance::ALL {
            let whole = pollster::block_on(class_separation(&compute, &layer, &classes, distance)).unwrap();
            for batch in [1, 4, 7, 24] {
                let centre = (distance == Distance::CosineMeanSubtracted).then(|| mean.clone());
                let mut s = StreamingSeparation::new("x", distance, &counts, p, centre).unwrap();
                let mut start = 0;
                while start < n {
                    let end = (start + batch).min(n);
                    let rows = compute.matrix(values[start * p..end * p].to_vec(), end - start, p);
                    pollster::block_on(s.add(&compute, rows)).unwrap();
                    start = end;
                }
                let streamed = s.finish().unwrap();
                for (a, b) in [
                    (streamed.r2, whole.r2),
                    (streamed.within, whole.within),
                    (streamed.total, whole.total),
                ] {
                    assert!(
                        (a - b).abs() <= 1e-10 * b.abs().max(1.0),
                        "{distance:?}, batch {batch}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_zero_embedding_and_missing_examples_are_refused() {
        let compute = Compute::cpu().with_precision(Precision::F64);
        let mut s = StreamingSeparation::new("x", Distance::Cosine, &[1, 1], 2, None).unwrap();
        let e = pollster::block_on(s.add(&compute, compute.matrix(vec![1.0, 0.0, 0.0, 0.0], 2, 2))).unwrap_err();
        assert!(e.to_string().contains("example 1"), "{e}");
        let mut s = StreamingSeparation::new("x", Distance::Cosine, &[1, 2], 2, None).unwrap();
        pollster::block_on(s.add(&compute, compute.matrix(vec![1.0, 0.0, 0.0, 1.0], 2, 2))).unwrap();
        assert!(s.finish().is_err());
    }
}
