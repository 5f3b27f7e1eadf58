"""scikit-learn's 8x8 digits (offline) with the fixed train/test split every robustness run uses."""

from __future__ import annotations

import torch


def load_digits(gen: torch.Generator, n_test: int = 450, max_test: int | None = None):
    """(x_train, y_train, x_test, y_test): pixels in [0, 1] (float64, (N, 64)), labels int64, split by a
    permutation drawn from ``gen`` (the first ``n_test`` for testing, or only ``max_test`` of them)."""
    from sklearn.datasets import load_digits as sk_digits  # test/bench extra, imported only when used

    d = sk_digits()
    x = torch.tensor(d.data, dtype=torch.float64) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=gen)
    test, train = perm[:n_test][:max_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]
