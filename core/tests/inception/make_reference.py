"""Reference values of Inception v3 from torchvision, for core/tests/models.rs.

Run once with the benchmark environment (scripts/env.sh: `ensure_python bench`):

    $LOSSLENS_PYTHON core/tests/inception/make_reference.py > core/tests/inception/reference.json

Records, for torchvision.models.inception_v3(weights=None, init_weights=False) at 1,000 classes:
the trainable parameter count with and without the auxiliary classifier, the count of every
top-level module (so a mismatch points at its block), and the output shape of every Inception
block at 299 and 75 px (taken with forward hooks in evaluation mode).
"""

import json

import torch
import torchvision


def build(aux: bool) -> torch.nn.Module:
    return torchvision.models.inception_v3(weights=None, aux_logits=aux, init_weights=False, num_classes=1000)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def block_shapes(model: torch.nn.Module, size: int) -> dict:
    shapes = {}
    hooks = []
    for name, child in model.named_children():
        if name.startswith("Mixed_"):
            hooks.append(
                child.register_forward_hook(
                    lambda _m, _i, out, name=name: shapes.__setitem__(name.lower(), list(out.shape[1:]))
                )
            )
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return shapes


def main() -> None:
    with_aux = build(True)
    without = build(False)
    reference = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "classes": 1000,
        "parameters_with_aux": count(with_aux),
        "parameters_without_aux": count(without),
        "parameters_by_module": {name.lower(): count(child) for name, child in with_aux.named_children() if count(child) > 0},
        "block_shapes_299": block_shapes(without, 299),
        "block_shapes_75": block_shapes(without, 75),
    }
    print(json.dumps(reference, indent=1))


if __name__ == "__main__":
    main()
