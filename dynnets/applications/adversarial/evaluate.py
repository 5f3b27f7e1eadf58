"""One evaluation for every model (the package docstring lists it); AutoAttack is torchattacks 3.5.1,
installed with --no-deps: pip stays away from torch, and torchvision is not needed at run time."""

from __future__ import annotations

import contextlib

import torch
from torch.nn.utils import parametrize
from tqdm import tqdm

from ...constraints.search import adversarial_lipschitz_search
from ...errors import ConfigError, GuaranteeError
from ...linalg import shared_norms
from .attacks import certified, margins, pgd_l2, project_l2, soundness_violations


@contextlib.contextmanager
def frozen(model: torch.nn.Module):
    """Evaluation mode with the parameters frozen: every parametrised weight and exact norm is computed once
    for the whole block (attacks call the model thousands of times), the trainable flags restored after."""
    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    model.eval().requires_grad_(False)
    try:
        with parametrize.cached(), shared_norms():
            yield model
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(was_training)


def autoattack_l2(model, x: torch.Tensor, labels: torch.Tensor, eps: float, *, image_shape=None,
                  seed: int = 0) -> torch.Tensor:
    """Robust mask under torchattacks' standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square) in L2 at ``eps``;
    torchattacks wants images (N, C, H, W) in [0, 1]: ``image_shape`` = (C, H, W) reshapes flat inputs."""
    try:
        import torchattacks
    except ImportError:
        raise ConfigError("the AutoAttack cross-check needs torchattacks (pip install torchattacks==3.5.1 "
                          "--no-deps)") from None
    shape = tuple(image_shape) if image_shape is not None else tuple(x.shape[1:])

    class Images(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, images):
            # torchattacks computes in float32 (FAB mixes dtypes otherwise); the model in its own dtype
            return self.inner(images.reshape(len(images), *x.shape[1:]).to(x.dtype)).float()

    with torch.no_grad():
        robust = margins(model(x), labels) > 0
    if eps == 0:
        return robust
    attack = torchattacks.AutoAttack(Images(), norm="L2", eps=eps, version="standard",
                                     n_classes=int(labels.max()) + 1 if len(labels) else 10, seed=seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)  # torchattacks creates float32-only buffers from the default dtype
    try:
        adv = attack(x.float().reshape(len(x), *shape), labels).reshape(x.shape).to(x.dtype)
    finally:
        torch.set_default_dtype(default)
    # the attack ran in float32: project back onto the ball ||delta|| <= eps around x in x's own dtype
    with torch.no_grad():
        return robust & (margins(model(x + project_l2(adv - x, eps)), labels) > 0)


def evaluate_robustness(model, x: torch.Tensor, y: torch.Tensor, eps_list, *, lipschitz: float, pgd_steps: int,
                        pgd_targets: int, box=(0.0, 1.0), autoattack: bool = False, image_shape=None,
                        desc: str = "attack") -> dict:
    """Accuracies per eps; raises GuaranteeError if any input is certified yet broken by an attack."""
    with frozen(model):
        with torch.no_grad():
            logits = model(x)
        out = {"clean_accuracy": float((logits.argmax(1) == y).double().mean()), "eps": list(eps_list),
               "pgd_accuracy": [], "certified_accuracy": [], "violations": 0}
        if autoattack:
            out["autoattack_accuracy"] = []
        for eps in tqdm(eps_list, desc=desc, leave=False):
            cert = certified(logits, y, lipschitz, eps)
            attacks = {"pgd": pgd_l2(model, x, y, eps, steps=pgd_steps, targets=pgd_targets, box=box)}
            if autoattack:
                attacks["autoattack"] = autoattack_l2(model, x, y, eps, image_shape=image_shape)
            for name, robust in attacks.items():
                bad = soundness_violations(cert, robust)
                if bad:
                    raise GuaranteeError(f"soundness check failed ({desc}): {bad} inputs certified at eps={eps} with "
                                         f"L={lipschitz} were broken by {name}; the Lipschitz bound is wrong")
                out[f"{name}_accuracy"].append(float(robust.double().mean()))
            out["certified_accuracy"].append(float(cert.double().mean()))
    return out


def measured_lipschitz(model, x: torch.Tensor, bound: float, *, starts: int = 256, steps: int = 100,
                       seed: int = 0) -> float:
    """Largest ratio ||f(a) - f(b)|| / ||a - b|| found by gradient ascent (float64) from pairs of inputs near
    ``x`` (a test input and a small random perturbation of it, and pairs of test inputs)."""
    gen = torch.Generator().manual_seed(seed)
    x = x.detach().to("cpu", torch.float64)
    i, j = (torch.randint(0, len(x), (starts,), generator=gen) for _ in range(2))
    near = x[i] + 1e-2 * torch.randn(x[i].shape, dtype=torch.float64, generator=gen)
    a = torch.cat([x[i], x[i]])
    b = torch.cat([near, x[j] + 1e-3 * torch.randn(x[j].shape, dtype=torch.float64, generator=gen)])
    with frozen(model):
        return adversarial_lipschitz_search(model.to("cpu"), a, b, bound, steps=steps, lr=0.01).max_ratio
