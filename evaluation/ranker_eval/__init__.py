"""ranker_eval: reading ranking data and scoring rankings, for training, packaging and benchmarks.

- :mod:`.beir`: BEIR/TREC folders (``corpus.jsonl``, ``queries.jsonl``, ``qrels/``,
  ``candidates.run``) -> per-query candidate groups. Standard library only, so a runtime-only
  install (``pip install ranker-sdk``) reads data too.
- :mod:`.metrics`: nDCG@k (exp gain, and as trec_eval computes it), AP and RR from ir-measures;
  PNR our own; Spearman from scipy. Needs the ``eval`` extra (``pip install 'ranker-sdk[eval]'``)
  for all but PNR.

The runtime (``ranker_sdk``) never imports this package: it ranks, it does not grade.
"""
