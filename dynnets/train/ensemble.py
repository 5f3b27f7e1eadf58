"""Batched multi-start: independent models trained as one batched computation. Parameters are stacked
(torch.func.stack_module_state) and the members vectorised with vmap; an elementwise optimizer takes on every
member the step it would take alone, while L-BFGS and LM see one model (docs/training.md, "Batched multi-start").
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch.func import functional_call, stack_module_state, vmap

from ..checks import check_int
from ..errors import ConfigError


class Ensemble(torch.nn.Module):
    """``members`` (modules of one architecture) as stacked parameters ``stacked[i]`` of shape
    (members, *shape of parameter i); the architecture is kept as a parameter-free template."""

    def __init__(self, members: Sequence[torch.nn.Module]):
        super().__init__()
        members = list(members)
        if not members or not all(isinstance(m, torch.nn.Module) for m in members):
            raise ConfigError("Ensemble needs a non-empty list of torch.nn.Module members")
        shapes = {tuple((n, tuple(p.shape)) for n, p in m.named_parameters()) for m in members}
        if len(shapes) != 1:
            raise ConfigError("Ensemble members must have the same parameter names and shapes")
        params, buffers = stack_module_state(members)
        self.names, self.size = list(params), len(members)
        self.stacked = torch.nn.ParameterList([torch.nn.Parameter(params[n].detach().clone()) for n in self.names])
        self.buffer_names = list(buffers)
        for i, n in enumerate(self.buffer_names):
            self.register_buffer(f"stacked_buffer_{i}", buffers[n].detach().clone())
        # the template is not a submodule: it lives on the meta device and is never moved or trained
        self._template = [copy.deepcopy(members[0]).to("meta")]

    @property
    def template(self) -> torch.nn.Module:
        """The members' architecture on the meta device (for torch.func.functional_call)."""
        return self._template[0]

    def extra_repr(self) -> str:
        return f"members={self.size}, template={self._template[0]!r}"

    def params(self) -> dict[str, torch.Tensor]:
        """{name: stacked tensor} of parameters and buffers, the leading dimension indexing the members."""
        out = dict(zip(self.names, self.stacked, strict=True))
        out.update({n: getattr(self, f"stacked_buffer_{i}") for i, n in enumerate(self.buffer_names)})
        return out

    def call(self, params: dict, *args, **kwargs):
        """The template module evaluated with one member's ``params`` (inside :meth:`map`)."""
        return functional_call(self._template[0], params, args, kwargs)

    def map(self, fn: Callable, *args, in_dims=None):
        """``fn(member_params, *args)`` for every member, vectorised; ``args`` are shared by all members
        unless ``in_dims`` (one entry per arg: 0 = split along the leading dimension, None = shared) says
        otherwise. Returns the stacked results."""
        dims = (0, *((None,) * len(args) if in_dims is None else tuple(in_dims)))
        return vmap(fn, in_dims=dims)(self.params(), *args)

    def forward(self, *args):
        """Every member applied to the same inputs: (members, ...)."""
        return self.map(lambda p, *a: self.call(p, *a), *args)

    def member(self, i: int) -> torch.nn.Module:
        """Member ``i`` as an ordinary module (a copy holding its trained parameters)."""
        i = check_int("member index", i, minimum=0, maximum=self.size - 1)
        module = copy.deepcopy(self._template[0]).to_empty(device=self.stacked[0].device)
        module.load_state_dict({n: t[i].detach().clone() for n, t in self.params().items()})
        return module
