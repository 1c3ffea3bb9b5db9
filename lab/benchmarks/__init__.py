"""Benchmarks of the runtime and the packages, all on one workload (:mod:`lab.benchmarks.workload`).

Each script is a command, ``python -m lab.benchmarks.NAME --help``; its ``--json``/``--out`` file is a
result of record under ``lab/results/``.
"""
