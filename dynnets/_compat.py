"""Old module paths of dynnets 0.1, kept for one release: each resolves to the module(s) its contents
moved to and warns (DeprecationWarning) once. ``MOVED`` is the one table of moves; docs/architecture.md
lists it. A finder on ``sys.meta_path`` answers only for the names in ``MOVED``."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

_A = "dynnets.applications."
MOVED: dict[str, tuple[str, ...]] = {
    "dynnets.runs": (_A + "runner", "dynnets.io"),
    "dynnets.fields.base": ("dynnets.base", "dynnets.checks", "dynnets.linalg"),
    "dynnets.fields._pairs": ("dynnets.fields.upper_triangle",),
    "dynnets.methods.base": ("dynnets.base",),
    "dynnets.constraints.norms": ("dynnets.linalg",),
    "dynnets.pde": ("dynnets.systems", "dynnets.systems.stencils", _A + "pde", _A + "trial"),
    "dynnets.pde.grids": ("dynnets.systems.grids",),
    "dynnets.pde.heat": ("dynnets.systems.heat",),
    "dynnets.pde.stencils": ("dynnets.systems.stencils",),
    "dynnets.pde.stencils2d": ("dynnets.systems.stencils",),
    "dynnets.pde.periodic2d": ("dynnets.systems.grids", "dynnets.systems.stencils", "dynnets.linalg"),
    "dynnets.pde.fisher": ("dynnets.systems.diffusion",),
    "dynnets.pde.construct": (_A + "pde.construct",),
    "dynnets.pde.data": (_A + "pde.data",),
    "dynnets.pde.error_split": (_A + "pde.error_split",),
    "dynnets.pde.baselines": (_A + "pde.baselines",),
    "dynnets.pde.heat_solvers": (_A + "pde.heat_solvers",),
    "dynnets.pde.trial": (_A + "trial.network",),
    "dynnets.pde.heat_trial": (_A + "trial.heat",),
    "dynnets.pde.least_squares": ("dynnets.train.lm",),
    "dynnets.eigen": (_A + "eigen", "dynnets.systems.yi"),
    "dynnets.eigen.field": ("dynnets.systems.yi",),
    "dynnets.eigen.robust": (_A + "eigen.deflation",),
    "dynnets.eigen.paper": (_A + "eigen.paper",),
    "dynnets.eigen.network": (_A + "eigen.network",),
    "dynnets.eigen.result": (_A + "eigen.result",),
    "dynnets.eigen.solve": (_A + "eigen.solve",),
    "dynnets.approx": (_A + "presnov", "dynnets.systems.ode"),
    "dynnets.approx.presnov": (_A + "presnov.decomposition",),
    "dynnets.approx.fit": (_A + "presnov.fit",),
    "dynnets.approx.models": (_A + "presnov.models",),
    "dynnets.approx.targets": (_A + "presnov.targets", "dynnets.systems.ode"),
    "dynnets.robust": (_A + "adversarial",),
    "dynnets.robust.attacks": (_A + "adversarial.attacks",),
    "dynnets.robust.cifar": (_A + "adversarial.cifar",),
}


class _Alias(types.ModuleType):
    """A deprecated module path: attributes are looked up in the new homes, in order."""

    def __getattr__(self, name: str):
        if name.startswith("__"):  # module machinery (__spec__, __file__, ...) before and after exec
            raise AttributeError(name)
        for target in self.__dict__.get("_targets", ()):
            module = importlib.import_module(target)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} (moved to {', '.join(self.__dict__['_targets'])}) "
                             f"has no attribute {name!r}")


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        return _Alias(spec.name)

    def exec_module(self, module) -> None:
        targets = MOVED[module.__name__]
        module.__dict__["_targets"] = targets
        module.__path__ = []  # a package, so that old submodule paths resolve through the finder too
        warnings.warn(f"{module.__name__} is deprecated: it moved to {' and '.join(targets)} "
                      "(docs/architecture.md); the old path will be removed in dynnets 0.3",
                      DeprecationWarning, stacklevel=3)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            return importlib.machinery.ModuleSpec(name, _Loader(), is_package=True)
        return None


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())  # ahead of the path finder: a stale folder must not shadow an alias
