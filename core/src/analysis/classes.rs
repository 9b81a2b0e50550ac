//! A partition of examples into classes, and per-class means on the device.

use burn::tensor::{Int, Tensor, TensorData};

use crate::compute::Compute;
use crate::error::{Error, Result};

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
        let num_classes = num_classes.unwrap_or(max + 1);
        if let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &l)| l >= num_classes) {
            return Err(Error::LabelOutOfRange {
                label: label as i64,
                index,
                num_classes,
            });
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

    /// Labels as a device tensor.
    ///
    /// # Shapes
    /// - returns `[N]`
    pub(crate) fn label_tensor(&self, compute: &Compute) -> Tensor<1, Int> {
        let labels: Vec<i64> = self.labels.iter().map(|&l| l as i64).collect();
        Tensor::from_data(TensorData::new(labels, [self.labels.len()]), &compute.device)
    }

    /// Per-class means of the rows of `x`, in `O(N·P)`: examples are gathered by class once,
    /// then each class's contiguous block is summed.
    ///
    /// # Shapes
    /// - `x`: `[N, P]`
    /// - returns `[K, P]`
    pub(crate) fn means(&self, compute: &Compute, x: Tensor<2>) -> Tensor<2> {
        let order: Vec<i64> = self.order.iter().map(|&i| i as i64).collect();
        let order = Tensor::<1, Int>::from_data(TensorData::new(order, [self.order.len()]), &compute.device);
        let sorted = x.select(0, order); // [N, P], grouped by class
        let means: Vec<Tensor<2>> = (0..self.num_classes)
            .map(|k| {
                let (start, end) = (self.offsets[k], self.offsets[k + 1]);
                sorted
                    .clone()
                    .slice(start..end)
                    .sum_dim(0)
                    .div_scalar(self.counts[k] as f64) // [1, P]
            })
            .collect();
        Tensor::cat(means, 0)
    }

    /// Mean of a per-example value within each class, from host values.
    pub(crate) fn class_means_of(&self, values: &[f64]) -> Vec<f64> {
        let mut sums = vec![0.0f64; self.num_classes];
        for (&l, &v) in self.labels.iter().zip(values) {
            sums[l] += v;
        }
        sums.iter().zip(&self.counts).map(|(s, &c)| s / c as f64).collect()
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
    fn class_means_match_host_means() {
        let compute = Compute::cpu();
        let classes = Classes::new(vec![1, 0, 1, 2, 0], None).unwrap();
        let x = compute.matrix(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 5, 2);
        let means = pollster::block_on(compute.read(classes.means(&compute, x))).unwrap();
        assert_eq!(means, vec![6.0, 7.0, 3.0, 4.0, 7.0, 8.0]);
    }
}
