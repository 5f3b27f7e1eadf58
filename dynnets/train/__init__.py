"""Training runtime: the one optimisation loop `fit` (phases of Adam, SGD, L-BFGS or Levenberg-Marquardt;
checkpoints that record the run's settings and resume exactly; DDP under torchrun; time budgets; restarts
on stall; keep-best; monitoring), batched multi-start (`Ensemble`) and validation-based selection (`choose`).
See docs/training.md for phases, Levenberg-Marquardt, multi-start, resuming a run and several processes.
"""

from ..errors import CheckpointError, ConfigError, DivergenceError, NonFiniteLossError, SettingsMismatchError
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import (
                          DistInfo,
                          all_reduce_mean,
                          all_reduce_sum,
                          init_distributed,
                          is_main_process,
                          shard_loader,
                          shutdown_distributed,
                          wrap_ddp,
)
from .ensemble import Ensemble
from .loop import FitResult, fit
from .monitor import Monitor
from .phase import Phase, Stall
from .rng import seed_everything
from .select import Choice, choose, divergence

__all__ = [
    "CheckpointError", "Choice", "ConfigError", "DistInfo", "DivergenceError", "Ensemble", "FitResult", "Monitor",
    "NonFiniteLossError", "Phase", "SettingsMismatchError", "Stall", "all_reduce_mean", "all_reduce_sum", "choose",
    "divergence", "fit", "init_distributed", "is_main_process", "load_checkpoint", "save_checkpoint",
    "seed_everything", "shard_loader", "shutdown_distributed", "wrap_ddp",
]
