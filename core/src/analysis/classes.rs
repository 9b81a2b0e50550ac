//! A partition of examples into classes, and per-class means on the device.

use burn::tensor::{Int, Tensor, TensorData};

use crate::compute::Compute;
use crate::error::{Error, Result};
use crate::features::Layer;

/// A run of consecutive classes processed in one upload.
#[derive(Debug, Clone)]
pub(crate) struct ClassGroup {
    /// The classes.
    pub classes: std::ops::Range<usize>,
    /// Their examples, as positions in the class-sorted order.
    pub examples: std::ops::Range<usize>,
}

/// Class labels checked against the number of classes, with examples grouped by class.
#[derive(Debug, Clone)]
pub struct Classes {
    labels: Vec<usize>,
    num_classes: usize,
    counts: Vec<usize>,
    /// Example indices sorted by class (stable).
    order: Vec<usize>,
    /// `order[offsets[k]..offsets[k + 1]]` are the examples of class `k`.
    offsets: Vec<usize>,
}

impl Classes {
    /// Checks `labels` against `0..num_classes` (default: one more than the largest label).
    ///
    /// Errors on labels out of range, on classes without examples and on fewer than two classes.
    pub fn new(labels: Vec<usize>, num_classes: Option<usize>) -> Result<Self> {
        if labels.is_empty() {
            return Err(Error::TooFewExamples {
                analysis: "class analysis",
                needed: 1,
                found: 0,
            });
        }
        let max = labels.iter().copied().max().unwrap_or(0);
        let num_classes = num_classes.unwrap_or(max.saturating_add(1));
        if let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &l)| l >= num_classes) {
            return Err(Error::LabelOutOfRange {
                label: i64::try_from(label).unwrap_or(i64::MAX),
                index,
                num_classes,
            });
        }
        if num_classes > labels.len() {
            // More classes than examples: some class is empty. Found without a table of
            // `num_classes` counts, which an absurd label or class count could not afford.
            let mut present = labels.clone();
            present.sort_unstable();
            present.dedup();
            let class = present
                .iter()
                .enumerate()
                .find(|&(k, &l)| k != l)
                .map_or(present.len(), |(k, _)| k);
            return Err(Error::EmptyClass { class, num_classes });
        }
        let mut counts = vec![0usize; num_classes];
        for &l in &labels {
            counts[l] += 1;
        }
        if num_classes < 2 {
            return Err(Error::TooFewClasses {
                analysis: "class analysis",
                needed: 2,
                found: num_classes,
            });
        }
        if let Some(class) = counts.iter().position(|&c| c == 0) {
            return Err(Error::EmptyClass { class, num_classes });
        }
        let mut offsets = vec![0usize; num_classes + 1];
        for k in 0..num_classes {
            offsets[k + 1] = offsets[k] + counts[k];
        }
        let mut next = offsets.clone();
        let mut order = vec![0usize; labels.len()];
        for (i, &l) in labels.iter().enumerate() {
            order[next[l]] = i;
            next[l] += 1;
        }
        Ok(Self {
            labels,
            num_classes,
            counts,
            order,
            offsets,
        })
    }

    /// Number of classes `K`.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Number of examples `N`.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples (never true for a constructed value).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Examples per class.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// The label of each example.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Consecutive ranges of classes whose examples fit together in one upload of a layer with
    /// `cols` features (a class larger than the budget forms a group of its own).
    pub(crate) fn groups(&self, compute: &Compute, cols: usize) -> Vec<ClassGroup> {
        let budget_rows = (compute.chunk_elements / cols.max(1)).max(1);
        let mut groups = Vec::new();
        let mut first = 0;
        while first < self.num_classes {
            let mut last = first + 1;
            while last < self.num_classes && self.offsets[last + 1] - self.offsets[first] <= budget_rows {
                last += 1;
            }
            groups.push(ClassGroup {
                classes: first..last,
                examples: self.offsets[first]..self.offsets[last],
            });
            first = last;
        }
        groups
    }

    /// Uploads the examples of a group of classes, sorted by class, times `factor`
    /// ([`Compute::upload_rows_scaled`]).
    ///
    /// # Shapes
    /// - returns `[group examples, layer.cols]`
    pub(crate) fn upload_group(&self, compute: &Compute, layer: &Layer, group: &ClassGroup, factor: f64) -> Tensor<2> {
        let rows = layer.select_rows(&self.order[group.examples.clone()]);
        compute.upload_rows_scaled(&rows, 0, rows.rows, factor)
    }

    /// The example (index into the layer) at position `i` of a group's upload.
    pub(crate) fn example_at(&self, group: &ClassGroup, i: usize) -> usize {
        self.order[group.examples.start + i]
    }

    /// Per-class means of an uploaded group, in `O(n·P)`: each class's contiguous block is summed.
    ///
    /// # Shapes
    /// - `z`: `[group examples, P]`, sorted by class
    /// - returns `[group classes, P]`
    pub(crate) fn group_means(&self, group: &ClassGroup, z: Tensor<2>) -> Tensor<2> {
        let base = group.examples.start;
        let means: Vec<Tensor<2>> = group
            .classes
            .clone()
            .map(|k| {
                let (start, end) = (self.offsets[k] - base, self.offsets[k + 1] - base);
                z.clone().slice(start..end).sum_dim(0).div_scalar(self.counts[k] as f64) // [1, P]
            })
            .collect();
        Tensor::cat(means, 0)
    }

    /// Each row of an uploaded group minus its class mean.
    ///
    /// # Shapes
    /// - `z`: `[group examples, P]`, `means`: `[group classes, P]` → `[group examples, P]`
    pub(crate) fn group_residuals(
        &self,
        compute: &Compute,
        group: &ClassGroup,
        z: Tensor<2>,
        means: Tensor<2>,
    ) -> Tensor<2> {
        let local: Vec<i64> = group
            .classes
            .clone()
            .flat_map(|k| std::iter::repeat_n((k - group.classes.start) as i64, self.counts[k]))
            .collect();
        let n = local.len();
        let local = Tensor::<1, Int>::from_data(TensorData::new(local, [n]), &compute.device);
        z - means.select(0, local)
    }

    /// Per-class means of a whole layer, streamed group by group; row-major `[K, P]` on the host.
    pub(crate) async fn layer_means(&self, compute: &Compute, layer: &Layer, factor: f64) -> Result<Vec<f64>> {
        let mut means = Vec::with_capacity(self.num_classes * layer.cols);
        for group in self.groups(compute, layer.cols) {
            let z = self.upload_group(compute, layer, &group, factor);
            means.extend(compute.read(self.group_means(&group, z)).await?);
        }
        Ok(means)
    }

    /// Class means minus the global mean (the count-weighted average of the class means, i.e.
    /// the mean over all examples), row-major `[K, P]`.
    pub(crate) fn centered_means(&self, mu: &[f64], p: usize) -> Vec<f64> {
        let n = self.labels.len() as f64;
        let mut global = vec![0.0f64; p];
        for (row, &count) in mu.chunks_exact(p).zip(&self.counts) {
            for (g, v) in global.iter_mut().zip(row) {
                *g += v * count as f64 / n;
            }
        }
        mu.iter().enumerate().map(|(i, v)| v - global[i % p]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_labels() {
        assert!(matches!(
            Classes::new(vec![0, 1, 5], Some(3)),
            Err(Error::LabelOutOfRange { label: 5, index: 2, .. })
        ));
        assert!(matches!(
            Classes::new(vec![0, 2, 2], None),
            Err(Error::EmptyClass { class: 1, .. })
        ));
        assert!(matches!(
            Classes::new(vec![0, 0, 0], None),
            Err(Error::TooFewClasses { found: 1, .. })
        ));
        assert!(matches!(Classes::new(vec![], None), Err(Error::TooFewExamples { .. })));
        let c = Classes::new(vec![1, 0, 1, 2], None).unwrap();
        assert_eq!(c.counts(), &[1, 2, 1]);
        assert_eq!(c.order, vec![1, 0, 2, 3]);
    }

    #[test]
    fn class_means_match_host_means_in_any_grouping() {
        let classes = Classes::new(vec![1, 0, 1, 2, 0], None).unwrap();
        let layer = Layer::from_f64("x", 5, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        for chunk in [1, 2, 4, 100] {
            let compute = Compute::cpu().with_chunk_elements(chunk);
            let means = pollster::block_on(classes.layer_means(&compute, &layer, 1.0)).unwrap();
            assert_eq!(means, vec![6.0, 7.0, 3.0, 4.0, 7.0, 8.0], "chunk {chunk}");
        }
        let groups = classes.groups(&Compute::cpu().with_chunk_elements(6), 2);
        assert_eq!(
            groups.iter().map(|g| g.classes.clone()).collect::<Vec<_>>(),
            vec![0..1, 1..3]
        );
    }
}
