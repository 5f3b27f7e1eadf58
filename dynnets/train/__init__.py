"""Training runtime: `fit`, atomic checkpoints with exact resume, DDP under torchrun.

    from dynnets.train import fit
    result = fit(model, loss_fn, loader, steps=2000, checkpoint="runs/a.ckpt", checkpoint_every=200)

See docs/training.md for resuming a run and training on several processes.
"""

from ..errors import CheckpointError, ConfigError, NonFiniteLossError
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import (
                          DistInfo,
                          init_distributed,
                          is_main_process,
                          shard_loader,
                          shutdown_distributed,
                          wrap_ddp,
)
from .loop import FitResult, fit
from .rng import capture_rng, restore_rng, seed_everything

__all__ = [
    "CheckpointError", "ConfigError", "DistInfo", "FitResult", "NonFiniteLossError", "capture_rng", "fit",
    "init_distributed", "is_main_process", "load_checkpoint", "restore_rng", "save_checkpoint", "seed_everything",
    "shard_loader", "shutdown_distributed", "wrap_ddp",
]
