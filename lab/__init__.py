"""The lab: how the bundled default was built and measured (see lab/README.md).

Not part of the ranker-sdk distribution. Run its scripts from the repository root as modules,
``python -m lab.build_default``, ``python -m lab.benchmarks.bench_rank``, ``python -m lab.render``.
"""
