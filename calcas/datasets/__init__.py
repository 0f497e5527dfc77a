"""Real benchmarks that produce record sets (SPEC §0) without any network access.

- :mod:`calcas.datasets.mnist1d`: MNIST-1D generated locally from the ``mnist1d`` package's
  templates, with seeded label flips and cross-fitted logits of three torch models of very
  different capacity (logistic regression, MLP, 1-D CNN). The CPU default data source.

Submodules import their heavy dependencies (torch, mnist1d) only when imported themselves, so
``import calcas`` stays light.
"""
