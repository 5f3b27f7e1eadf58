"""Which seeds an experiment's ``--out`` directory holds, where each one lives, and the one rule for adding
seeds to it.

One seed: D/metrics.json and its files in D; several: D/seed_S/ each and D/metrics.json the summary. A
seed is finished when its metrics.json (written last, with the settings and ``files``) exists. A run adds
its seeds (``plan``): finished ones with identical settings are skipped, a lone seed moves to D/seed_S when
a second joins, results of other settings are refused naming the difference (removed with ``overwrite``).
See docs/architecture.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..io import write_json

__all__ = ["METRICS", "Plan", "plan", "seed_files", "snapshot"]

METRICS = "metrics.json"
_SEED_DIR = re.compile(r"seed_(\d+)")


@dataclass
class _Stored:
    """One finished seed as found in D: where it lives (D itself or D/seed_S) and its record."""
    where: Path
    seed: int | None
    record: dict | None
    problem: str | None = None  # why it cannot join this run (other settings, unreadable), or None


@dataclass
class Plan:
    """What a run does to D: ``remove`` and ``move`` (before any seed runs), then run ``todo``; ``finished``:
    D's seeds kept as they are; ``many``: every seed lives in D/seed_S, D/metrics.json is their summary."""
    out: Path
    many: bool
    finished: dict[int, dict]
    todo: list[int]
    remove: list[_Stored] = field(default_factory=list)
    move: _Stored | None = None
    rerun: dict[int, dict] = field(default_factory=dict)

    def seed_dir(self, seed: int) -> Path:
        return self.out / f"seed_{seed}" if self.many else self.out

    def files_of_earlier_run(self, seed: int) -> list[str]:
        """The files an earlier run of ``seed`` recorded in the folder it reruns into (``overwrite``),
        still there: they belong to the seed even where the rerun does not rewrite them."""
        earlier = self.rerun.get(seed) or {}
        files = earlier.get("files") if isinstance(earlier.get("files"), list) else []
        return [name for name in files if os.path.lexists(self.seed_dir(seed) / name)]

    def apply(self) -> list[str]:
        """Remove what ``overwrite`` replaces and move a lone seed to D/seed_S; returns what was done.
        Safe to repeat after an interruption (a moved file is not moved twice)."""
        done = []
        for stored in self.remove:
            _remove(stored, self.out)
            done.append(f"removed {stored.where / METRICS if stored.where == self.out else stored.where}")
        if self.move is not None:
            target = self.seed_dir(self.move.seed)
            target.mkdir(parents=True, exist_ok=True)
            for name in self.move.record["files"]:
                if os.path.lexists(self.out / name):  # absent: moved before an interruption (or deleted)
                    os.replace(self.out / name, target / name)
            write_json(target / METRICS, self.move.record)
            done.append(f"moved seed {self.move.seed} to {target}")
        return done


def plan(out: Path, seeds: list[int], settings: dict, overwrite: bool = False, required=()) -> Plan:
    """How a run of ``seeds`` with ``settings`` joins what D holds (the module docstring's rule). ConfigError,
    before anything changes, when D holds results of other settings or without a ``required`` (dotted) key,
    e.g. a headline number an older version did not report (unless ``overwrite``), or a lone seed that must
    move but did not record its files."""
    out = Path(out)
    stored = _scan(out, settings, tuple(required))
    conflicts = [s for s in stored if s.problem is not None]
    if conflicts and not overwrite:
        first = min(conflicts, key=lambda s: s.where == out)  # a seed's folder names the seed
        more = f" (as do {len(conflicts) - 1} more results in {out})" if len(conflicts) > 1 else ""
        raise ConfigError(f"{first.where / METRICS} holds results of another run ({first.problem}){more}; "
                          "use another --out or pass --overwrite to replace them")
    kept = [s for s in stored if s.problem is None]
    finished = {s.seed: s.record for s in kept if not (overwrite and s.seed in seeds)}
    many = len(set(finished) | set(seeds)) > 1 or any(s.where != out for s in kept)
    lone = next((s for s in kept if s.where == out), None)
    result = Plan(out, many, finished, [s for s in seeds if s not in finished], remove=conflicts,
                  rerun={s.seed: s.record for s in kept if s.seed in seeds and s.seed not in finished})
    if many and lone is not None:
        if isinstance(lone.record.get("files"), list):
            result.move = lone
        elif overwrite:
            result.remove.append(lone)
            result.finished.pop(lone.seed, None)
            result.todo = [s for s in seeds if s not in result.finished]
        else:
            raise ConfigError(f"{out / METRICS} holds seed {lone.seed} but does not record the files it "
                              f"wrote, so it cannot move to {out / f'seed_{lone.seed}'} to make room for "
                              "more seeds; use another --out or pass --overwrite to replace it")
    return result


