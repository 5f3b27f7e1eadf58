"""Memory and time of backpropagation through deep flows: plain vs reversible vs checkpoint.

A weight-tied flow (``Flow.repeat``: an ODE solver with a fixed step) of Hamiltonian/SymplecticEuler
steps, state dimension 64 (q, p in R^32), hidden width 64, batch 1024, float32, h = 0.01, loss
sum(sin(y)). Depths 10, 100, 1000. Targets (issues 10 and 18): the 1000-step reversible flow's peak memory at
most 1.5x that of a 10-step flow (plain backprop grows about 100x); its time per training step (forward +
backward) at most 1.5x plain backprop's. The reversible backward of the partitioned methods reuses the
inverse's field evaluations for its vector-Jacobian products; ``reversible-recompute`` times the generic
backward (inverse, then the step recomputed) on the same flow for comparison, and StormerVerlet (first
same as last in the weight-tied run, forward and backward) is timed besides SymplecticEuler.

Memory is also measured on the configuration of issue 26: a weight-tied flow of Dense(64, 64) / RK4 steps
(an MLP field 64-64-64, no explicit inverse, so plain and checkpoint only), batch 256, float32, h = 0.01,
depths 10, 100, 1000 (``--dense-depths`` to choose, e.g. 10000: plain backprop then needs about 12 GiB).

Memory measures, each configuration in a fresh subprocess of its own, with glibc's default allocator
(every ``MALLOC_*`` variable and ``GLIBC_TUNABLES`` are removed from the child's environment, so the figures
are what a default process shows, heap caching and fragmentation included):
  * ``saved``: peak bytes of tensors autograd keeps for the backward (``dynnets.memory.SavedTensorMeter``,
    counted once per storage, parameters excluded, through the backward so that the reversible mode's
    local recomputation and checkpoint mode's recomputed segment count).
  * ``rss``: growth of the peak resident set size during one forward + backward, the extra memory it
    needs beyond the model, its gradients and the input: after building the model and one warm-up step
    on a batch of 8 (code paths, thread pool and parameter gradients allocated), the kernel's peak mark is
    reset (``echo 5 > /proc/self/clear_refs``) and VmHWM - VmRSS is read afterwards. It includes every
    transient tensor and allocator overhead.
  * ``peak_rss``: the child's peak resident set size over that forward + backward (VmHWM after the
    reset): the whole process, torch and the model included.
Time: median seconds of forward + backward (wall clock and process CPU time, the steadier one on a
shared machine) and of the backward alone, modes timed round-robin in one process with alternating order. Accuracy: relative difference of the reversible gradients from plain
ones in float32 at depth 1000, and the round-trip error of reconstructing x_0 from x_1000.

Runs with one torch thread by default (``--threads``): on a shared 2-core machine two threads per
process made every mode 10-20x slower and the timings meaningless.

    python -m benchmarks.memory [--quick] [--repeats N] [--threads T] [--dense-depths D [D ...]]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

import dynnets as dn
from dynnets.applications.runner import Runner, run_cli
from dynnets.checks import MAX_STEPS, check_int
from dynnets.memory import SavedTensorMeter

from ._common import child_json, machine, peak_rss

Q_DIM, WIDTH, BATCH, H = 32, 64, 1024, 0.01
#: issue 26's configuration: Dense(64, 64) / RK4, batch 256 (plain and checkpoint: RK4 has no inverse)
DENSE_DIM, DENSE_BATCH, DENSE_MODES = 64, 256, ("plain", "checkpoint")
MODES = ("plain", "reversible", "checkpoint")
#: timed besides MODES: the reversible backward without the reuse (inverse, then the step recomputed)
GENERIC = "reversible-recompute"
METHODS = {"SymplecticEuler": dn.methods.SymplecticEuler, "StormerVerlet": dn.methods.StormerVerlet}


def _recomputing(method_cls):
    """The method with the generic reversible backward (``Method.reversible_backward``: per step the
    explicit inverse, the step recomputed with autograd, one VJP), for the comparison with the reuse."""
    return type(f"{method_cls.__name__}Recompute", (method_cls,),
                {"reversible_backward": dn.base.Method.reversible_backward})()


def build(depth: int, mode: str, seed: int = 0, method: str = "SymplecticEuler") -> dn.Flow:
    torch.manual_seed(seed)
    cls = METHODS[method]
    step = dn.Step(dn.fields.Hamiltonian(Q_DIM, WIDTH), _recomputing(cls) if mode == GENERIC else cls(), H)
    return dn.Flow.repeat(step, depth, memory="reversible" if mode == GENERIC else mode)


def build_dense(depth: int, mode: str, seed: int = 0) -> dn.Flow:
    torch.manual_seed(seed)
    step = dn.Step(dn.fields.Dense(DENSE_DIM, DENSE_DIM), dn.methods.RK4(), H)
    return dn.Flow.repeat(step, depth, memory=mode)


def loss_of(flow, x):
    return flow(x).sin().sum()


def child(config: str, mode: str, depth: int, batch: int) -> dict:
    """Run in a fresh process: peak-RSS growth and peak RSS of one forward + backward, and the saved-tensor
    peak."""
    if config == "dense":
        flow, dim = build_dense(depth, mode), DENSE_DIM
    else:
        flow, dim = build(depth, mode), 2 * Q_DIM
    x = torch.randn(batch, dim, generator=torch.Generator().manual_seed(1))
    loss_of(flow, x[:8]).backward()  # warm-up: code paths, thread pool, parameter .grad buffers
    flow.zero_grad(set_to_none=False)
    result = peak_rss(lambda: loss_of(flow, x).backward())
    with SavedTensorMeter(exclude=flow.parameters()) as meter:
        loss_of(flow, x).backward()
    return {**result, "saved_bytes": meter.peak}


def measure_memory(config: str, mode: str, depth: int, batch: int, threads: int | None = None) -> dict:
    """``child`` in a fresh subprocess (one per configuration) with the default allocator."""
    threads = torch.get_num_threads() if threads is None else threads
    return child_json("benchmarks.memory", ["--child", config, mode, str(depth), str(batch)], threads)


def measure_times(depth: int, batch: int, repeats: int, method: str = "SymplecticEuler",
                  modes=(*MODES, GENERIC)) -> dict:
    """Median seconds of forward + backward and of the backward alone per mode (process CPU seconds
    beside the wall clock: the steadier measure on a shared machine), modes round-robin in alternating
    order."""
    flows = {mode: build(depth, mode, method=method) for mode in modes}
    x = torch.randn(batch, 2 * Q_DIM, generator=torch.Generator().manual_seed(1))
    total = {m: [] for m in modes}
    backward = {m: [] for m in modes}
    cpu = {m: [] for m in modes}
    items = list(flows.items())
    for r in range(repeats + 1):  # round 0 is a warm-up
        for mode, flow in items if r % 2 == 0 else reversed(items):
            flow.zero_grad(set_to_none=False)
            c0, t0 = time.process_time(), time.perf_counter()
            loss = loss_of(flow, x)
            t1 = time.perf_counter()
            loss.backward()
            t2, c2 = time.perf_counter(), time.process_time()
            del loss
            if r:
                total[mode].append(t2 - t0)
                backward[mode].append(t2 - t1)
                cpu[mode].append(c2 - c0)
    return {m: {"fwd_bwd_s": statistics.median(total[m]), "bwd_s": statistics.median(backward[m]),
                "fwd_bwd_cpu_s": statistics.median(cpu[m])} for m in modes}


def measure_accuracy(depth: int, batch: int) -> dict:
    plain, rev = build(depth, "plain"), build(depth, "reversible")
    x = torch.randn(batch, 2 * Q_DIM, generator=torch.Generator().manual_seed(1))
    grads = {}
    for name, flow in (("plain", plain), ("reversible", rev)):
        xr = x.clone().requires_grad_(True)
        loss_of(flow, xr).backward()
        grads[name] = [xr.grad] + [p.grad for p in flow.parameters()]
    rel = max(float((a - b).norm() / b.norm()) for a, b in zip(grads["reversible"], grads["plain"], strict=True))
    with torch.no_grad():
        back = plain.inverse(plain(x))
    return {"grad_rel_diff_float32": rel,
            "reconstruction_rel_err_float32": float((back - x).norm() / x.norm()),
            "eps_float32": torch.finfo(torch.float32).eps}


RUNNER = Runner("memory", __doc__, kind="benchmark", dtypes=("float32",), default_dtype="float32",
                 devices=("cpu",), threads=1)
RUNNER.parser.add_argument("--repeats", type=int, default=5, help="timed rounds per mode (default 5)")
RUNNER.parser.add_argument("--dense-depths", type=int, nargs="+", default=None,
                           help="depths of the Dense(64, 64) / RK4 memory rows "
                                "(default 10 100 1000; --quick 10 100)")
RUNNER.parser.add_argument("--child", nargs=4, metavar=("CONFIG", "MODE", "DEPTH", "BATCH"),
                           help=argparse.SUPPRESS)


def validate(args) -> None:
    check_int("--repeats", args.repeats, minimum=1)
    if args.dense_depths is not None:
        for depth in args.dense_depths:
            check_int("--dense-depths", depth, minimum=1, maximum=MAX_STEPS)


def main(argv=None) -> dict:
    args = RUNNER.parse(argv)
    if args.child:  # a measuring subprocess: one JSON line on stdout, no result file
        torch.set_num_threads(args.threads)
        config, mode, depth, batch = args.child
        print(json.dumps(child(config, mode, int(depth), int(batch))))
        return {}
    return RUNNER.main(run_benchmark, argv, validate=validate)


def run_benchmark(args, seed, out) -> dict:
    batch = 128 if args.quick else BATCH
    depths = (10, 100) if args.quick else (10, 100, 1000)
    deep = depths[-1]

    dense_depths = tuple(args.dense_depths or ((10, 100) if args.quick else (10, 100, 1000)))
    memory = {f"{mode}/{depth}": _measured("hamiltonian", mode, depth, batch) for mode in MODES for depth in depths}
    dense = {f"{mode}/{depth}": _measured("dense", mode, depth, DENSE_BATCH)
             for mode in DENSE_MODES for depth in dense_depths}
    times = {method: measure_times(deep, batch, args.repeats, method,
                                   (*MODES, GENERIC) if method == "SymplecticEuler" else ("plain", "reversible", GENERIC))
             for method in METHODS}
    result = {
        "config": {"field": "Hamiltonian", "method": "SymplecticEuler (memory and times), StormerVerlet (times)",
                   "weight_tied": True, "state_dim": 2 * Q_DIM, "width": WIDTH, "batch": batch, "h": H,
                   "dtype": "float32", "depths": list(depths),
                   "checkpoint_every": build(deep, "checkpoint").checkpoint_every, "quick": args.quick,
                   "torch_threads": args.threads, "allocator": "glibc defaults (no MALLOC_* settings)"},
        "memory_bytes": memory,
        "dense_config": {"field": "Dense(64, 64)", "method": "RK4", "weight_tied": True, "batch": DENSE_BATCH,
                         "h": H, "dtype": "float32", "depths": list(dense_depths),
                         "checkpoint_every": {d: build_dense(d, "checkpoint").checkpoint_every for d in dense_depths}},
        "dense_memory_bytes": dense,
        "times_s_at_deepest": times,
        "accuracy_at_deepest": measure_accuracy(deep, batch),
        "ratios": {**_ratios(memory, times, depths[0], deep), **_dense_ratios(dense, dense_depths)},
        "targets": {"reversible_deep_vs_shallow_memory_max": 1.5, "plain_growth_about": 100,
                    "reversible_vs_plain_time_max": 1.5},
        "machine": machine(),
    }
    _report(result, batch, deep)
    return result


def _measured(config: str, mode: str, depth: int, batch: int) -> dict:
    result = measure_memory(config, mode, depth, batch)
    print(f"  measured memory {config} {mode:<10} depth {depth:>5}", file=sys.stderr)
    return result


def _dense_ratios(dense: dict, depths) -> dict:
    return {f"dense: checkpoint_{d}_vs_plain_{d}_{key}": dense[f"checkpoint/{d}"][f"{key}_bytes"]
            / dense[f"plain/{d}"][f"{key}_bytes"] for d in depths for key in ("rss", "saved")}


def _ratios(memory: dict, times: dict, shallow: int, deep: int) -> dict:
    def ratio(a, b, key):
        return memory[a][key] / memory[b][key]

    out = {
        f"reversible_{deep}_vs_plain_{shallow}_rss": ratio(f"reversible/{deep}", f"plain/{shallow}", "rss_bytes"),
        f"reversible_{deep}_vs_reversible_{shallow}_rss": ratio(f"reversible/{deep}", f"reversible/{shallow}",
                                                               "rss_bytes"),
        f"reversible_{deep}_vs_plain_{shallow}_saved": ratio(f"reversible/{deep}", f"plain/{shallow}", "saved_bytes"),
        f"plain_{deep}_vs_plain_{shallow}_rss": ratio(f"plain/{deep}", f"plain/{shallow}", "rss_bytes"),
        f"plain_{deep}_vs_plain_{shallow}_saved": ratio(f"plain/{deep}", f"plain/{shallow}", "saved_bytes"),
        f"checkpoint_{deep}_vs_plain_{shallow}_rss": ratio(f"checkpoint/{deep}", f"plain/{shallow}", "rss_bytes"),
        f"checkpoint_{deep}_vs_plain_{deep}_rss": ratio(f"checkpoint/{deep}", f"plain/{deep}", "rss_bytes"),
    }
    for method, t in times.items():
        plain = t["plain"]
        for mode in t:
            if mode == "plain":
                continue
            out[f"{method}: {mode}_vs_plain_fwd_bwd_time"] = t[mode]["fwd_bwd_s"] / plain["fwd_bwd_s"]
            out[f"{method}: {mode}_vs_plain_fwd_bwd_cpu"] = t[mode]["fwd_bwd_cpu_s"] / plain["fwd_bwd_cpu_s"]
            out[f"{method}: {mode}_vs_plain_bwd_time"] = t[mode]["bwd_s"] / plain["bwd_s"]
    return out


def _report(result: dict, batch: int, deep: int) -> None:
    print(f"weight-tied Hamiltonian/SymplecticEuler, state dim {2 * Q_DIM}, width {WIDTH}, batch {batch}, float32; "
          "glibc's default allocator")
    _memory_table(result["memory_bytes"])
    print(f"\nweight-tied Dense({DENSE_DIM}, {DENSE_DIM})/RK4, batch {DENSE_BATCH}, float32")
    _memory_table(result["dense_memory_bytes"])
    for method, t in result["times_s_at_deepest"].items():
        print(f"\n{method}, depth {deep}: {'mode':<22}{'fwd+bwd (s)':>12}{'cpu (s)':>9}{'bwd (s)':>9}")
        for mode, v in t.items():
            print(f"{'':>{len(method) + len(str(deep)) + 9}}{mode:<22}{v['fwd_bwd_s']:>12.3f}"
                  f"{v['fwd_bwd_cpu_s']:>9.3f}{v['bwd_s']:>9.3f}")
    print()
    for key, value in result["ratios"].items():
        print(f"{key:<60}{value:>10.3f}")
    accuracy = result["accuracy_at_deepest"]
    print(f"reversible vs plain gradient, float32, depth {deep}: relative difference "
          f"{accuracy['grad_rel_diff_float32']:.2e}; reconstruction error {accuracy['reconstruction_rel_err_float32']:.2e}")


def _memory_table(rows: dict) -> None:
    mib = 2.0 ** 20
    print(f"{'mode':<12}{'depth':>6}{'saved (MiB)':>13}{'RSS growth (MiB)':>18}{'peak RSS (MiB)':>16}")
    for key, m in rows.items():
        mode, depth = key.split("/")
        print(f"{mode:<12}{depth:>6}{m['saved_bytes'] / mib:>13.2f}{m['rss_bytes'] / mib:>18.1f}"
              f"{m['peak_rss_bytes'] / mib:>16.1f}")


if __name__ == "__main__":
    run_cli(main)
