"""The pairs that set static INT8's activation scales, encoded exactly as the runtime encodes them.

Static quantization (:mod:`.quantize`) runs the fp32 graph over calibration pairs, records the
smallest and largest value every quantized MatMul input reaches (onnxruntime's MinMax
calibrator), and freezes a scale and zero point per tensor from that range. What matters is that
the pairs look like what the package will rank, token for token:

- they are real (query, candidate) pairs of the calibration data (or the generated groups of
  :func:`.verify.generated_groups` when there is none), joined, clipped and tokenized by the SDK's
  own :class:`~ranker_sdk.tokenize.PairEncoder` with the package's ``ranker.json`` settings;
- each feed is **one pair, unpadded**: pad positions are computed by the model too (the mask
  only hides them from attention), and letting them into the ranges would spend int8 levels
  on values no real token produces;
- pairs are taken round-robin over the queries, so a ``max_pairs`` cap still sees every query.

Example:
    >>> groups, _ = calibration_groups("../shared/data/trec-rag24", "dev", max_queries=32)  # doctest: +SKIP
    >>> feeds = calibration_feeds(tokenizer_json, config, groups, max_pairs=512)           # doctest: +SKIP
    >>> sorted(feeds[0])                                                                   # doctest: +SKIP
    ['attention_mask', 'input_ids', 'token_type_ids']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ranker_eval.beir import Group
from ranker_sdk.encoding import doc_text
from ranker_sdk.errors import InputError
from ranker_sdk.package import PackageConfig
from ranker_sdk.tokenize import PairEncoder

__all__ = ["calibration_feeds"]


def calibration_feeds(
    tokenizer_json: bytes,
    config: PackageConfig,
    groups: Sequence[Group],
    max_pairs: int,
) -> list[dict[str, np.ndarray]]:
    """At most ``max_pairs`` model feeds ``{input: int64 [1, seq]}``, one (query, doc) pair each.

    Only the inputs ``config.inputs`` names are fed (DistilBERT and RoBERTa take no
    ``token_type_ids``).

    Raises:
        InputError: ``groups`` holds no document to calibrate on.
    """
    encoder = PairEncoder(tokenizer_json, config, parallel=False)
    encoded = [encoder.encode(g.query, [doc_text(d, config.title_separator) for d in g.docs]) for g in groups]
    order = [
        (gi, di)
        for di in range(max((len(e) for e in encoded), default=0))
        for gi, e in enumerate(encoded)
        if di < len(e)
    ]
    if not order:
        raise InputError("no calibration pairs: the calibration groups hold no documents")
    feeds = []
    for gi, di in order[:max_pairs]:
        batch = encoded[gi].batch([di], config.pad_token_id)
        feeds.append({name: batch[name] for name in config.inputs})
    return feeds
