"""The PyTorch side of `scripts/bench train`: the same training step on the same network.

ResNet (torchvision, v1.5) with the CIFAR stem (3x3 stride-1 conv, no max-pool) for inputs under
64 px, the last BN gamma of each residual branch zero-initialised; pad-4 random crop and flip done
on the device by one gather (as losslens does); softmax cross-entropy; SGD with Nesterov momentum
0.9 and weight decay; an EMA of parameters and buffers. Prints one line per batch size and mode:

    pytorch-fp32 batch 128: 19800.0 images/s
    pytorch-bf16cl batch 128: 46000.0 images/s     (CUDA only: bf16 autocast, channels-last)
"""

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision


def small(classes=10):
    """losslens' `small` network: a 3x3 stem of 32 channels, then one basic block per stage at
    32, 64 and 128 channels (strides 1, 2, 2; 1x1 projection shortcuts), mean pool, linear head."""
    from torchvision.models.resnet import BasicBlock

    def block(inplanes, planes, stride):
        down = None
        if stride != 1 or inplanes != planes:
            down = torch.nn.Sequential(
                torch.nn.Conv2d(inplanes, planes, 1, stride, bias=False), torch.nn.BatchNorm2d(planes)
            )
        b = BasicBlock(inplanes, planes, stride, down)
        torch.nn.init.zeros_(b.bn2.weight)
        return b

    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, 1, 1, bias=False),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(inplace=True),
        block(32, 32, 1),
        block(32, 64, 2),
        block(64, 128, 2),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(128, classes),
    )


def network(name, image_size, classes=10):
    if name == "small":
        return small(classes)
    net = getattr(torchvision.models, name)(num_classes=classes, zero_init_residual=True)
    if image_size < 64:
        net.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        torch.nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        net.maxpool = torch.nn.Identity()
    return net


def augment(images, pad=4):
    """Pad-4 random crop and horizontal flip of a uint8 NHWC batch, on its device."""
    b, h, w, c = images.shape
    x = images.permute(0, 3, 1, 2).float()
    x = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1) + dy
    xs = torch.arange(w, device=x.device).view(1, 1, w) + dx
    flip = torch.rand(b, 1, 1, device=x.device) < 0.5
    xs = torch.where(flip, 2 * dx + w - 1 - xs, xs)
    index = (ys * (w + 2 * pad) + xs).view(b, 1, h * w).expand(b, c, h * w)
    x = x.flatten(2).gather(2, index).view(b, c, h, w)
    return (x / 255.0 - 0.5) / 0.25


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet18")
    p.add_argument("--batches", default="128,512")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cuda")
    a = p.parse_args()
    device = torch.device(a.device if (a.device != "cuda" or torch.cuda.is_available()) else "cpu")
    modes = ["fp32"] + (["bf16cl"] if device.type == "cuda" else [])
    for batch in [int(b) for b in a.batches.split(",")]:
        images = torch.randint(0, 256, (batch, a.image_size, a.image_size, 3), dtype=torch.uint8, device=device)
        labels = torch.randint(0, 10, (batch,), device=device)
        for mode in modes:
            net = network(a.model, a.image_size).to(device)
            if mode == "bf16cl":
                net = net.to(memory_format=torch.channels_last)
            ema = [t.detach().clone() for t in list(net.parameters()) + list(net.buffers()) if t.dtype.is_floating_point]
            opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-5)
            net.train()

            def step():
                x = augment(images)
                if mode == "bf16cl":
                    x = x.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(device.type, dtype=torch.bfloat16):
                        loss = F.cross_entropy(net(x), labels)
                else:
                    loss = F.cross_entropy(net(x), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    current = [t for t in list(net.parameters()) + list(net.buffers()) if t.dtype.is_floating_point]
                    torch._foreach_lerp_(ema, current, 1 - 0.9999)
                return loss

            for _ in range(a.warmup):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(a.steps):
                loss = step()
            loss.item()
            if device.type == "cuda":
                torch.cuda.synchronize()
            rate = batch * a.steps / (time.perf_counter() - start)
            print(f"pytorch-{mode} batch {batch}: {rate:.1f} images/s", flush=True)


if __name__ == "__main__":
    main()
