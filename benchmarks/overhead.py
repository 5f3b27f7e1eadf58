"""Overhead of dynnets' abstractions: a Flow of 16 Euler Dense steps against a hand-written module
doing the same arithmetic (x <- x + h B tanh(A x + b)), forward + backward, float32, batch 1024,
dim = width = 128. Goal: ratio <= 1.05.

    python -m benchmarks.overhead [--repeats N]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

import dynnets as dn

from ._common import interleaved_times, machine, write_json

DEPTH, DIM, WIDTH, BATCH, H = 16, 128, 128, 1024, 0.1


class HandWritten(nn.Module):
    """The same network written directly in PyTorch, sharing the Flow's parameter tensors."""

    def __init__(self, flow: dn.Flow):
        super().__init__()
        self.A = nn.ParameterList([s.field.A for s in flow.steps])
        self.b = nn.ParameterList([s.field.b for s in flow.steps])
        self.B = nn.ParameterList([s.field.B for s in flow.steps])

    def forward(self, x):
        for A, b, B in zip(self.A, self.b, self.B, strict=True):
            x = x + H * F.linear(torch.tanh(F.linear(x, A, b)), B)
        return x


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    flow = dn.Flow([dn.Step(dn.fields.Dense(DIM, WIDTH), dn.methods.Euler(), H) for _ in range(DEPTH)])
    hand = HandWritten(flow)
    x = torch.randn(BATCH, DIM)
    assert torch.equal(flow(x), hand(x)), "the two networks must compute the same numbers"

    def run(model):
        def once():
            model.zero_grad(set_to_none=True)
            model(x).square().mean().backward()

        return once

    t = interleaved_times({"dynnets": run(flow), "handwritten": run(hand)}, repeats=args.repeats)
    result = {
        "config": {"depth": DEPTH, "dim": DIM, "width": WIDTH, "batch": BATCH, "dtype": "float32"},
        "seconds_dynnets": t["dynnets"],
        "seconds_handwritten": t["handwritten"],
        "ratio_vs_handwritten": t["dynnets"] / t["handwritten"],
        "goal_ratio_vs_handwritten": 1.05,
        "machine": machine(),
    }
    print(f"{'model':<14}{'fwd+bwd (ms)':>14}")
    print(f"{'dynnets Flow':<14}{1e3 * t['dynnets']:>14.3f}")
    print(f"{'hand-written':<14}{1e3 * t['handwritten']:>14.3f}")
    print(f"ratio dynnets / hand-written = {result['ratio_vs_handwritten']:.3f} (goal <= 1.05)")
    path = write_json("overhead", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
