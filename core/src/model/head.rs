//! The final (classification) layer every objective shares.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// Standard deviation of the final layer's initial weights (Appendix A.1: `N(0, 0.01²)`).
pub const HEAD_INIT_STD: f64 = 0.01;

/// Configuration of the final layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadConfig {
    /// Width of the penultimate layer (input features).
    pub features: usize,
    /// Number of classes (outputs).
    pub classes: usize,
}

impl HeadConfig {
    /// Weights drawn from `N(0, 0.01²)`, bias 0.
    pub fn init(&self, device: &Device) -> Head {
        let linear = LinearConfig::new(self.features, self.classes)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: HEAD_INIT_STD,
            })
            .with_bias(false)
            .init(device);
        let bias = Param::from_tensor(Tensor::zeros([self.classes], device));
        Head {
            linear: Linear {
                bias: Some(bias),
                ..linear
            },
        }
    }
}

/// The final layer `z = x W + b`, with `W` stored `[features, classes]` (one column per class).
#[derive(Module, Debug)]
pub struct Head {
    /// The linear map.
    pub linear: Linear,
}

impl Head {
    /// A head with the given weight (`[features, classes]`) and bias (`[classes]`), e.g. loaded
    /// from a checkpoint or made for a test.
    pub fn from_tensors(weight: Tensor<2>, bias: Tensor<1>) -> Self {
        Head {
            linear: Linear {
                weight: Param::from_tensor(weight),
                bias: Some(Param::from_tensor(bias)),
            },
        }
    }

    /// `x W + b`.
    ///
    /// # Shapes
    /// - `features`: `[batch, features]`
    /// - output: `[batch, classes]`
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.linear.forward(features)
    }

    /// `W`, `[features, classes]`.
    pub fn weight(&self) -> Tensor<2> {
        self.linear.weight.val()
    }

    /// `b`, `[classes]`.
    pub fn bias(&self) -> Tensor<1> {
        match &self.linear.bias {
            Some(bias) => bias.val(),
            None => Tensor::zeros([self.classes()], &self.linear.weight.device()),
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.linear.weight.shape().dims::<2>()[1]
    }

    /// Width of the input features.
    pub fn features(&self) -> usize {
        self.linear.weight.shape().dims::<2>()[0]
    }
}
