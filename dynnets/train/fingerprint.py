"""The run fingerprint: a description of everything that defines a training run, stored in its checkpoints.

A resumed run must be the run that wrote the checkpoint: same model (its module tree with every setting
that is not a parameter, e.g. activations, step sizes held as attributes or buffers), same parameter names,
shapes and dtypes, same data, same phases (optimizer, lr, options, schedule, steps, clipping, stall rule,
loss), same seed, same loss. Each setting is reduced to a short text (a SHA-256 digest for tensors and long
descriptions); :func:`compare` names the first setting that differs.

Objects are described structurally, never by ``repr`` with a memory address: tensors by shape, dtype and a
digest of their bytes; functions by qualified name, a digest of their bytecode and the values they close
over (so a loss that captures its data tensors fingerprints the data); modules by class, their simple
attributes, buffers and children; other objects by their class name only.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import numbers
import sys

import torch

from ..errors import CheckpointError

_DEPTH = 6
_SHORT = 20000  # descriptions longer than this are stored as their digest


def tensor_digest(t: torch.Tensor) -> str:
    t = t.detach()
    if t.device.type == "meta":
        return f"meta{tuple(t.shape)}"
    data = t.cpu().contiguous()
    if data.dtype == torch.bfloat16:
        data = data.view(torch.int16)
    return hashlib.sha256(data.numpy().tobytes() if data.numel() else b"").hexdigest()[:16]


def _module_name(fn) -> str:
    """The module a function was defined in, by its import name: a script run as ``python -m pkg.mod`` defines
    its functions in ``__main__``, which is named by its spec (``pkg.mod``), so that the same run started as a
    module or imported (a test, ``run_all``, a notebook) has the same fingerprint."""
    module = getattr(fn, "__module__", None) or "?"
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            return spec.name
    return module


def _describe_function(fn, depth: int) -> str:
    code = getattr(fn, "__code__", None)
    name = f"{_module_name(fn)}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    if code is None:
        return name
    digest = hashlib.sha256(code.co_code).hexdigest()[:12]
    cells = [c.cell_contents for c in (fn.__closure__ or ()) if _filled(c)]
    inner = [describe(v, depth - 1) for v in (*cells, *(fn.__defaults__ or ()))]
    return f"{name}[{digest}]({', '.join(inner)})"


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises ValueError
    except ValueError:
        return False
    return True


def _describe_module(m: torch.nn.Module, depth: int) -> str:
    attrs = [f"{k}={describe(v, depth - 1)}" for k, v in sorted(vars(m).items())
             if not k.startswith("_") and k != "training"]
    buffers = [f"{k}={describe(v, depth - 1)}" for k, v in m._buffers.items() if v is not None]
    children = [f"{k}:{describe(c, depth - 1)}" for k, c in m._modules.items() if c is not None]
    return f"{type(m).__qualname__}({m.extra_repr()}; {', '.join(attrs + buffers)}; [{', '.join(children)}])"


def describe(obj, depth: int = _DEPTH) -> str:
    """A stable text for ``obj`` (see the module docstring)."""
    if depth <= 0:
        return type(obj).__qualname__
    if obj is None or isinstance(obj, (bool, str, torch.dtype, torch.device)):
        return repr(obj)
    if isinstance(obj, numbers.Number):
        return repr(obj)
    if isinstance(obj, torch.Tensor):
        return f"tensor{tuple(obj.shape)}{str(obj.dtype)[6:]}:{tensor_digest(obj)}"
    if isinstance(obj, torch.nn.Module):
        return _describe_module(obj, depth)
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(describe(v, depth - 1) for v in obj) + "]"
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{k!r}: {describe(v, depth - 1)}" for k, v in sorted(obj.items(), key=repr)) + "}"
    if isinstance(obj, functools.partial):
        return f"partial({describe(obj.func, depth - 1)}, {describe(obj.args, depth - 1)}, " \
               f"{describe(obj.keywords, depth - 1)})"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return type(obj).__qualname__ + describe({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)},
                                                 depth - 1)
    if callable(obj) and hasattr(obj, "__code__"):
        return _describe_function(obj, depth)
    if hasattr(obj, "__func__") and hasattr(obj, "__self__"):  # a bound method: its function and object
        return f"{_describe_function(obj.__func__, depth)}@{type(obj.__self__).__qualname__}"
    return type(obj).__qualname__


def _short(text: str) -> str:
    return text if len(text) <= _SHORT else "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_data(data) -> str:
    """The data of a run: None, a callable (described), a DataLoader (its dataset, batch size, sampler)."""
    if isinstance(data, torch.utils.data.DataLoader):
        dataset = data.dataset
        inner = describe(dataset.tensors) if isinstance(dataset, torch.utils.data.TensorDataset) else \
            describe(dataset)
        return f"DataLoader({inner}, batch_size={data.batch_size}, drop_last={data.drop_last}, " \
               f"sampler={type(data.sampler).__name__})"
    return describe(data)


def fingerprint(*, model, loss_fn, data, phases, seed, keep_best) -> dict[str, str]:
    """{setting name: short description} of one run."""
    out = {
        "dtype": ", ".join(sorted({str(p.dtype) for p in model.parameters()})),
        "model": _short(describe(model, _DEPTH + 4)),
        "parameters": _short(describe([(n, tuple(p.shape), str(p.dtype), p.requires_grad)
                                       for n, p in model.named_parameters()])),
        "data": _short(describe_data(data)),
        "loss": _short(describe(loss_fn)),
        "seed": repr(seed),
        "keep_best": repr(keep_best),
        "phases": repr(len(phases)),
    }
    for i, p in enumerate(phases, 1):
        opt = p.optimizer if isinstance(p.optimizer, str) else type(p.optimizer).__name__
        out.update({
            f"phase {i} optimizer": opt, f"phase {i} lr": repr(p.lr),
            f"phase {i} options": _short(describe(dict(p.options))),
            f"phase {i} schedule": _short(describe(p.schedule)),
            f"phase {i} loss": _short(describe(p.loss)),
            f"phase {i} clip_grad_norm": repr(p.clip_grad_norm), f"phase {i} stall": describe(p.stall),
        })
        if i < len(phases):  # where the next phase starts; the last phase may be extended (a longer run)
            out[f"phase {i} steps"] = repr(p.steps)
    return out


def compare(stored, current: dict[str, str], where: str) -> None:
    """CheckpointError naming the first setting in which the checkpoint's run differs from this one."""
    if not isinstance(stored, dict):
        raise CheckpointError(f"{where}: it holds no run fingerprint (written by an older dynnets?); pass "
                              "resume=False to start over")
    for key in (*current, *(k for k in stored if k not in current)):
        old, new = stored.get(key, "<absent>"), current.get(key, "<absent>")
        if old != new:
            raise CheckpointError(f"{where}: written by another run: its {key} differs ({_difference(old, new)}) "
                                  "(rule: resume only the run that wrote it; pass resume=False to start over)")


def _difference(old: str, new: str, width: int = 60) -> str:
    """The two texts around their first difference, e.g. 'checkpoint ...batch_size=8..., this run ...=20...'."""
    if not isinstance(old, str):
        old = repr(old)
    k = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    lo = max(0, k - width // 2)

    def cut(text: str) -> str:
        part = text[lo:lo + width]
        return ("..." if lo else "") + part + ("..." if lo + width < len(text) else "")

    return f"checkpoint {cut(old)}, this run {cut(new)}"
