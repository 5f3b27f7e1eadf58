"""Adversarial-robustness evaluation (L2-PGD, certified accuracy) and the CIFAR-10 binary loader."""

from .attacks import certified, margins, multiclass_hinge, pgd_l2, soundness_violations
from .cifar import load_cifar10, read_batch

__all__ = ["certified", "load_cifar10", "margins", "multiclass_hinge", "pgd_l2", "read_batch",
           "soundness_violations"]
