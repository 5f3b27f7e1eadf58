"""Robustness tooling: L2-PGD strength on a model with a known exact radius, certification soundness,
the CIFAR-10 binary loader (on tiny synthetic files), and the experiment's --quick smoke runs."""

import json
import math

import numpy as np
import pytest
import torch

import dynnets as dn
from dynnets.applications.adversarial import (
    certified,
    load_cifar10,
    load_digits,
    margins,
    pgd_l2,
    read_batch,
    soundness_violations,
)
from dynnets.errors import ConfigError


def _linear_model():
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 3).double()
    return lin


def _exact_radius(lin, x, y):
    """Distance from x to the nearest decision boundary of the linear classifier (no box)."""
    w = lin.weight.detach()
    logits = lin(x).detach()
    radii = []
    for i in range(len(y)):
        r = math.inf
        for j in range(w.shape[0]):
            if j != int(y[i]):
                dw = w[y[i]] - w[j]
                r = min(r, float(logits[i, y[i]] - logits[i, j]) / float(dw.norm()))
        radii.append(r)
    return torch.tensor(radii, dtype=torch.float64)


def test_pgd_finds_the_exact_linear_radius():
    lin = _linear_model()
    x = torch.randn(64, 5, dtype=torch.float64)
    y = lin(x).argmax(1).detach()
    r = _exact_radius(lin, x, y)
    # a broken input at eps must have radius < eps; nothing with radius < 0.99 eps may survive
    eps = float(r.median())
    robust = pgd_l2(lin, x, y, eps, steps=100, box=None)
    assert bool((robust == (r >= eps)).float().mean() >= 0.95)
    assert not bool((robust & (r < 0.99 * eps)).any())
    assert bool(robust[r > eps].all())  # linear model: no iterate can cross a boundary farther than eps


def test_certification_is_sound_and_conservative():
    lin = _linear_model()
    x = torch.randn(256, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (256,))
    L = float(torch.linalg.matrix_norm(lin.weight.detach(), ord=2))
    logits = lin(x).detach()
    r = _exact_radius(lin, x, y)
    for eps in (0.0, 0.1, 0.3, 1.0):
        cert = certified(logits, y, L, eps)
        assert not bool((cert & (r <= eps)).any())  # certified => exact radius > eps
        robust = pgd_l2(lin, x, y, eps, steps=30, box=None)
        assert soundness_violations(cert, robust) == 0
    # negative control: claiming a Lipschitz constant 10x too small certifies inputs PGD then breaks
    cert = certified(logits, y, L / 10, 0.3)
    assert soundness_violations(cert, pgd_l2(lin, x, y, 0.3, steps=30, box=None)) > 0
    assert torch.equal(margins(torch.tensor([[3.0, 1.0, 2.0]]), torch.tensor([0])), torch.tensor([1.0]))


def _write_cifar(directory, n_per_file=6, seed=0):
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    records = {}
    for name in names:
        labels = rng.integers(0, 10, n_per_file, dtype=np.uint8)
        pixels = rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8)
        np.concatenate([labels[:, None], pixels], axis=1).tofile(directory / name)
        records[name] = (labels, pixels)
    return records


def test_cifar_loader_reads_the_binary_format(tmp_path):
    records = _write_cifar(tmp_path)
    x_tr, y_tr, x_te, y_te = load_cifar10(tmp_path)
    assert x_tr.shape == (30, 3, 32, 32) and y_tr.shape == (30,) and x_te.shape == (6, 3, 32, 32)
    labels, pixels = records["data_batch_2.bin"]
    assert y_tr[6:12].tolist() == labels.tolist()
    # record layout: R plane (1024, row-major), then G, then B
    img = x_tr[7]
    assert round(float(img[0, 0, 0]) * 255) == pixels[1, 0]
    assert round(float(img[0, 0, 1]) * 255) == pixels[1, 1]
    assert round(float(img[0, 1, 0]) * 255) == pixels[1, 32]
    assert round(float(img[1, 0, 0]) * 255) == pixels[1, 1024]
    assert round(float(img[2, 31, 31]) * 255) == pixels[1, 3071]
    assert float(x_te.min()) >= 0.0 and float(x_te.max()) <= 1.0


