"""Adversarial robustness: losses for certified training, training with dynnets.train.fit, one evaluation
(L2-PGD, optional AutoAttack, certified accuracy, soundness, measured Lipschitz ratio), the CIFAR-10 loader."""

from .attacks import certified, margins, pgd_l2, soundness_violations
from .cifar import load_cifar10, read_batch
from .digits import load_digits
from .evaluate import autoattack_l2, evaluate_robustness, frozen, measured_lipschitz
from .losses import hkr_loss, lipschitz_margin_loss, multiclass_hinge
from .training import train_classifier

__all__ = ["autoattack_l2", "certified", "evaluate_robustness", "frozen", "hkr_loss", "lipschitz_margin_loss",
           "load_cifar10", "load_digits", "margins", "measured_lipschitz", "multiclass_hinge", "pgd_l2", "read_batch",
           "soundness_violations", "train_classifier"]
