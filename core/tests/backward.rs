//! A forward and backward pass of every (model, objective) pair on the CPU backend.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use losslens_core::model::block::ResidualBlock;
use losslens_core::model::{Architecture, ModelConfig, Stem};
use losslens_core::objective::{ObjectiveConfig, ObjectiveKind};

#[test]
fn every_model_trains_with_every_objective() {
    let device = Device::flex().autodiff();
    let classes = 5;
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 3, 4, 1], [4]), &device);
    for architecture in Architecture::ALL {
        let (stem, size) = match architecture {
            Architecture::Small | Architecture::ResNet18 => (Stem::Cifar, 32),
            _ => (Stem::ImageNet, 64),
        };
        let model = ModelConfig::new(architecture, stem, classes).init(&device).unwrap();
        for kind in ObjectiveKind::ALL {
            let objective = ObjectiveConfig::default_for(kind).init().unwrap();
            let images = Tensor::<4>::random([4, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
            let features = model.features(images);
            let out = objective.forward(features, &model.head, targets.clone());
            assert_eq!(out.outputs.dims(), [4, classes]);
            let loss = out.loss.clone().into_scalar::<f64>();
            assert!(loss.is_finite() && loss > 0.0, "{architecture} {kind}: loss {loss}");
            let grads = out.loss.backward();
            let finite_nonzero = |t: Tensor<4>| {
                let v = t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
                v.iter().all(|x| x.is_finite()) && v.iter().any(|&x| x != 0.0)
            };
            let stem_grad = model.body.stem.conv.weight.val().grad(&grads).expect("stem gradient");
            assert!(finite_nonzero(stem_grad), "{architecture} {kind}: stem gradient");
            let head_grad = model.head.weight().grad(&grads).expect("head gradient");
            assert!(
                finite_nonzero(head_grad.unsqueeze()),
                "{architecture} {kind}: head gradient"
            );
            // The zero-initialised γ of the last block still receives a gradient.
            let last = model.body.stages.last().unwrap().blocks.last().unwrap();
            let gamma = match last {
                ResidualBlock::Basic(b) => b.bn2.gamma.val(),
                ResidualBlock::Bottleneck(b) => b.bn3.gamma.val(),
            };
            assert!(
                finite_nonzero(gamma.grad(&grads).expect("γ gradient").unsqueeze()),
                "{architecture} {kind}: γ"
            );
        }
    }
}
