"""`fit`: the training loop every experiment uses (optimizer, schedule, clipping, checkpoints, DDP)."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import CheckpointError, ConfigError, NonFiniteLossError, ShapeError
from . import distributed as D
from .checkpoint import check_payload, load_checkpoint, remove_stale_temp_files, save_checkpoint
from .config import FitConfig, validate_fit_config
from .data import BatchSource, move_batch
from .rng import capture_rng, restore_rng, seed_everything
from .state import apply_payload, build_payload, check_payload_fits


@dataclass
class FitResult:
    """What `fit` did.

    losses:       loss at the start of every step (before its update), over the whole run including the
                  steps done before a resume; under DDP the mean over ranks.
    steps_done:   the step counter at exit (== steps unless time_budget stopped the run early).
    seconds:      wall time of this call.
    resumed_from: the checkpoint's step when this call resumed, else None.
    """

    losses: list[float]
    steps_done: int
    seconds: float
    resumed_from: int | None = None
    stopped_early: bool = False
    checkpoint: Path | None = None
    lr_history: list[float] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan


def _make_optimizer(cfg: FitConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if isinstance(cfg.optimizer, torch.optim.Optimizer):
        return cfg.optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    return torch.optim.LBFGS(params, lr=cfg.lr, **cfg.lbfgs_options)


def _make_scheduler(schedule, optimizer):
    if schedule is None:
        return None
    scheduler = schedule(optimizer)
    if not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
        raise ConfigError(f"schedule(optimizer) returned {type(scheduler).__name__}, not a "
                          "torch.optim.lr_scheduler.LRScheduler")
    if scheduler.optimizer is not optimizer:
        raise ConfigError("schedule(optimizer) returned a scheduler bound to a different optimizer")
    return scheduler


def _scalar_loss(loss, step: int) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor):
        raise ConfigError(f"loss_fn returned {type(loss).__name__} at step {step}, expected a scalar tensor")
    if loss.numel() != 1:
        raise ShapeError(f"loss_fn returned a tensor of shape {tuple(loss.shape)} at step {step}, expected a "
                         "scalar")
    if not loss.requires_grad:
        raise ConfigError(f"the loss at step {step} does not depend on any trainable parameter "
                          "(loss.requires_grad is False)")
    return loss.reshape(())


def _nonfinite(value: float, step: int, checkpoint) -> NonFiniteLossError:
    where = f"; the last checkpoint is {checkpoint}" if checkpoint else ""
    return NonFiniteLossError(f"loss is {value} at step {step} (rule: a finite loss); the parameters are left "
                              f"as they were before that step{where}")


def fit(model: torch.nn.Module, loss_fn: Callable, data=None, *, steps: int, optimizer="adam", lr=None,
        schedule=None, clip_grad_norm=None, checkpoint=None, checkpoint_every: int = 100, resume: bool = True,
        progress: bool = True, device="cpu", dtype=None, seed=None, lbfgs_options=None, time_budget=None,
        desc=None, ddp: bool | None = None, on_step: Callable | None = None,
        on_checkpoint: Callable | None = None) -> FitResult:
    """Train ``model`` for ``steps`` optimizer steps on ``loss_fn(model, batch)``.

    model:      a torch.nn.Module; moved to ``device`` and, when ``dtype`` is given, converted to it; set
                to train mode.
    loss_fn:    ``loss_fn(model, batch) -> scalar tensor``. Under DDP it receives the
                DistributedDataParallel wrapper and must call it (``model(x)``) so gradients are averaged.
    data:       None (batch=None every step), a re-iterable of batches such as a DataLoader (cycled over
                epochs), or a callable ``step -> batch`` (0-based step index). Tensors in a batch are
                moved to ``device``, floating ones cast to ``dtype``.
    optimizer:  "adam" | "sgd" | "lbfgs" | a torch.optim.Optimizer built on ``model.parameters()``.
                One step is one ``optimizer.step`` call; for L-BFGS that is one call with its closure, i.e.
                up to ``max_iter`` (torch default 20) iterations.
    lr:         learning rate of a named optimizer; default 1e-3 for adam/sgd, 1.0 for lbfgs. Must be None
                with an optimizer instance (its own lr is used).
    schedule:   None or ``optimizer -> LRScheduler``; stepped once per step (ReduceLROnPlateau gets the
                loss). Its state is saved in checkpoints.
    clip_grad_norm: clip the global gradient 2-norm to this value before every update.
    checkpoint: a file path. Written atomically every ``checkpoint_every`` steps, at the end and when
                ``time_budget`` stops the run; with ``resume=True`` an existing file is resumed from, so
                running the same command again continues an interrupted run exactly (bitwise on CPU).
                With ``resume=False`` an existing file is ignored and overwritten.
    lbfgs_options: keyword arguments of torch.optim.LBFGS (default line_search_fn="strong_wolfe").
    seed:       seeds python, numpy and torch at the start of a fresh run (a resumed run restores the
                generators from the checkpoint instead).
    time_budget: seconds; stop (and checkpoint) after the first step that ends past it.
    ddp:        None = use DistributedDataParallel when a process group with more than one rank is
                initialised (see dynnets.train.init_distributed); True = require it; False = never.
    on_step(step, loss), on_checkpoint(step, path): called on rank 0 after each step / checkpoint write.

    Bad options raise ConfigError before any work; a non-finite loss raises NonFiniteLossError before the
    update of that step; a checkpoint that cannot be used raises CheckpointError and nothing is loaded.
    """
    cfg = validate_fit_config(model=model, loss_fn=loss_fn, data=data, steps=steps, optimizer=optimizer, lr=lr,
                              schedule=schedule, clip_grad_norm=clip_grad_norm, checkpoint=checkpoint,
                              checkpoint_every=checkpoint_every, resume=resume, progress=progress,
                              device=device, dtype=dtype, seed=seed, lbfgs_options=lbfgs_options,
                              time_budget=time_budget, desc=desc)
    if ddp not in (None, True, False):
        raise ConfigError(f"ddp={ddp!r} must be None, True or False")
    for name, cb in (("on_step", on_step), ("on_checkpoint", on_checkpoint)):
        if cb is not None and not callable(cb):
            raise ConfigError(f"{name} must be None or callable, got {type(cb).__name__}")
    info = D.current()
    if ddp is True and info.world_size < 2:
        raise ConfigError("ddp=True but no process group with more than one rank is initialised (rule: start "
                          "with torchrun and call dynnets.train.init_distributed() first)")
    use_ddp = info.world_size > 1 if ddp is None else ddp
    dev = D.local_device(cfg.device)

    model.to(device=dev, dtype=cfg.dtype)
    opt = _make_optimizer(cfg, model)
    scheduler = _make_scheduler(schedule, opt)
    is_lbfgs = isinstance(opt, torch.optim.LBFGS)
    source = BatchSource(data)
    if cfg.checkpoint is not None:  # refuse now a state that could not be written/read back later
        try:
            check_payload(build_payload(step=0, model=model, optimizer=opt, scheduler=scheduler, losses=[],
                                        world_size=info.world_size, ranks=[{"rng": capture_rng(), "data": {}}]))
        except CheckpointError as e:
            raise ConfigError(str(e)) from None

    losses: list[float] = []
    start, resumed_from = 0, None
    if cfg.checkpoint is not None and cfg.resume and cfg.checkpoint.exists():
        start, losses = _resume(cfg, model, opt, scheduler, source, info)
        resumed_from = start
    elif cfg.seed is not None:
        seed_everything(cfg.seed)
    if cfg.checkpoint is not None and info.is_main:
        remove_stale_temp_files(cfg.checkpoint)

    model.train()
    net = D.wrap_ddp(model, dev) if use_ddp else model
    lr_history: list[float] = []
    t0 = time.perf_counter()
    step, stopped_early = start, False
    bar = tqdm(total=cfg.steps, initial=start, desc=cfg.desc or "fit", unit="step", dynamic_ncols=True,
               disable=not (cfg.progress and info.is_main))

    def write_checkpoint():
        records = D.gather_objects({"rng": capture_rng(), "data": source.state()})
        if info.is_main:
            save_checkpoint(cfg.checkpoint, build_payload(step=step, model=model, optimizer=opt,
                                                          scheduler=scheduler, losses=losses,
                                                          world_size=info.world_size, ranks=records))
            if on_checkpoint is not None:
                on_checkpoint(step, cfg.checkpoint)

    try:
        while step < cfg.steps:
            batch = move_batch(source.next(step), dev, cfg.dtype)
            value = _take_step(net, loss_fn, batch, opt, is_lbfgs, cfg, step + 1, use_ddp)
            step += 1
            losses.append(value)
            lr_history.append(float(opt.param_groups[0]["lr"]))
            if scheduler is not None:
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(value)
                else:
                    scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4e}", lr=f"{opt.param_groups[0]['lr']:.2e}", refresh=False)
            if on_step is not None and info.is_main:
                on_step(step, value)
            out_of_time = False
            if cfg.time_budget is not None:
                out_of_time = D.broadcast_flag(time.perf_counter() - t0 >= cfg.time_budget)
            if cfg.checkpoint is not None and (step % cfg.checkpoint_every == 0 or step == cfg.steps
                                               or out_of_time):
                write_checkpoint()
            if out_of_time and step < cfg.steps:
                stopped_early = True
                break
    finally:
        bar.close()
    return FitResult(losses=losses, steps_done=step, seconds=time.perf_counter() - t0, resumed_from=resumed_from,
                     stopped_early=stopped_early, checkpoint=cfg.checkpoint, lr_history=lr_history)


def _take_step(net, loss_fn, batch, opt, is_lbfgs: bool, cfg: FitConfig, step: int, use_ddp: bool) -> float:
    """One optimizer step; returns the loss before the update (mean over ranks under DDP)."""
    params = [p for group in opt.param_groups for p in group["params"]]

    def evaluate() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = _scalar_loss(loss_fn(net, batch), step)
        loss.backward()
        if cfg.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
        # every rank must see the same loss: L-BFGS's line search branches on it
        return D.all_reduce_mean(loss) if use_ddp else loss.detach()

    if is_lbfgs:
        first = []

        def closure():
            loss = evaluate()
            if not first:
                first.append(float(loss))
                if not math.isfinite(first[0]):
                    raise _nonfinite(first[0], step, cfg.checkpoint)
            return loss

        opt.step(closure)
        return first[0]
    value = float(evaluate())
    if not math.isfinite(value):
        raise _nonfinite(value, step, cfg.checkpoint)
    opt.step()
    return value


def _resume(cfg: FitConfig, model, opt, scheduler, source: BatchSource, info: D.DistInfo):
    """Check everything, replay the data, then apply: a checkpoint that does not fit changes nothing."""
    path = cfg.checkpoint
    payload = load_checkpoint(path, map_location="cpu")
    check_payload_fits(payload, path=path, model=model, optimizer=opt, scheduler=scheduler, steps=cfg.steps)
    ranks = payload["ranks"]
    if len(ranks) != info.world_size:
        warnings.warn(f"checkpoint {path} was written by {len(ranks)} process(es), this run has "
                      f"{info.world_size}: data order and random streams will differ from an uninterrupted run",
                      stacklevel=3)
    record = ranks[info.rank % len(ranks)]
    source.check_state(record["data"], f"checkpoint {path}")
    before = capture_rng()
    try:
        source.restore(record["data"], f"checkpoint {path}")
    except BaseException:
        restore_rng(before)
        raise
    losses = apply_payload(payload, model=model, optimizer=opt, scheduler=scheduler)
    restore_rng(record["rng"])
    return payload["step"], losses
