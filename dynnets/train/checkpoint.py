"""Checkpoint files: written atomically (``io.atomic_write``), verified before anything is read from them.

File layout (format version 1)::

    DYNNETS-CHECKPOINT\\n
    {"version": 1, "payload_bytes": N, "sha256": "<hex digest of the payload>"}\\n
    <N bytes: torch.save(payload)>

See docs/training.md.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import OrderedDict
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..io import atomic_write

MAGIC = b"DYNNETS-CHECKPOINT\n"
FORMAT_VERSION = 1
_MAX_HEADER = 4096

# What torch.load(weights_only=True) can rebuild (exact types: subclasses are not), checked at save time.
_LEAF_TYPES = (int, float, complex, bool, str, bytes, type(None), torch.dtype, torch.device, torch.Size,
               torch.Tensor, torch.nn.Parameter)


def check_payload(obj, where: str = "payload") -> None:
    """Raise CheckpointError if ``obj`` holds anything but tensors, numbers, strings and containers."""
    kind = type(obj)
    if kind in _LEAF_TYPES:
        return
    if kind in (dict, OrderedDict):
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise CheckpointError(f"checkpoint key {key!r} at {where} has type {type(key).__name__}; "
                                      "keys must be str or int")
            check_payload(value, f"{where}.{key}")
        return
    if kind in (list, tuple):
        for i, value in enumerate(obj):
            check_payload(value, f"{where}[{i}]")
        return
    raise CheckpointError(f"checkpoint value at {where} has type {kind.__module__}.{kind.__qualname__}, which "
                          "torch.load(weights_only=True) cannot read; store tensors, numbers, strings and "
                          "dict/list/tuple containers only")


def save_checkpoint(path, payload: dict) -> None:
    """Serialise ``payload`` (tensors, numbers, strings, dict/list/tuple) and write it atomically to ``path``."""
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint payload must be a dict, got {type(payload).__name__}")
    check_payload(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    header = json.dumps({"version": FORMAT_VERSION, "payload_bytes": len(body),
                         "sha256": hashlib.sha256(body).hexdigest()}, sort_keys=True).encode() + b"\n"
    atomic_write(path, lambda tmp: tmp.write_bytes(MAGIC + header + body))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read and verify a checkpoint written by :func:`save_checkpoint`; returns its payload.

    Raises CheckpointError (naming ``path``) when the file is missing, is not a dynnets checkpoint, was
    written by a newer format version, is truncated (fewer payload bytes than its header records) or
    corrupt (SHA-256 mismatch), or does not unpickle under ``weights_only=True``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path}: file does not exist") from None
    except OSError as e:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({e})") from None
    if not raw.startswith(MAGIC):
        raise CheckpointError(f"checkpoint {path}: not a dynnets checkpoint (the file does not start with "
                              f"{MAGIC!r}; it holds {len(raw)} bytes)")
    end = raw.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if end < 0:
        raise CheckpointError(f"checkpoint {path}: header line is missing or truncated")
    try:
        header = json.loads(raw[len(MAGIC):end])
        version, expected, digest = header["version"], header["payload_bytes"], header["sha256"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path}: header is corrupt ({e})") from None
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise CheckpointError(f"checkpoint {path}: format version {version!r} is not supported (this "
                              f"dynnets reads versions 1..{FORMAT_VERSION})")
    body = raw[end + 1:]
    if len(body) != expected:
        what = "truncated" if len(body) < expected else "has trailing bytes"
        raise CheckpointError(f"checkpoint {path}: {what}: header records {expected} payload bytes, the file "
                              f"holds {len(body)}")
    if hashlib.sha256(body).hexdigest() != digest:
        raise CheckpointError(f"checkpoint {path}: corrupt: SHA-256 of the payload does not match the "
                              "digest recorded in its header")
    try:
        payload = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the file cannot be used
        raise CheckpointError(f"checkpoint {path}: payload cannot be loaded with weights_only=True ({e})") \
            from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path}: payload is a {type(payload).__name__}, expected a dict")
    return payload
