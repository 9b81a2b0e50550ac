//! The networks: parameter counts against torchvision, tap names and shapes, initialisation.

use burn::tensor::{Device, Tensor};
use losslens_core::model::block::ResidualBlock;
use losslens_core::model::{Architecture, ModelConfig, PENULTIMATE, Stem, trainable_params};

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

#[test]
fn parameter_counts_match_torchvision() {
    // torchvision.models.resnet{18,34,50}(num_classes=1000): sum(p.numel() for p in m.parameters()).
    let device = Device::flex();
    for (architecture, expected) in [
        (Architecture::ResNet18, 11_689_512),
        (Architecture::ResNet34, 21_797_672),
        (Architecture::ResNet50, 25_557_032),
    ] {
        let model = ModelConfig::new(architecture, Stem::ImageNet, 1000)
            .init(&device)
            .unwrap();
        assert_eq!(model.trainable_params(), expected, "{architecture}");
    }
    // The CIFAR stem swaps the 7×7×3×64 convolution for a 3×3×3×64 one.
    let cifar = ModelConfig::new(Architecture::ResNet18, Stem::Cifar, 10)
        .init(&device)
        .unwrap();
    assert_eq!(
        cifar.trainable_params(),
        11_689_512 - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64 - 990 * 513
    );
    // burn's own count adds the running statistics (2 per batch-norm channel; 4,800 channels).
    use burn::module::Module;
    let resnet18 = ModelConfig::new(Architecture::ResNet18, Stem::ImageNet, 1000)
        .init(&device)
        .unwrap();
    assert_eq!(resnet18.num_params(), 11_689_512 + 2 * 4_800);
}

#[test]
fn documented_tap_shapes_of_resnet50_at_224_pixels() {
    let shapes = ModelConfig::new(Architecture::ResNet50, Stem::ImageNet, 1000).tap_shapes([224, 224]);
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 17);
    assert_eq!(names[0], "block1.0");
    assert_eq!(names[15], "block4.2");
    assert_eq!(names[16], PENULTIMATE);
    let shape = |name: &str| shapes.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(shape("block1.2"), vec![256, 56, 56]);
    assert_eq!(shape("block2.3"), vec![512, 28, 28]);
    assert_eq!(shape("block3.5"), vec![1024, 14, 14]);
    assert_eq!(shape("block4.2"), vec![2048, 7, 7]);
    assert_eq!(shape(PENULTIMATE), vec![2048]);
    // CIFAR stem at 32 px: no early downsampling.
    let cifar = ModelConfig::new(Architecture::ResNet18, Stem::Cifar, 10).tap_shapes([32, 32]);
    assert_eq!(cifar[0], ("block1.0".to_string(), vec![64, 32, 32]));
    assert_eq!(cifar[7], ("block4.1".to_string(), vec![512, 4, 4]));
}

#[test]
fn inception_v3_matches_torchvision() {
    // core/tests/inception/make_reference.py: torchvision's inception_v3 at 1,000 classes.
    let reference: serde_json::Value = serde_json::from_str(include_str!("inception/reference.json")).unwrap();
    let device = Device::flex();
    let config = ModelConfig::new(Architecture::InceptionV3, Stem::ImageNet, 1000);
    let plain = config.init(&device).unwrap();
    assert_eq!(
        plain.trainable_params() as u64,
        reference["parameters_without_aux"].as_u64().unwrap()
    );
    let with_aux = config.with_aux_head(true).init(&device).unwrap();
    assert_eq!(
        with_aux.trainable_params() as u64,
        reference["parameters_with_aux"].as_u64().unwrap()
    );
    // Block by block, so that a difference names its block.
    let inception = with_aux.body.inception().unwrap();
    let ours = [
        ("conv2d_1a_3x3", trainable_params(&inception.conv2d_1a_3x3)),
        ("conv2d_2a_3x3", trainable_params(&inception.conv2d_2a_3x3)),
        ("conv2d_2b_3x3", trainable_params(&inception.conv2d_2b_3x3)),
        ("conv2d_3b_1x1", trainable_params(&inception.conv2d_3b_1x1)),
        ("conv2d_4a_3x3", trainable_params(&inception.conv2d_4a_3x3)),
        ("mixed_5b", trainable_params(&inception.mixed_5b)),
        ("mixed_5c", trainable_params(&inception.mixed_5c)),
        ("mixed_5d", trainable_params(&inception.mixed_5d)),
        ("mixed_6a", trainable_params(&inception.mixed_6a)),
        ("mixed_6b", trainable_params(&inception.mixed_6b)),
        ("mixed_6c", trainable_params(&inception.mixed_6c)),
        ("mixed_6d", trainable_params(&inception.mixed_6d)),
        ("mixed_6e", trainable_params(&inception.mixed_6e)),
        ("auxlogits", trainable_params(inception.aux_logits.as_ref().unwrap())),
        ("mixed_7a", trainable_params(&inception.mixed_7a)),
        ("mixed_7b", trainable_params(&inception.mixed_7b)),
        ("mixed_7c", trainable_params(&inception.mixed_7c)),
        ("fc", trainable_params(&with_aux.head)),
    ];
    let by_module = reference["parameters_by_module"].as_object().unwrap();
    assert_eq!(by_module.len(), ours.len());
    for (name, count) in ours {
        assert_eq!(count as u64, by_module[name].as_u64().unwrap(), "{name}");
    }
    // Every block's shape at 299 px (native) and 75 px (the smallest input), computed and run.
    for size in [299, 75] {
        let want = reference[format!("block_shapes_{size}")].as_object().unwrap();
        let shapes = config.tap_shapes([size, size]);
        assert_eq!(shapes.len(), want.len() + 1);
        for (name, shape) in &shapes[..want.len()] {
            let expected: Vec<usize> = serde_json::from_value(want[name].clone()).unwrap();
            assert_eq!(*shape, expected, "{name} at {size} px");
        }
        assert_eq!(shapes[want.len()], (PENULTIMATE.to_string(), vec![2048]));
        let taps = plain
            .body
            .forward_taps(Tensor::<4>::zeros([1, 3, size, size], &device), |_| true);
        assert_eq!(taps.blocks.len(), want.len());
        for ((name, tensor), (want_name, want_shape)) in taps.blocks.iter().zip(&shapes) {
            assert_eq!(name, want_name);
            assert_eq!(tensor.dims()[1..].to_vec(), *want_shape, "{name} at {size} px");
        }
        assert_eq!(taps.penultimate.dims(), [1, 2048]);
    }
    // Smaller inputs are refused with the size the network needs.
    assert_eq!(config.min_image_size(), 75);
    assert_eq!(config.with_aux_head(true).min_image_size(), 299);
    let err = config.check_image_size(74).unwrap_err().to_string();
    assert!(err.contains("at least 75"), "{err}");
    let err = config
        .with_aux_head(true)
        .check_image_size(224)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least 299") && err.contains("auxiliary"), "{err}");
    config.with_aux_head(true).check_image_size(299).unwrap();
    // Only Inception v3 has an auxiliary classifier.
    let err = ModelConfig::new(Architecture::ResNet50, Stem::ImageNet, 10)
        .with_aux_head(true)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("inception-v3"), "{err}");
    assert_eq!(
        "inception-v3".parse::<Architecture>().unwrap(),
        Architecture::InceptionV3
    );
}

