"""`fit`, the one optimisation loop of dynnets: phases of optimizer steps with checkpoints, exact resume, DDP,
time budget, restarts on stall, keep-best and monitoring, the same for every optimizer (``Stepper``). Per
step: one finiteness test of the loss and gradient (one host read) beyond a plain loop; everything else runs
only when asked for or due."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import CheckpointError, ConfigError, NonFiniteLossError
from ..io import remove_stale_temp_files
from . import distributed as D
from .checkpoint import check_payload, save_checkpoint
from .config import Options, split_options
from .data import BatchSource, move_batch, tensors_of
from .lm import LevenbergMarquardt
from .monitor import Clock, MonitorLog
from .phase import Phase
from .rng import capture_rng, restore_rng, seed_everything
from .state import PreparedResume, build_payload, settings
from .stepper import Outcome, TorchStepper, all_finite

_POSTFIX_SECONDS = 0.1  # the progress bar's loss/lr text is refreshed at most this often


@dataclass
class FitResult:
    """What `fit` did (docs/training.md). ``losses``: under DDP the mean over ranks (LM: the sum);
    ``steps_done`` is below the phases' total when the time budget stopped the run (``stopped_early``) or a
    Levenberg-Marquardt phase could not progress; ``monitor``: the monitor's records {"step", "phase",
    "seconds", "value"} of this call.
    """

    losses: list[float]
    steps_done: int
    seconds: float
    resumed_from: int | None = None
    stopped_early: bool = False
    checkpoint: Path | None = None
    end_loss: float | None = None
    train_seconds: float = 0.0
    monitor: list[dict] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan


class Training:
    """One run's state and loop; built by `fit` after every option has been checked."""

    def __init__(self, model, loss_fn, data, phases: tuple[Phase, ...], run: Options, info: D.DistInfo):
        self.model, self.loss_fn, self.phases, self.run, self.info = model, loss_fn, phases, run, info
        self.source = BatchSource(data)
        self.steppers = [
            LevenbergMarquardt(p, model, p.loss or loss_fn, run.checkpoint) if p.optimizer == "lm"
            else TorchStepper(p, model, p.loss or loss_fn, info.world_size > 1, run.checkpoint)
            for p in phases]
        self.losses: list[float] = []
        self.step = self.phase = self.phase_step = 0
        self.best = self.resumed_from = None

    def start(self, dev) -> None:
        """Resume from the checkpoint or seed a fresh run; then wrap the model for DDP."""
        run, info = self.run, self.info
        # recorded and compared by checkpoints only (after the dtype conversion); a run without one skips it
        self.settings = None if run.checkpoint is None else settings(
            model=self.model, loss_fn=self.loss_fn, data=self.source.data, phases=self.phases, seed=run.seed,
            keep_best=run.keep_best, extra=run.settings)
        if run.checkpoint is not None and info.is_main:
            remove_stale_temp_files(run.checkpoint)  # left by a writer that was killed
        # rank 0 decides whether to resume, so that every rank takes the same path even while a file system
        # catches up; every rank then checks the checkpoint and they agree before anyone applies it
        if D.broadcast_flag(run.checkpoint is not None and run.resume and run.checkpoint.exists()):
            error, prepared = None, None
            try:
                prepared = PreparedResume(run.checkpoint, self, info)
            except Exception as e:  # noqa: BLE001 - re-raised below, once every rank knows
                error = e
            if not D.all_agree(error is None):
                if prepared is not None:
                    prepared.undo()
                raise error or CheckpointError(f"checkpoint {run.checkpoint}: another rank could not use it")
            prepared.apply(self)
            self.resumed_from = self.step
        elif run.seed is not None:
            seed_everything(run.seed)
        self.model.train()
        self.net = D.wrap_ddp(self.model, dev) if info.world_size > 1 else self.model
        # a list of batches already on the device, with no dtype to cast to, is used as it is
        self.move = not (self.source.indexed and run.dtype is None and
                         all(t.device == dev for t in tensors_of(self.source.data)))

    def check_parameters(self) -> None:
        """NonFiniteLossError if an update left the parameters non-finite (before a checkpoint or the end)."""
        if not all_finite(self.model.parameters()):
            where = f"; the last checkpoint is {self.run.checkpoint}" if self.run.checkpoint else ""
            raise NonFiniteLossError(f"the parameters are not finite after step {self.step} (an update overflowed; "
                                     f"rule: finite parameters){where}")

    def write_checkpoint(self) -> None:
        self.check_parameters()
        records = D.gather_objects({"rng": capture_rng(), "data": self.source.state()})
        error = None
        if self.info.is_main:
            try:
                save_checkpoint(self.run.checkpoint, build_payload(self, records))
            except Exception as e:  # noqa: BLE001 - re-raised below, after telling the other ranks
                error = e
        # also a barrier: no rank runs ahead (e.g. into a new fit that looks for this file) before it exists
        if not D.all_agree(error is None):
            raise error or CheckpointError(f"checkpoint {self.run.checkpoint}: rank 0 failed to write it")

    def _take_step(self, stepper, dev) -> Outcome:
        batch = self.source.next(self.step)
        if self.move:
            batch = move_batch(batch, dev, self.run.dtype)
        snapshot = None
        if self.run.keep_best:
            snapshot = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        outcome = stepper.step(self.net, batch, self.step + 1)
        if snapshot is not None and (self.best is None or outcome.loss < self.best["loss"]):
            self.best = {"loss": outcome.loss, "model": snapshot}
        self.step, self.phase_step = self.step + 1, self.phase_step + 1
        self.losses.append(outcome.loss)
        return outcome

    def _stalled(self, phase: Phase) -> bool:
        rule, k = phase.stall, self.phase_step
        if rule is None or k % rule.every or k < 2 * rule.every:
            return False
        return self.losses[-1] > self.losses[-1 - rule.every] * (1.0 - rule.rtol)

    def train(self, dev, clock: Clock, log: MonitorLog, bar) -> tuple[bool, Outcome | None]:
        """Run the remaining phases, each until it ends or the time budget does; returns (stopped by the time
        budget, the last step's outcome).

        A finished phase hands over to the next (the checkpoint then holds no optimizer state); the last
        phase keeps its optimizer state when its steps are done, so a resumed run may extend it."""
        run, budget, last = self.run, self.run.time_budget, None
        if log.due(self.step):
            log.record(self.model, self.step, self._phase_name())
        while self.phase < len(self.phases):
            if self.phase_step == 0 and self.phase > 0 and self._loss_key(self.phase) != self._loss_key(self.phase - 1):
                self.best = None  # keep-best compares losses of one function only
            phase, stepper = self.phases[self.phase], self.steppers[self.phase]
            final, post = self.phase == len(self.phases) - 1, 0.0
            optional = phase.stall is not None or run.on_step is not None or log.monitor is not None
            while self.phase_step < phase.steps:
                last = self._take_step(stepper, dev)
                if bar is not None:
                    bar.update(1)
                    if time.perf_counter() >= post:
                        bar.set_postfix(loss=f"{last.loss:.4e}", lr=f"{stepper.lr:.2e}", phase=phase.name,
                                        refresh=False)
                        post = time.perf_counter() + _POSTFIX_SECONDS
                if optional:  # restart on stall, the on_step callback, the monitor
                    if self._stalled(phase):
                        stepper.reset()
                    if run.on_step is not None and self.info.is_main:
                        with clock.paused():
                            run.on_step(self.step, last.loss)
                    if log.due(self.step):
                        log.record(self.model, self.step, phase.name)
                out_of_time = budget is not None and D.broadcast_flag(clock.elapsed() >= budget)
                finished = last.done or self.phase_step >= phase.steps
                if last.done or (finished and not final):
                    self.phase, self.phase_step = self.phase + 1, 0
                due = finished or out_of_time or self.step % run.checkpoint_every == 0
                if run.checkpoint is not None and due:
                    with clock.paused():
                        self.write_checkpoint()
                if out_of_time and not (finished and final):
                    return True, last
                if finished:
                    break
            else:  # no step taken: a phase of zero steps, or the last phase already done
                if not final:
                    self.phase, self.phase_step = self.phase + 1, 0
            if final:  # the last phase returns only when its steps are done or it is done
                return False, last
        return False, last

    def _loss_key(self, i: int):
        p = self.phases[i]
        return id(p.loss or self.loss_fn), p.optimizer == "lm"

    def _phase_name(self) -> str:
        return self.phases[min(self.phase, len(self.phases) - 1)].name

    def end_loss(self, last: Outcome | None, dev) -> float | None:
        """The loss of the current parameters: known after an LM step, else evaluated for keep-best or an
        LM phase (full-batch data only; the random generators are left as they were)."""
        if last is not None and last.after is not None:
            return last.after
        stepper = self.steppers[-1]
        if not (self.run.keep_best or isinstance(stepper, LevenbergMarquardt)) or self.source.kind == "iterable":
            return None
        rng = capture_rng()
        try:
            batch = move_batch(self.source.next(max(self.step - 1, 0)), dev, self.run.dtype)
            return stepper.loss_of(self.net, batch)
        finally:
            restore_rng(rng)

    def finish(self, stopped: bool, last: Outcome | None, dev, clock: Clock, log: MonitorLog, t0: float) -> FitResult:
        self.check_parameters()
        end = self.end_loss(last, dev)
        if self.run.keep_best and self.best is not None and end is not None and self.best["loss"] < end:
            self.model.load_state_dict(self.best["model"])
            end = self.best["loss"]
        if log.monitor is not None:
            log.record(self.model, self.step, self._phase_name())
        return FitResult(losses=self.losses, steps_done=self.step, seconds=time.perf_counter() - t0,
                         resumed_from=self.resumed_from, stopped_early=stopped, checkpoint=self.run.checkpoint,
                         end_loss=end, train_seconds=clock.elapsed(), monitor=log.records)


