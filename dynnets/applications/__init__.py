"""Applications built on the core, the families and the training runtime, each imported explicitly
(``import dynnets`` does not load them): pde, trial, eigen, presnov, adversarial, the shared ``runner`` and
``results_dir``. The map: docs/architecture.md.
"""
