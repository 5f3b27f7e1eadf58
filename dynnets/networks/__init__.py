"""Ready-made networks composed of dynnets steps (each a ``Flow`` whose guarantees are derived from its
steps, as for any hand-built one)."""

from .sympnet import sympnet

__all__ = ["sympnet"]
