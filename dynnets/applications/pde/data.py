"""Reference data for pixel-based learning on a periodic 2-D grid: random initial fields, RK4 reference
trajectories, the exact heat solution, trajectory splits and an atomic .npz store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError
from ...io import atomic_write
from ...methods.rk import RK4
from ...step import Flow, Step
from ...systems.grids import PeriodicGrid2D
from ...systems.stencils import stencil_symbol


def _rescale(g: torch.Tensor, gen: torch.Generator, mean_range, amp_range) -> torch.Tensor:
    n = g.shape[0]
    g = g - g.mean(dim=(-2, -1), keepdim=True)
    g = g / g.abs().amax(dim=(-2, -1), keepdim=True)
    m, a = ((lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)).view(n, 1, 1, 1)
            for lo, hi in (mean_range, amp_range))
    return m + a * g


def random_fields(count: int, grid: PeriodicGrid2D, gen: torch.Generator, *, k_max: float = 16.0,
                  k0: float = 4.0, slope: float = 2.0, mean_range=(0.35, 0.65),
                  amp_range=(0.1, 0.3)) -> torch.Tensor:
    """``count`` broadband random fields (count, 1, n, n), float64: Fourier amplitudes (1 + |k|^2/k0^2)^(-s/2)
    (s = ``slope``) for integer 1 <= |k| <= k_max, random phases, each sample scaled to mean m and
    max |u - m| = a (m, a drawn per sample from ``mean_range``, ``amp_range``)."""
    if not (1 <= k_max < grid.n / 2):
        raise ConfigError(f"k_max must lie in [1, n/2) = [1, {grid.n / 2}) to be resolved, got {k_max}")
    kx, ky = grid.wavenumbers()
    kk = torch.sqrt(kx**2 + ky**2)
    amp = (1.0 + (kk / k0) ** 2) ** (-slope / 2) * ((kk >= 1) & (kk <= k_max))
    noise = torch.complex(torch.randn(count, 1, grid.n, grid.n, generator=gen, dtype=torch.float64),
                          torch.randn(count, 1, grid.n, grid.n, generator=gen, dtype=torch.float64))
    return _rescale(torch.fft.ifft2(noise * amp).real, gen, mean_range, amp_range)


def mode_fields(count: int, grid: PeriodicGrid2D, gen: torch.Generator, *, k_lo: int = 1, k_hi: int = 12,
                max_modes: int = 2, mean_range=(0.35, 0.65), amp_range=(0.1, 0.3)) -> torch.Tensor:
    """Sums of 1..max_modes modes cos(2 pi (kx x + ky y)/L + phi), integer kx, ky in [k_lo, k_hi] with
    random signs (an out-of-band test set), rescaled like ``random_fields``. Shape (count, 1, n, n)."""
    if not (1 <= k_lo <= k_hi < grid.n / 2):
        raise ConfigError(f"mode wavenumbers need 1 <= k_lo <= k_hi < n/2, got [{k_lo}, {k_hi}], n={grid.n}")
    x, y = grid.coordinates()
    out = torch.zeros(count, 1, grid.n, grid.n, dtype=torch.float64)
    for i in range(count):
        for _ in range(int(torch.randint(1, max_modes + 1, (1,), generator=gen))):
            kx, ky = (int(v) for v in torch.randint(k_lo, k_hi + 1, (2,), generator=gen))
            sx, sy = (1 if float(v) < 0.5 else -1 for v in torch.rand(2, generator=gen))
            phi = 2 * math.pi * float(torch.rand(1, generator=gen))
            out[i, 0] += torch.cos(2 * math.pi * (sx * kx * x + sy * ky * y) / grid.length + phi)
    return _rescale(out, gen, mean_range, amp_range)


def reference_flow(field, dt: float, substeps: int) -> Flow:
    """One snapshot interval dt as ``substeps`` RK4 steps of the fixed field (stability checked)."""
    return Flow.repeat(Step(field, RK4(), dt / substeps), substeps)


@torch.no_grad()
def reference_trajectories(field, u0: torch.Tensor, dt: float, steps: int, *, substeps: int = 16,
                           batch: int = 64) -> torch.Tensor:
    """Snapshots U(t_0 + k dt), k = 0..steps: shape (N, steps + 1, n, n), from u0 of shape (N, 1, n, n)."""
    flow = reference_flow(field, dt, substeps)
    out = torch.empty(u0.shape[0], steps + 1, *u0.shape[-2:], dtype=u0.dtype)
    for s in range(0, u0.shape[0], batch):
        u = u0[s:s + batch]
        out[s:s + batch, 0] = u[:, 0]
        for k in range(steps):
            u = flow(u)
            out[s:s + batch, k + 1] = u[:, 0]
    return out


@torch.no_grad()
def time_error(field, u0: torch.Tensor, dt: float, steps: int, substeps: int) -> float:
    """The largest relative L2 difference after ``steps`` snapshots between ``substeps`` and 2 ``substeps``
    RK4 steps per dt (about 15/16 of the coarser run's error)."""
    a = reference_trajectories(field, u0, dt, steps, substeps=substeps)[:, -1]
    b = reference_trajectories(field, u0, dt, steps, substeps=2 * substeps)[:, -1]
    return float(((a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).max())


def heat_exact(u0: torch.Tensor, kernel: torch.Tensor, alpha: float, t: float) -> torch.Tensor:
    """exp(t alpha L) u0 for the circulant stencil L on a periodic grid (FFT diagonalisation)."""
    lam = stencil_symbol(kernel, u0.shape[-1]).real
    return torch.fft.ifft2(torch.fft.fft2(u0) * torch.exp(t * alpha * lam)).real


def split_by_trajectory(count: int, fractions=(0.7, 0.15, 0.15), *, seed: int = 0) -> dict[str, np.ndarray]:
    """Disjoint index sets {"train", "val", "test"} of whole trajectories (a trajectory never contributes
    snapshots to two sets); sizes floor(f * count) for val/test, the rest train."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ConfigError(f"fractions must be three non-negative numbers summing to 1, got {fractions!r}")
    perm = np.random.default_rng(seed).permutation(count)
    n_val, n_test = int(fractions[1] * count), int(fractions[2] * count)
    n_train = count - n_val - n_test
    if n_train < 1:
        raise ConfigError(f"split of {count} trajectories by {fractions} leaves no training trajectory")
    return {"train": np.sort(perm[:n_train]), "val": np.sort(perm[n_train:n_train + n_val]),
            "test": np.sort(perm[n_train + n_val:])}


def save_dataset(path, arrays: dict, params: dict) -> Path:
    """Write arrays and the generation parameters (as JSON under the key "params") to an .npz, atomically."""
    payload = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
               for k, v in arrays.items()}
    payload["params"] = np.array(json.dumps(params))

    def write(tmp: Path):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **payload)

    return atomic_write(Path(path), write)


def load_dataset(path) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k != "params"}, json.loads(str(z["params"]))