#[test]
fn every_tap_has_its_documented_shape() {
    let device = Device::flex();
    for architecture in Architecture::ALL {
        for (stem, size) in [(Stem::Cifar, 32), (Stem::ImageNet, 64)] {
            if architecture == Architecture::ResNet50 && stem == Stem::Cifar {
                continue; // covered at 64 px; keeps the test quick
            }
            if architecture == Architecture::InceptionV3 {
                continue; // needs 75 px and more: inception_v3_matches_torchvision
            }
            let config = ModelConfig::new(architecture, stem, 7);
            let model = config.init(&device).unwrap();
            let images = Tensor::<4>::random([2, 3, size, size], burn::tensor::Distribution::Default, &device);
            let taps = model.body.forward_taps(images, |_| true);
            let expected = config.tap_shapes([size, size]);
            assert_eq!(taps.blocks.len() + 1, expected.len(), "{architecture} {stem:?}");
            for ((name, tensor), (want_name, want_shape)) in taps.blocks.iter().zip(&expected) {
                assert_eq!(name, want_name);
                assert_eq!(tensor.dims()[1..].to_vec(), *want_shape, "{architecture} {name}");
                assert_eq!(tensor.dims()[0], 2);
            }
            assert_eq!(taps.penultimate.dims(), [2, expected.last().unwrap().1[0]]);
            let logits = model.logits(Tensor::<4>::zeros([2, 3, size, size], &device));
            assert_eq!(logits.dims(), [2, 7]);
        }
    }
}

#[test]
fn selected_taps_only() {
    let device = Device::flex();
    let model = ModelConfig::new(Architecture::Small, Stem::Cifar, 3)
        .init(&device)
        .unwrap();
    let taps = model
        .body
        .forward_taps(Tensor::<4>::zeros([1, 3, 32, 32], &device), |name| name == "block2.0");
    assert_eq!(taps.blocks.len(), 1);
    assert_eq!(taps.blocks[0].0, "block2.0");
    assert_eq!(
        model.body.forward(Tensor::<4>::zeros([1, 3, 32, 32], &device)).dims(),
        taps.penultimate.dims()
    );
}

#[test]
fn initialisation_follows_the_paper() {
    let device = Device::flex();
    let model = ModelConfig::new(Architecture::ResNet50, Stem::ImageNet, 1000)
        .init(&device)
        .unwrap();
    // Final layer N(0, 0.01²), bias 0.
    let w = read(model.head.weight());
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / w.len() as f64;
    let sd = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
    assert!(
        mean.abs() < 1e-4 && (sd - 0.01).abs() < 2e-4,
        "head init mean {mean} sd {sd}"
    );
    assert!(read(model.head.bias()).iter().all(|&b| b == 0.0));
    // Last batch-norm γ of each residual branch is 0; the others are 1.
    for stage in &model.body.resnet().unwrap().stages {
        for block in &stage.blocks {
            let ResidualBlock::Bottleneck(b) = block else {
                panic!("ResNet-50 is built of bottlenecks")
            };
            assert!(read(b.bn3.gamma.val()).iter().all(|&g| g == 0.0));
            assert!(read(b.bn1.gamma.val()).iter().all(|&g| g == 1.0));
        }
    }
}

#[test]
fn bad_model_settings_are_refused() {
    let device = Device::flex();
    let err = ModelConfig::new(Architecture::Small, Stem::Cifar, 1)
        .init(&device)
        .unwrap_err();
    assert!(err.to_string().contains("classes"), "{err}");
    let err = "resnet51".parse::<Architecture>().unwrap_err().to_string();
    assert!(err.contains("resnet50"), "{err}");
    assert_eq!(Stem::for_image_size(32), Stem::Cifar);
    assert_eq!(Stem::for_image_size(224), Stem::ImageNet);
}
