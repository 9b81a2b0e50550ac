//! The feature extractor of a classifier: a ResNet or Inception v3, behind one interface (taps,
//! batch norms, penultimate features).
//!
//! [`Body`] implements burn's [`Module`] by hand, delegating to the network it holds without a
//! path component of its own (burn's derive for enums would insert the variant's name), so a
//! ResNet's weights keep the paths they had before Inception v3 existed (`body.stem.conv.weight`)
//! and saved runs load unchanged.

use burn::module::{Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor};
use burn::nn::BatchNorm;
use burn::tensor::{Device, Tensor};

use crate::model::ConvDtype;
use crate::model::head::Head;
use crate::model::inception::InceptionV3;
use crate::model::resnet::{Activations, ResNet};

/// A classifier's body.
// Inception v3 is boxed (54 KB of block fields); the ResNet's 680 bytes stay inline.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Body {
    /// ResNet-18/34/50 or the small network.
    ResNet(ResNet),
    /// Inception v3 (boxed: its block fields make it large).
    Inception(Box<InceptionV3>),
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Body::ResNet($m) => $e,
            Body::Inception($m) => $e,
        }
    };
}

macro_rules! each_into {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Body::ResNet($m) => Body::ResNet($e),
            Body::Inception(boxed) => Body::Inception(Box::new({
                let $m = *boxed;
                $e
            })),
        }
    };
}

impl Body {
    /// The ResNet, when this is one.
    pub fn resnet(&self) -> Option<&ResNet> {
        match self {
            Body::ResNet(r) => Some(r),
            Body::Inception(_) => None,
        }
    }

    /// Inception v3, when this is it.
    pub fn inception(&self) -> Option<&InceptionV3> {
        match self {
            Body::Inception(i) => Some(i.as_ref()),
            Body::ResNet(_) => None,
        }
    }

    /// Names of the block taps, in network order.
    pub fn block_names(&self) -> Vec<String> {
        each!(self, m => m.block_names())
    }

    /// The smallest input side, in pixels, the body takes in evaluation: 1 for the ResNets
    /// (their stages pad), 75 for Inception v3 ([`crate::model::inception::min_image_size`]).
    pub fn min_image_size(&self) -> usize {
        match self {
            Body::ResNet(_) => 1,
            Body::Inception(_) => crate::model::inception::min_image_size(false),
        }
    }

    /// Every batch norm of the body, in forward order.
    pub fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        each!(self, m => m.batch_norms_mut())
    }

    /// The auxiliary classifier's final layer (Inception v3 with the auxiliary head).
    pub fn aux_head(&self) -> Option<&Head> {
        match self {
            Body::Inception(i) => i.aux_logits.as_ref().map(|aux| &aux.fc),
            Body::ResNet(_) => None,
        }
    }

    /// The pooled penultimate features.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, features]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_taps(images, |_| false).penultimate
    }

    /// The penultimate features plus the output of every block whose name `tap` accepts.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - see [`Activations`] and [`crate::model::ModelConfig::tap_shapes`]
    pub fn forward_taps(&self, images: Tensor<4>, tap: impl Fn(&str) -> bool) -> Activations {
        self.forward_taps_in(images, tap, None)
    }

    /// [`forward_taps`](Self::forward_taps) with the convolutions in `dtype` (mixed precision:
    /// [`ConvDtype`]).
    pub fn forward_taps_in(&self, images: Tensor<4>, tap: impl Fn(&str) -> bool, dtype: ConvDtype) -> Activations {
        match self {
            Body::ResNet(r) => r.forward_taps_in(images, tap, dtype),
            Body::Inception(i) => i.forward_taps_in(images, tap, dtype, false).0,
        }
    }

    /// What training reads: the penultimate features and, where the body has an auxiliary
    /// classifier, its features (the input of [`aux_head`](Self::aux_head)).
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, features]` and `[batch, aux features]`
    pub fn forward_train(&self, images: Tensor<4>, dtype: ConvDtype) -> (Tensor<2>, Option<Tensor<2>>) {
        match self {
            Body::ResNet(r) => (r.forward_taps_in(images, |_| false, dtype).penultimate, None),
            Body::Inception(i) => {
                let (acts, aux) = i.forward_taps_in(images, |_| false, dtype, true);
                (acts.penultimate, aux)
            }
        }
    }
}

impl Module for Body {
    fn collect_devices(&self, devices: Devices) -> Devices {
        each!(self, m => m.collect_devices(devices))
    }

    fn fork(self, device: &Device) -> Self {
        each_into!(self, m => m.fork(device))
    }

    fn to_device(self, device: &Device) -> Self {
        each_into!(self, m => m.to_device(device))
    }

    fn train(self) -> Self {
        each_into!(self, m => m.train())
    }

    fn valid(&self) -> Self {
        match self {
            Body::ResNet(m) => Body::ResNet(m.valid()),
            Body::Inception(m) => Body::Inception(Box::new(m.valid())),
        }
    }

    fn materialize(self) -> Self {
        each_into!(self, m => m.materialize())
    }

    fn visit<Visitor: ModuleVisitor>(&self, visitor: &mut Visitor) {
        each!(self, m => m.visit(visitor))
    }

    fn map<Mapper: ModuleMapper>(self, mapper: &mut Mapper) -> Self {
        each_into!(self, m => m.map(mapper))
    }
}

impl ModuleDisplayDefault for Body {
    fn content(&self, content: Content) -> Option<Content> {
        each!(self, m => m.content(content))
    }
}

impl ModuleDisplay for Body {}

impl std::fmt::Display for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        each!(self, m => std::fmt::Display::fmt(m, f))
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::{Device, Tensor};

    use crate::model::{Architecture, ModelConfig, Stem};

    /// The record path of every parameter, as burn's record collector joins them.
    fn paths<M: Module>(module: &M) -> Vec<String> {
        struct Paths {
            path: Vec<String>,
            all: Vec<String>,
        }
        impl ModuleVisitor for Paths {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
                self.all.push(self.path.join("."));
            }
        }
        let mut p = Paths {
            path: Vec::new(),
            all: Vec::new(),
        };
        module.visit(&mut p);
        p.all
    }

    #[test]
    fn weights_keep_the_paths_saved_runs_have() {
        let device = Device::flex();
        let small = ModelConfig::new(Architecture::Small, Stem::Cifar, 3)
            .init(&device)
            .unwrap();
        let resnet = paths(&small);
        assert_eq!(resnet[0], "body.stem.conv.weight");
        // (The residual blocks' own enum names its variant, as it always has.)
        assert!(resnet.contains(&"body.stages.2.blocks.0.Basic.bn2.gamma".to_string()));
        assert!(resnet.contains(&"head.linear.weight".to_string()));
        let inception = ModelConfig::new(Architecture::InceptionV3, Stem::ImageNet, 3)
            .with_aux_head(true)
            .init(&device)
            .unwrap();
        let inception = paths(&inception);
        assert_eq!(inception[0], "body.conv2d_1a_3x3.conv.weight");
        assert!(inception.contains(&"body.mixed_7c.branch3x3dbl_3b.bn.beta".to_string()));
        assert!(inception.contains(&"body.aux_logits.fc.linear.weight".to_string()));
        for path in resnet.iter().chain(&inception) {
            let second = path.split('.').nth(1).unwrap();
            assert!(second != "ResNet" && second != "Inception", "{path}");
        }
    }
}