def fit(model: torch.nn.Module, loss_fn: Callable, data=None, *, phases: list[Phase] | None = None,
        **options) -> FitResult:
    """Train ``model`` on ``loss_fn(model, batch)`` through ``phases``; see docs/training.md.

    model:   a torch.nn.Module (a :class:`dynnets.train.Ensemble` for a batched multi-start); moved to the
             run's device and dtype when they are given; set to train mode.
    loss_fn: ``loss_fn(model, batch) -> scalar tensor`` (a residual tensor for a Levenberg-Marquardt phase).
             Under DDP it receives the DistributedDataParallel wrapper and must call it.
    data:    None (batch=None every step), a re-iterable of batches such as a DataLoader (cycled over
             epochs), or a callable ``step -> batch`` (0-based step index).
    phases:  a list of :class:`dynnets.train.Phase` run in order; or one phase by the keywords
             ``steps, optimizer, lr, schedule``.
    options: the run options of docs/training.md (``config.Options``); ``on_step(step, loss)`` is called on
             rank 0 after each step.

    Raises ConfigError (bad options, before any work), NonFiniteLossError (before that step's update),
    CheckpointError / SettingsMismatchError (unusable checkpoint or other settings; nothing is loaded).
    """
    phases, run = split_options(model, loss_fn, data, phases, options)
    info = D.current()
    dev = D.local_device(run.device if run.device is not None else next(model.parameters()).device)
    training = Training(model, loss_fn, data, phases, run, info)  # may refuse a schedule: convert after
    if run.dtype is not None or any(t.device != dev for t in itertools.chain(model.parameters(), model.buffers())):
        model.to(device=dev, dtype=run.dtype)  # in place: the optimizers keep the same Parameter objects
    if run.checkpoint is not None:  # refuse now a model state that could not be written/read back later
        try:
            check_payload(model.state_dict(), "model")
        except CheckpointError as e:
            raise ConfigError(str(e)) from None
    t0 = time.perf_counter()
    training.start(dev)
    clock = Clock(run.timer)
    log = MonitorLog(run.monitor, clock)
    bar = tqdm(total=sum(p.steps for p in phases), initial=training.step, desc=run.desc or "fit", unit="step",
               dynamic_ncols=True) if run.progress and info.is_main else None
    with torch.enable_grad():
        try:
            stopped, last = training.train(dev, clock, log, bar)
        finally:
            if bar is not None:
                bar.close()
        return training.finish(stopped, last, dev, clock, log, t0)