def _scan(out: Path, settings: dict, required: tuple[str, ...]) -> list[_Stored]:
    """Every finished seed in D, each with the reason it cannot join a run of ``settings`` (None: it can)."""
    found = []
    if (out / METRICS).is_file():
        record, problem = _read(out / METRICS)
        if problem is None and "per_seed" in record:  # a summary: derived from the seed folders, rewritten
            if record.get("settings") != settings:
                found.append(_Stored(out, None, record, _difference(record.get("settings"), settings)))
        else:
            found.append(_stored(out, record, problem, settings, required))
    for folder in sorted(out.iterdir()) if out.is_dir() else ():
        match = _SEED_DIR.fullmatch(folder.name)
        if match and (folder / METRICS).is_file():
            found.append(_stored(folder, *_read(folder / METRICS), settings, required, int(match.group(1))))
    return found


def _stored(where: Path, record, problem, settings: dict, required: tuple[str, ...],
            folder_seed: int | None = None) -> _Stored:
    seed = record.get("seed") if isinstance(record, dict) else None
    if problem is None and not isinstance(seed, int):
        problem = "not a seed's metrics: no seed recorded"
    elif problem is None and folder_seed is not None and seed != folder_seed:
        problem = f"seed {seed} in the folder of seed {folder_seed}"
    elif problem is None:
        missing = [key for key in required if not _has(record, key)]
        problem = _difference(record.get("settings"), settings) or (
            f"no {missing[0]!r}: written by another version of the experiment" if missing else None)
    return _Stored(where, seed if isinstance(seed, int) else folder_seed, record, problem)


def _has(record: dict, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(record, dict) or part not in record:
            return False
        record = record[part]
    return True


def _read(path: Path) -> tuple[dict | None, str | None]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return None, f"not a readable metrics file: {err}"
    return (record, None) if isinstance(record, dict) else (None, "not a metrics file: not a JSON object")


def _difference(old, new: dict) -> str | None:
    """None when the settings are identical, else the first differing ones (--name=old there, new here)."""
    if old == new:
        return None
    if not isinstance(old, dict):
        return "no settings recorded"
    diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"--{k.replace('_', '-')}={old.get(k)!r} there, {new.get(k)!r} here" for k in diff[:3])


def _remove(stored: _Stored, out: Path) -> None:
    if stored.where != out:  # a seed folder is the runner's own: it goes entirely
        shutil.rmtree(stored.where, ignore_errors=True)
        return
    files = (stored.record or {}).get("files")
    for name in files if isinstance(files, list) else []:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    (out / METRICS).unlink(missing_ok=True)


def snapshot(directory: Path) -> dict[str, tuple]:
    """The entries directly in ``directory`` with their kind, size and modification time."""
    if not directory.is_dir():
        return {}
    entries = {}
    for entry in os.scandir(directory):
        info = entry.stat(follow_symlinks=False)
        entries[entry.name] = (entry.is_dir(follow_symlinks=False), info.st_size, info.st_mtime_ns)
    return entries


def seed_files(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """The entries a seed wrote (new or changed between two snapshots), other than its metrics, the
    atomic writer's hidden temporary files and other seeds' folders."""
    return sorted(name for name, info in after.items()
                  if before.get(name) != info and name != METRICS and not name.startswith(".")
                  and not _SEED_DIR.fullmatch(name))
