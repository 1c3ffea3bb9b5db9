"""First-stage fusion (sdk/ranker_sdk/fusion.py) through the real Ranker on the tiny package."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from ranker_sdk import InputError, PackageError, Ranker
from ranker_sdk.fusion import Fusion, check_first_stage, fuse, zscore
from ranker_sdk.package import PackageConfig

from ..conftest import tiny_config

WEIGHT = 0.7


@pytest.fixture(scope="module")
def fused_ranker(tmp_path_factory, tiny_onnx, tiny_bert_dir):
    """The tiny model packaged with a fusion rule of weight WEIGHT."""
    from ranker_quantize.package import write_package

    out = tmp_path_factory.mktemp("fused") / "pkg"
    files = {"model.onnx": tiny_onnx, "tokenizer.json": (tiny_bert_dir / "tokenizer.json").read_bytes()}
    rule = Fusion("zscore-linear", WEIGHT, {"fitted_on": ["hand/dev"], "dev": {"queries": 1, "fused": 0.5}})
    return Ranker.load(write_package(out, files, tiny_config(fusion=rule)), threads=1)


def first_stage_of(n: int) -> np.ndarray:
    """-rank of a retriever that ranked the docs in reverse input order."""
    return -np.arange(n, 0, -1, dtype=np.float64)


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad,match",
    [
        ([1.0, 2.0], r"has 2 scores but there are 3 docs"),
        ([1.0, float("nan"), 2.0], r"first_stage\[1\] is nan"),
        ([1.0, 2.0, float("-inf")], r"first_stage\[2\] is -inf"),
        ([1.0, "2", 3.0], r"first_stage\[1\] must be a number, got str"),
        ([1.0, None, 3.0], r"first_stage\[1\] must be a number, got NoneType"),
        ([True, False, True], r"first_stage\[0\] must be a number, got bool"),
        ("123", r"sequence of numbers"),
        ({"a": 1.0}, r"sequence of numbers"),
        (np.ones((3, 1)), r"flat sequence"),
        (5.0, r"flat sequence"),
    ],
)
def test_bad_first_stage_is_refused_before_scoring(tiny_ranker, fused_ranker, bad, match):
    for ranker in (tiny_ranker, fused_ranker):  # refused with or without a fusion rule
        with pytest.raises(InputError, match=match):
            ranker.score("capital", ["a", "b", "c"], first_stage=bad)
        with pytest.raises(InputError, match=match):
            ranker.rank("capital", ["a", "b", "c"], first_stage=bad)


@pytest.mark.parametrize(
    "good", [[3, 2, 1], (3.0, 2.0, 1.0), np.array([3, 2, 1], dtype=np.int32), np.array([3.0, 2, 1], dtype=np.float32)]
)
def test_numeric_sequences_and_arrays_are_accepted(good):
    np.testing.assert_array_equal(check_first_stage(good, 3), [3.0, 2.0, 1.0])


def test_empty_docs_with_empty_first_stage(fused_ranker):
    assert fused_ranker.score("q", [], first_stage=[]).shape == (0,)
    assert fused_ranker.rank("q", [], first_stage=np.zeros(0)) == []


# -- identity when the package has no rule ---------------------------------------------------


def test_unfitted_package_returns_model_scores_unchanged(tiny_ranker, trec_query_docs):
    q, docs = trec_query_docs
    assert tiny_ranker.config.fusion is None
    plain = tiny_ranker.score(q, docs)
    with_fs = tiny_ranker.score(q, docs, first_stage=first_stage_of(len(docs)))
    np.testing.assert_array_equal(with_fs, plain)
    assert [h.index for h in tiny_ranker.rank(q, docs, first_stage=first_stage_of(len(docs)))] == [
        h.index for h in tiny_ranker.rank(q, docs)
    ]


# -- the fused score -------------------------------------------------------------------------


def test_fused_scores_match_a_hand_computation(fused_ranker, tiny_ranker, trec_query_docs):
    q, docs = trec_query_docs
    fs = first_stage_of(len(docs))
    model = tiny_ranker.score(q, docs).astype(np.float64)  # same model, no rule
    np.testing.assert_allclose(fused_ranker.score(q, docs), model, atol=1e-6)  # no first stage: model alone

    zm = (model - model.mean()) / model.std()
    zf = (fs - fs.mean()) / fs.std()
    want = zm + WEIGHT * zf
    got = fused_ranker.score(q, docs, first_stage=fs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-4)

    hits = fused_ranker.rank(q, docs, top_k=5, first_stage=fs)
    assert [h.index for h in hits] == list(np.argsort(-want, kind="stable")[:5])
    assert [h.score for h in hits] == pytest.approx(sorted(want, reverse=True)[:5], abs=1e-4)
    # The first stage really moved things: the fused order is neither the model's nor the retriever's.
    assert [h.index for h in hits] != list(np.argsort(-model, kind="stable")[:5])
    assert [h.index for h in hits] != list(np.argsort(-fs, kind="stable")[:5])


def test_a_heavy_weight_follows_the_first_stage(tiny_ranker, trec_query_docs):
    q, docs = trec_query_docs
    model = tiny_ranker.score(q, docs)
    fs = np.random.default_rng(0).normal(size=len(docs))
    fused = fuse(model, fs, Fusion("zscore-linear", 1000.0))
    assert list(np.argsort(-fused)) == list(np.argsort(-fs))


def test_single_doc_keeps_its_model_score_and_constant_first_stage_adds_nothing(fused_ranker, tiny_ranker):
    one = fused_ranker.score("capital", ["Paris is the capital."], first_stage=[12.5])
    assert one[0] == pytest.approx(tiny_ranker.score("capital", ["Paris is the capital."])[0], abs=1e-6)
    docs = ["Paris is the capital.", "Bananas are yellow.", "Lunch prices rose."]
    model = tiny_ranker.score("capital", docs).astype(np.float64)
    got = fused_ranker.score("capital", docs, first_stage=[4.0, 4.0, 4.0])
    np.testing.assert_allclose(got, (model - model.mean()) / model.std(), atol=1e-5)


def test_zscore_of_a_constant_list_is_zero():
    np.testing.assert_array_equal(zscore(np.array([3.0, 3.0, 3.0])), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(zscore(np.array([1.0, 3.0])), [-1.0, 1.0])


# -- ranker.json ------------------------------------------------------------------------------


def test_config_round_trips_fusion_and_omits_it_when_absent():
    plain = tiny_config()
    assert "fusion" not in plain.to_dict()  # old packages stay byte-identical
    assert PackageConfig.from_dict(plain.to_dict()).fusion is None
    rule = Fusion("zscore-linear", 0.35, {"dev": {"fused": 0.81}})
    d = json.loads(json.dumps(tiny_config(fusion=rule).to_dict()))
    assert d["fusion"] == {"kind": "zscore-linear", "weight": 0.35, "dev": {"fused": 0.81}}
    assert PackageConfig.from_dict(d).fusion == rule


@pytest.mark.parametrize(
    "fusion,match",
    [
        ({"kind": "rrf", "weight": 1.0}, r"ranker\.json: fusion\.kind"),
        ({"weight": 1.0}, r"ranker\.json: fusion\.kind"),
        ({"kind": "zscore-linear"}, r"ranker\.json: fusion\.weight"),
        ({"kind": "zscore-linear", "weight": "1"}, r"ranker\.json: fusion\.weight"),
        ({"kind": "zscore-linear", "weight": math.inf}, r"ranker\.json: fusion\.weight"),
        ({"kind": "zscore-linear", "weight": True}, r"ranker\.json: fusion\.weight"),
        ([1.0], r"ranker\.json: fusion must be a JSON object"),
    ],
)
def test_bad_fusion_in_ranker_json_is_a_package_error(fusion, match):
    d = tiny_config().to_dict()
    d["fusion"] = fusion
    with pytest.raises(PackageError, match=match):
        PackageConfig.from_dict(d)


# -- ranker rank --first-stage ----------------------------------------------------------------


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_cli_first_stage_fuses_the_score_field(fused_ranker, tiny_package, tmp_path, capsys):
    from ranker_sdk.cli import main

    texts = ["paris is the capital of france", "bananas are yellow", "lunch prices rose", "the seine flows"]
    fs = [-1, -2, -3, -4]
    f = _write_jsonl(tmp_path / "docs.jsonl", [{"text": t, "score": s} for t, s in zip(texts, fs)])
    assert (
        main(
            [
                "rank",
                "--package",
                fused_ranker.source,
                "--query",
                "capital",
                "--docs",
                str(f),
                "--json",
                "--first-stage",
            ]
        )
        == 0
    )
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    docs = [{"text": t, "title": ""} for t in texts]
    want = fused_ranker.rank("capital", docs, first_stage=fs)
    assert [r["index"] for r in rows] == [h.index for h in want]
    assert [r["score"] for r in rows] == pytest.approx([h.score for h in want], abs=1e-6)
    assert [r["first_stage"] for r in rows] == [fs[h.index] for h in want]
    # ... and the scores are the fused ones, not the model's
    assert [r["score"] for r in rows] != pytest.approx(
        [float(x) for x in sorted(fused_ranker.score("capital", docs), reverse=True)], abs=1e-3
    )

    # a package without a rule ranks by the model and says so
    assert (
        main(
            ["rank", "--package", str(tiny_package), "--query", "capital", "--docs", str(f), "--json", "--first-stage"]
        )
        == 0
    )
    cap = capsys.readouterr()
    assert "has no fusion rule" in cap.err
    plain = Ranker.load(tiny_package, threads=1).rank("capital", docs)
    assert [json.loads(x)["index"] for x in cap.out.splitlines()] == [h.index for h in plain]


@pytest.mark.parametrize(
    "second,match",
    [
        ({"text": "b"}, r"docs\.jsonl:2: needs a numeric 'score'"),
        ({"text": "b", "score": "high"}, r"docs\.jsonl:2: 'score' must be a number, got 'high'"),
        ({"text": "b", "score": True}, r"docs\.jsonl:2: 'score' must be a number, got True"),
        ({"text": "b", "score": float("nan")}, r"docs\.jsonl:2: not valid JSON \(NaN is not a JSON number"),
    ],
)
def test_cli_first_stage_names_the_bad_line(fused_ranker, tmp_path, capsys, second, match):
    from ranker_sdk.cli import main

    f = _write_jsonl(tmp_path / "docs.jsonl", [{"text": "a", "score": 1.5}, second])
    assert main(["rank", "--package", fused_ranker.source, "--query", "q", "--docs", str(f), "--first-stage"]) == 1
    assert re.search(match, capsys.readouterr().err)


def test_cli_first_stage_needs_jsonl(fused_ranker, tmp_path, capsys):
    from ranker_sdk.cli import main

    f = tmp_path / "docs.txt"
    f.write_text("a doc\nanother doc\n", encoding="utf-8")
    assert main(["rank", "--package", fused_ranker.source, "--query", "q", "--docs", str(f), "--first-stage"]) == 1
    assert "--first-stage needs JSONL docs" in capsys.readouterr().err


def test_info_shows_the_fusion_rule(fused_ranker, tiny_package, capsys):
    from ranker_sdk.cli import main

    assert main(["info", fused_ranker.source]) == 0
    out = capsys.readouterr().out
    assert f"fusion: zscore-linear, first-stage weight {WEIGHT:g}, fitted on hand/dev" in out and "fused 0.5" in out
    assert main(["info", str(tiny_package)]) == 0
    assert "fusion: none" in capsys.readouterr().out
