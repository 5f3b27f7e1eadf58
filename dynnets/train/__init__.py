"""Training runtime: the one optimisation loop `fit` (module ``loop``), batched multi-start (`Ensemble`) and
validation-based selection (`choose`). See docs/training.md.
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
