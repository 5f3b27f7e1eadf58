"""Real processes: a run killed with SIGKILL resumes bitwise; torchrun DDP on 2 CPU processes matches one process.

Both start tests/train/_train_script.py with OMP_NUM_THREADS=1 and a timeout; each takes a few seconds (mostly
importing torch in the child processes).
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dynnets.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "tests" / "train" / "_train_script.py")
EPS = torch.finfo(torch.float64).eps
TIMEOUT = 60

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if sys.platform.startswith("linux") and Path("/sys/class/net/lo").exists():
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo on loopback: no dependence on the host's network
    return env


def _start(command):
    # own session: on a timeout the whole process group (torchrun and its workers) is killed, so no
    # orphaned worker keeps the pipes open or a port busy
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True)


def _kill_all(proc, pid_dir=None):
    """SIGKILL the process group we started and any torchrun workers (own sessions) that wrote pid files."""
    for pid_file in Path(pid_dir).glob("worker-*.pid") if pid_dir else []:
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait(proc, what, pid_dir=None):
    try:
        return proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_all(proc, pid_dir)
        out, err = proc.communicate()
        pytest.fail(f"{what} did not finish within {TIMEOUT} s\n{out}\n{err}")


def _finish(proc, what, pid_dir=None):
    out, err = _wait(proc, what, pid_dir)
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{out}\n{err}"
    return out


@pytest.mark.slow
def test_sigkill_after_checkpoint_then_resume_is_bitwise_identical(tmp_path):
    """2N steps in one process vs N steps, SIGKILL while training steps N+1.., then the same command again."""
    n = 30
    full, killed = tmp_path / "full.ckpt", tmp_path / "killed.ckpt"

    def command(path, *extra):
        return [sys.executable, SCRIPT, "resume", "--checkpoint", str(path), "--steps", str(2 * n),
                "--every", str(n), *extra]

    reference = _start(command(full))
    victim = _start(command(killed, "--slow-after", str(n)))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not killed.exists():  # appears atomically, once, at step n (the next write is at 2n)
            assert victim.poll() is None, f"victim exited early:\n{victim.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint within the timeout"
            time.sleep(0.02)
        time.sleep(0.3)  # let it run a few of the (100 ms) steps after n; it would need 3 s to reach 2n
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=TIMEOUT)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    assert victim.returncode == -signal.SIGKILL
    assert load_checkpoint(killed)["step"] == n, "the kill did not land between the checkpoints at n and 2n"

    resumed = _start(command(killed))
    assert "resumed_from 30" in _finish(resumed, "resumed run")
    assert "resumed_from None" in _finish(reference, "reference run")

    a, b = load_checkpoint(full), load_checkpoint(killed)
    assert a["step"] == b["step"] == 2 * n
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert torch.equal(a["losses"], b["losses"])
    assert a["stepper"]["optimizer"]["state"].keys() == b["stepper"]["optimizer"]["state"].keys()
    for key, state in a["stepper"]["optimizer"]["state"].items():
        for field, value in state.items():
            assert torch.equal(value, b["stepper"]["optimizer"]["state"][key][field]), (key, field)
    assert a["stepper"]["scheduler"] == b["stepper"]["scheduler"]
    # the run did train: parameters moved between step n and 2n (so equality is not trivial)
    assert not torch.equal(a["losses"][:n], a["losses"][n:])


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """K=20 SGD steps (lr 0.1, float64 MLP, global batch 32 of 128 samples, 5 epochs) on 2 gloo processes
    vs one process. Tolerance: C * K * eps * scale with C = 8 and scale = max(1, max |theta|): the two runs
    differ only in the order of floating-point sums (local means averaged over ranks vs one mean).
    Negative control: one rank training alone on its half of every global batch (DDP without gradient
    averaging) ends >= 1e6 times further away. The same torchrun job also stops a second run at step 13 and
    resumes it from its checkpoint: the result equals the straight DDP run bitwise. After shutdown_distributed
    no thread of the process group is left on either rank."""
    k = 20
    ddp_out, single_out, control_out = tmp_path / "ddp.ckpt", tmp_path / "single.ckpt", tmp_path / "control.ckpt"
    run_ckpt, split_out = tmp_path / "run.ckpt", tmp_path / "split-result.ckpt"
    torchrun = _start(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
         SCRIPT, "ddp", "--out", str(ddp_out), "--steps", str(k), "--checkpoint", str(run_ckpt),
         "--split-out", str(split_out), "--split-checkpoint", str(tmp_path / "split.ckpt"), "--stop-at", "13",
         "--pid-dir", str(tmp_path), "--lm-out", str(tmp_path / "lm-ddp.ckpt")])
    single = _start([sys.executable, SCRIPT, "ddp", "--out", str(single_out), "--steps", str(k),
                     "--control-out", str(control_out), "--lm-out", str(tmp_path / "lm-one.ckpt")])
    _finish(single, "single-process run")
    log = _finish(torchrun, "torchrun", pid_dir=tmp_path)
    # shutdown_distributed freed the process group on both ranks: every thread it started (gloo's I/O loop and
    # worker threads) has ended, so none can drop a tensor while the interpreter finalises (which aborted a
    # rank now and then: 'terminate called without an active exception'). N > 0: the check is not vacuous.
    if Path("/proc/self/task").is_dir():
        left = re.findall(r"group_threads_left (\d+) of (\d+)", log)
        assert len(left) == 2 and all(still == "0" and int(started) > 0 for still, started in left), log

    ddp, one, control = (load_checkpoint(p) for p in (ddp_out, single_out, control_out))
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    scale = max(1.0, max(v.abs().max().item() for v in one["params"].values()))
    tol = 8 * k * EPS * scale
    diff = max((ddp["params"][n] - one["params"][n]).abs().max().item() for n in one["params"])
    control_diff = max((control["params"][n] - one["params"][n]).abs().max().item() for n in one["params"])
    assert diff <= tol, (diff, tol)
    assert control_diff >= 1e6 * max(diff, tol / 8), (control_diff, diff)
    assert (ddp["losses"] - one["losses"]).abs().max().item() <= tol
    # only rank 0 wrote the training checkpoint; it records both ranks' RNG and data positions
    run = load_checkpoint(run_ckpt)
    assert run["step"] == k and run["world_size"] == 2 and len(run["ranks"]) == 2
    assert [r["data"]["epoch"] for r in run["ranks"]] == [4, 4]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    # DDP resume is exact too: stopped at step 13 (mid-epoch) and resumed to k == straight k, bitwise
    split = load_checkpoint(split_out)
    assert split["resumed_from"] == 13
    assert all(torch.equal(split["params"][n], ddp["params"][n]) for n in ddp["params"])
    assert torch.equal(split["losses"], ddp["losses"])
    # Levenberg-Marquardt, residuals sharded over the 2 ranks (J^T J, J^T r and the losses summed over ranks)
    # equals one process on all residuals up to the order of the sums: 6 iterations, tolerance 64 * 6 * eps
    # * scale; one rank's half alone (nothing summed) ends >= 1e6 times further away
    lm_ddp, lm_one, lm_half = (load_checkpoint(tmp_path / f)["params"] for f in
                               ("lm-ddp.ckpt", "lm-one.ckpt", "lm-one.ckpt.control"))
    scale = max(1.0, max(v.abs().max().item() for v in lm_one.values()))
    lm_diff = max((lm_ddp[n] - lm_one[n]).abs().max().item() for n in lm_one)
    lm_control = max((lm_half[n] - lm_one[n]).abs().max().item() for n in lm_one)
    assert lm_diff <= 64 * 6 * EPS * scale, lm_diff
    assert lm_control >= 1e6 * max(lm_diff, EPS), (lm_control, lm_diff)


@pytest.mark.slow
def test_an_error_on_one_rank_ends_the_torchrun_job_promptly_with_that_error(tmp_path):
    """Rank 1 raises right after init_distributed while rank 0 starts training; both call shutdown_distributed
    in a finally. Shutting down while an exception propagates skips the barrier (rank 0 is inside another
    collective and would never meet it): the job fails with rank 1's own error, well before the 60 s collective
    timeout that a barrier on the error path waited for (then reporting a gloo timeout on top of the error)."""
    torchrun = _start(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
         SCRIPT, "ddp", "--out", str(tmp_path / "ddp.ckpt"), "--steps", "20", "--checkpoint",
         str(tmp_path / "run.ckpt"), "--fail-on-rank", "1", "--pid-dir", str(tmp_path)])
    out, err = _wait(torchrun, "torchrun with a failing rank", pid_dir=tmp_path)
    assert torchrun.returncode != 0, f"the job succeeded although rank 1 raised:\n{out}\n{err}"
    assert "RuntimeError: deliberate failure on rank 1" in err, err
    assert "Timed out" not in err and "terminate called" not in err, err