def test_cifar_loader_refuses_bad_files(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(ConfigError, match="3073-byte record"):
        read_batch(tmp_path / "test_batch.bin")
    bad = np.zeros((1, 3073), dtype=np.uint8)
    bad[0, 0] = 11
    bad.tofile(tmp_path / "test_batch.bin")
    with pytest.raises(ConfigError, match="label 11"):
        read_batch(tmp_path / "test_batch.bin")
    (tmp_path / "data_batch_3.bin").unlink()
    with pytest.raises(ConfigError, match="data_batch_3.bin does not exist"):
        load_cifar10(tmp_path)


def _check_metrics(m):
    assert m["lipschitz_bound"] <= 1.0 + 1e-9
    for kind in ("lipschitz", "baseline"):
        k = m[kind]
        assert 0.0 <= k["clean_accuracy"] <= 1.0
        assert len(k["eps"]) == len(k["pgd_accuracy"]) == len(k["certified_accuracy"])
        for p, c in zip(k["pgd_accuracy"], k["certified_accuracy"], strict=True):
            assert c <= p  # soundness at the level of accuracies too
    assert m["lipschitz"]["certified_accuracy"][1] > 0.0  # the 1-Lipschitz net certifies something


@pytest.mark.slow
def test_quick_digits_run(tmp_path):
    from experiments import robustness

    m = robustness.main(["--quick", "--out", str(tmp_path)])
    _check_metrics(m)
    assert m["dataset"] == "digits"
    assert m["lipschitz"]["clean_accuracy"] > 0.8 and m["baseline"]["clean_accuracy"] > 0.8
    # the quick run shows the experiment's point: ahead of the ResNet under attack at eps = 0.5
    assert m["at_eps_half"]["lead"] > 0.05
    assert json.loads((tmp_path / "metrics.json").read_text())["lipschitz_bound"] == m["lipschitz_bound"]
    assert (tmp_path / "accuracy_vs_eps.png").stat().st_size > 0


@pytest.mark.slow
def test_quick_cifar_run_on_synthetic_batches(tmp_path):
    from experiments import robustness

    data = tmp_path / "cifar"
    data.mkdir()
    _write_cifar(data, n_per_file=4)
    m = robustness.main(["--quick", "--data", str(data), "--out", str(tmp_path / "out")])
    assert m["dataset"] == "cifar10" and m["arch"] == "conv" and m["n_test"] == 4
    assert m["lipschitz_bound"] <= 1.0 + 1e-9
    for kind in ("lipschitz", "baseline"):
        k = m[kind]
        assert all(c <= p for p, c in zip(k["pgd_accuracy"], k["certified_accuracy"], strict=True))


def test_cli_user_error_is_one_line(tmp_path, capsys):
    from dynnets.applications.runner import run_cli
    from experiments import robustness

    for argv, message in ((["--quick", "--epochs", "0"], "error: --epochs must be a positive integer"),
                          (["--quick", "--data", str(tmp_path / "missing")], "is not a directory"),
                          (["--quick", "--margin", "nan"], "error: --margin must be positive and finite")):
        with pytest.raises(SystemExit) as exc:
            run_cli(robustness.main, [*argv, "--out", str(tmp_path)])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


@pytest.mark.slow
def test_benchmark_holdout_is_taken_from_the_training_split(tmp_path, capsys):
    """benchmarks.lipschitz --holdout K (how its settings were chosen) never sees the test split and never
    replaces the recorded test figures."""
    import argparse

    from benchmarks import lipschitz
    from dynnets.applications.runner import run_cli

    x_tr, _, x_te, _ = load_digits(torch.Generator().manual_seed(1))
    ns = argparse.Namespace(quick=False, holdout=3, torch_device=torch.device("cpu"), torch_dtype=torch.float64)
    x_fit, _, x_val, _ = lipschitz.split(ns, 1)
    assert (len(x_fit), len(x_val)) == (len(x_tr) - lipschitz.HOLDOUT, lipschitz.HOLDOUT)

    def rows(x):  # the images as a sorted list of tuples (a multiset: digits has duplicate images)
        return sorted(map(tuple, x.tolist()))

    assert rows(torch.cat([x_fit, x_val])) == rows(x_tr)  # a partition of the training split
    only_in_test = set(map(tuple, x_te.tolist())) - set(map(tuple, x_tr.tolist()))
    assert not set(map(tuple, x_val.tolist())) & only_in_test and only_in_test
    for argv, message in ((["--holdout", "0"], "error: --holdout is a validation run: give --out"),
                          (["--holdout", "-1", "--out", str(tmp_path)], "error: --holdout must be an integer >= 0"),
                          (["--temperature", "0", "--out", str(tmp_path)], "error: --temperature must be positive")):
        with pytest.raises(SystemExit) as exc:
            run_cli(lipschitz.main, argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]
    assert not list(tmp_path.iterdir())  # refused before any work


@pytest.mark.parametrize("net", ["orthogonal", "rescaled", "pairs"])
def test_lipschitz_model_bound_includes_every_layer(net):
    from experiments.robustness import build

    torch.manual_seed(0)
    mean = torch.zeros(1, 8, 8)
    cfg = {"pairs": 2, "width": 64, "widths": [32, 16]}
    model = build("lipschitz", "dense", (1, 8, 8), mean, cfg, net).double()
    parts = [float(layer.lipschitz_bound()) for layer in model.layers]
    assert model.lipschitz_bound() == pytest.approx(math.prod(parts), rel=1e-14)
    assert model.lipschitz_bound() <= 1.0 + 1e-12
    x = torch.rand(256, 64, dtype=torch.float64)
    y = torch.rand(256, 64, dtype=torch.float64)
    assert dn.testing.lipschitz_ratio(model, x, y) <= model.lipschitz_bound()


def test_certified_training_losses():
    from dynnets.applications.adversarial import hkr_loss, lipschitz_margin_loss, multiclass_hinge

    logits = torch.tensor([[3.0, 1.0, 0.5], [0.2, 0.1, 2.0]], dtype=torch.float64)
    labels = torch.tensor([0, 2])
    # Lipschitz margin: cross-entropy after raising every wrong logit by sqrt(2) L eps
    shifted = logits + math.sqrt(2) * 0.5 * torch.tensor([[0, 1, 1], [1, 1, 0]], dtype=torch.float64)
    expected = torch.nn.functional.cross_entropy(4.0 * shifted, labels)
    assert float(lipschitz_margin_loss(logits, labels, 0.5, 4.0)) == pytest.approx(float(expected), rel=1e-14)
    assert float(lipschitz_margin_loss(logits, labels, 0.5, 4.0)) > float(lipschitz_margin_loss(logits, labels, 0.0, 4.0))
    # HKR: alpha * hinge - (mean true logit - mean wrong logit)
    kr = (3.0 + 2.0) / 2 - (1.0 + 0.5 + 0.2 + 0.1) / 4
    assert float(hkr_loss(logits, labels, 10.0, 1.0)) == pytest.approx(
        10 * float(multiclass_hinge(logits, labels, 1.0)) - kr, rel=1e-14)
    with pytest.raises(ConfigError, match="temperature"):
        lipschitz_margin_loss(logits, labels, 0.5, 0.0)


def test_autoattack_wrapper_projects_onto_the_ball(monkeypatch):
    """The cross-check is run in float32 by torchattacks; its output is projected back onto ||delta|| <= eps in
    the model's dtype, and only inputs correct on both the clean and the attacked image count as robust.
    (A stand-in for torchattacks: the real one is an optional extra.)"""
    import sys
    import types

    from dynnets.applications.adversarial import autoattack_l2

    seen = {}

    class FakeAutoAttack:
        def __init__(self, model, norm, eps, version, n_classes, seed):
            seen.update(norm=norm, eps=eps, version=version, n_classes=n_classes)
            self.model = model

        def __call__(self, images, labels):
            seen["dtype"], seen["shape"] = images.dtype, tuple(images.shape)
            assert torch.get_default_dtype() == torch.float32
            return images + 10.0  # far outside the ball: must be projected back

    monkeypatch.setitem(sys.modules, "torchattacks", types.SimpleNamespace(AutoAttack=FakeAutoAttack))
    lin = _linear_model()
    x = torch.randn(40, 5, dtype=torch.float64)
    y = lin(x).argmax(1).detach()
    robust = autoattack_l2(lin, x, y, 0.3, image_shape=(5,))
    assert seen == {"norm": "L2", "eps": 0.3, "version": "standard", "n_classes": 3, "dtype": torch.float32,
                    "shape": (40, 5)}
    delta = torch.full_like(x, 10.0)
    delta = delta * (0.3 / delta.norm(dim=1, keepdim=True))
    expected = margins(lin(x + delta), y) > 0
    assert torch.equal(robust, expected) and 0 < int(robust.sum()) < 40
