"""ranker_sdk.session: the onnxruntime session of a package, checked against ranker.json at load.

Run on the bundled default package (a real INT8 MiniLM export with static activation scales),
so they need no model build.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from ranker_sdk import InternalError, PackageError
from ranker_sdk.session import ModelSession
from ranker_sdk.tokenize import PairEncoder

QUERY = "what is the capital of france"
DOCS = ["Paris is the capital and largest city of France.", "Bananas are yellow.", "Lyon is a city in France " * 9]


@pytest.fixture(scope="module")
def parts(default_package):
    """(model bytes, config, encoder) of the default package."""
    cfg = default_package.config
    return default_package.files["model.onnx"], cfg, PairEncoder(default_package.files["tokenizer.json"], cfg)


def _probe(default_package, cfg) -> dict[str, np.ndarray]:
    """The load-time probe batch for ``cfg`` (its max_length and pad id) with the default's tokenizer."""
    return PairEncoder(default_package.files["tokenizer.json"], cfg).probe_batch()


@pytest.fixture(scope="module")
def session(parts) -> ModelSession:
    model, cfg, enc = parts
    return ModelSession(model, cfg, threads=1, probe=enc.probe_batch())


def test_run_returns_one_float32_score_per_row(session, parts):
    _, cfg, enc = parts
    pairs = enc.encode(QUERY, DOCS)
    scores = session.run(pairs.batch(range(3), cfg.pad_token_id))
    assert scores.dtype == np.float32 and scores.shape == (3,) and np.isfinite(scores).all()
    assert scores[0] > scores[1]  # the trained default knows Paris from bananas
    one = session.run(pairs.batch([0], cfg.pad_token_id))
    assert one.shape == (1,)


def test_padding_in_a_batch_does_not_change_a_row_score(session, parts):
    """The mask hides padding; static activation scales do not follow the batch."""
    _, cfg, enc = parts
    pairs = enc.encode(QUERY, DOCS)
    together = session.run(pairs.batch(range(3), cfg.pad_token_id))
    alone = np.array([session.run(pairs.batch([i], cfg.pad_token_id))[0] for i in range(3)])
    assert cfg.quantization.get("activations") == "static"
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_inputs_other_than_ranker_json_declares_are_refused(parts):
    model, cfg, enc = parts
    two = dataclasses.replace(cfg, inputs=("input_ids", "attention_mask"))
    with pytest.raises(PackageError, match=r"model\.onnx takes inputs .*token_type_ids.* but ranker\.json declares"):
        ModelSession(model, two, probe=enc.probe_batch())


def test_a_max_length_beyond_the_position_table_fails_at_load(parts, default_package):
    model, cfg, _ = parts
    long = dataclasses.replace(cfg, max_length=600)  # the default (a BERT) has 512 positions
    with pytest.raises(PackageError, match=r"fails on a 600-token probe batch \(ranker\.json max_length 600\)"):
        ModelSession(model, long, probe=_probe(default_package, long))


def test_a_pad_id_outside_the_vocabulary_fails_at_load(parts, default_package):
    model, cfg, _ = parts
    bad = dataclasses.replace(cfg, pad_token_id=10**6)
    with pytest.raises(PackageError, match="pad_token_id within its vocabulary"):
        ModelSession(model, bad, probe=_probe(default_package, bad))


def test_model_bytes_onnxruntime_cannot_load_are_a_package_error(parts):
    _, cfg, enc = parts
    with pytest.raises(PackageError, match=r"model\.onnx cannot be loaded by onnxruntime"):
        ModelSession(b"not an onnx model", cfg, probe=enc.probe_batch())


def test_a_failing_run_is_an_internal_error_naming_the_step(session, parts):
    _, cfg, enc = parts
    feed = enc.encode(QUERY, DOCS[:1]).batch([0], cfg.pad_token_id)
    feed["input_ids"] = feed["input_ids"].astype(np.int32)  # the model takes int64
    with pytest.raises(InternalError, match="running the model failed"):
        session.run(feed)


def test_threads_do_not_change_the_scores(parts):
    model, cfg, enc = parts
    feed = enc.encode(QUERY, DOCS).batch(range(3), cfg.pad_token_id)
    one = ModelSession(model, cfg, threads=1, probe=enc.probe_batch()).run(feed)
    two = ModelSession(model, cfg, threads=2, probe=enc.probe_batch()).run(feed)
    np.testing.assert_allclose(one, two, atol=1e-5)


def test_importing_the_session_disables_onnxruntime_telemetry_by_default():
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    code = "import os, ranker_sdk.session; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == "1", r.stderr
