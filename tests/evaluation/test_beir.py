"""ranker_eval.beir: a tiny BEIR folder written here, every error named, and the real collections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ranker_eval.beir import Group, load_groups, parse_split, read_corpus, read_qrels, read_queries, read_run
from ranker_sdk.errors import InputError


def _write_beir(root: Path, *, run: bool = True) -> Path:
    """Three queries; q1's run lists d3 before d1 (by rank, not by line) and an unjudged doc;
    q2 has qrels but no run line; q3 is in the run but not in the qrels."""
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Paris", "text": "Paris is the capital of France."},
        {"_id": "d2", "text": "Bananas are yellow."},  # no title
        {"_id": "d3", "title": None, "text": "Lyon is a city in France."},
        {"_id": "d4", "title": "T4", "text": "unjudged"},
    ]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n\n", encoding="utf-8")
    queries = [{"_id": "q1", "text": "capital of france"}, {"_id": "q2", "text": "fruit"}, {"_id": "q3", "text": "x"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n", encoding="utf-8")
    (root / "qrels" / "dev.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td3\t0\nq2\td2\t1\nq2\td1\t0\n", encoding="utf-8"
    )
    if run:
        (root / "candidates.run").write_text(
            "q1 Q0 d1 2 9.0 bm25\nq1 Q0 d3 1 9.5 bm25\nq1 Q0 d4 4 7.0 bm25\nq3 Q0 d2 1 1.0 bm25\n",
            encoding="utf-8",
        )
    return root


def test_readers_of_each_file(tmp_path):
    root = _write_beir(tmp_path / "beir")
    assert read_corpus(root, {"d2", "d3"}) == {
        "d2": {"title": "", "text": "Bananas are yellow."},
        "d3": {"title": "", "text": "Lyon is a city in France."},
    }
    assert read_queries(root)["q1"] == "capital of france"
    assert read_qrels(root, "dev") == {"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 1, "d1": 0}}
    assert read_run(root) == {"q1": ["d3", "d1", "d4"], "q3": ["d2"]}


def test_groups_follow_the_run_with_labels_and_unjudged_as_none(tmp_path):
    root = _write_beir(tmp_path / "beir")
    (g,) = load_groups(root, "dev")  # q2 has no run line, q3 no qrels
    assert g == Group(
        qid="q1",
        query="capital of france",
        doc_ids=("d3", "d1", "d4"),  # run order
        docs=(
            {"title": "", "text": "Lyon is a city in France."},
            {"title": "Paris", "text": "Paris is the capital of France."},
            {"title": "T4", "text": "unjudged"},
        ),
        labels=(0, 2, None),
    )
    both = load_groups(root, "dev", unjudged_queries=True)
    assert [x.qid for x in both] == ["q1", "q3"] and both[1].labels == (None,)
    assert [x.qid for x in load_groups(root, "dev", unjudged_queries=True, max_queries=1)] == ["q1"]


def test_without_a_run_the_candidates_are_the_judged_documents(tmp_path):
    root = _write_beir(tmp_path / "beir", run=False)
    groups = load_groups(root, "dev")
    assert [(g.qid, g.doc_ids, g.labels) for g in groups] == [
        ("q1", ("d1", "d3"), (2, 0)),
        ("q2", ("d1", "d2"), (0, 1)),
    ]


def test_split_prefixes_filter_queries(tmp_path):
    root = _write_beir(tmp_path / "beir", run=False)
    assert [g.qid for g in load_groups(root, "dev:q2")] == ["q2"]
    assert [g.qid for g in load_groups(root, "dev:!q2")] == ["q1"]
    assert parse_split("train") == ("train", None, False)
    assert parse_split("train:dl21-") == ("train", "dl21-", False)
    assert parse_split("train:!dl21-") == ("train", "dl21-", True)
    for bad in ("train:", ":x", "train:!"):
        with pytest.raises(InputError, match="QID_PREFIX"):
            parse_split(bad)


def test_errors_name_the_file_and_say_what_was_expected(tmp_path):
    root = _write_beir(tmp_path / "beir")
    with pytest.raises(InputError, match="split 'test' does not exist"):
        load_groups(root, "test")
    with pytest.raises(InputError, match=r"nowhere/qrels/dev\.tsv not found"):
        load_groups(tmp_path / "nowhere", "dev")
    (root / "corpus.jsonl").rename(root / "corpus.json")
    with pytest.raises(InputError, match=r"corpus\.jsonl not found: expected a BEIR folder"):
        load_groups(root, "dev")
    with open(root / "queries.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    with pytest.raises(InputError, match=r"queries\.jsonl:4: not valid JSON"):
        load_groups(root, "dev")


# -- malformed data (issue 21): refused with FILE:LINE, never skipped, never a raw Python error -----


def _write_bytes(root: Path, name: str, data: bytes) -> None:
    (root / name).write_bytes(data)


@pytest.mark.parametrize(
    ("name", "data", "where", "what"),
    [
        ("candidates.run", b"q1 Q0 d1 1 9.0 bm25\nq1 Q0 d3 2 \xff9.5 bm25\n", "candidates.run:2", "not UTF-8"),
        (
            "corpus.jsonl",
            b'{"_id": "d1", "text": "ok"}\n{"_id": "d3", "text": "caf\xe9"}\n',
            "corpus.jsonl:2",
            "not UTF-8",
        ),
        (
            "queries.jsonl",
            b'{"_id": "q1", "text": "x"}\n' + b"[" * 100_000 + b"\n",
            "queries.jsonl:2",
            "nested too deeply",
        ),
        ("corpus.jsonl", b'{"_id": "d1", "text": "a", "txet": "typo"}\n', "corpus.jsonl:1", "unknown field"),
        ("corpus.jsonl", b'{"_id": "d1"}\n', "corpus.jsonl:1", "str '_id' and 'text'"),
        ("corpus.jsonl", b'{"_id": "d1", "text": "a", "title": 7}\n', "corpus.jsonl:1", "'title' must be a str"),
        ("queries.jsonl", b'{"_id": "q1", "text": NaN}\n', "queries.jsonl:1", "not valid JSON"),
        ("candidates.run", b"q1 Q0 d1 1 9.0 bm25\nq0 Q0\n", "candidates.run:2", "6 fields"),
        ("candidates.run", b"q0\n", "candidates.run:1", "6 fields"),
        ("candidates.run", b"q1 Q0 d1 1 " + b"9" * 400 + b" bm25\n", "candidates.run:1", "not a finite number"),
        ("candidates.run", b"q1 Q0 d1 one 9.0 bm25\n", "candidates.run:1", "not an integer"),
        ("qrels/dev.tsv", b"query-id\tcorpus-id\tscore\nq1\td1\t2\nq0\n", "dev.tsv:3", "query-id<TAB>corpus-id"),
        ("qrels/dev.tsv", b"q1\td1\tinf\n", "dev.tsv:1", "not an integer grade"),
        ("qrels/dev.tsv", b"q1\td1\t1.5\n", "dev.tsv:1", "not an integer grade"),
    ],
)
def test_malformed_lines_are_refused_naming_file_and_line(tmp_path, name, data, where, what):
    root = _write_beir(tmp_path / "beir")
    _write_bytes(root, name, data)
    with pytest.raises(InputError) as err:
        load_groups(root, "dev")
    assert where in str(err.value) and what in str(err.value)


def test_a_run_docid_missing_from_the_corpus_is_refused(tmp_path):
    root = _write_beir(tmp_path / "beir")
    with open(root / "candidates.run", "a", encoding="utf-8") as fh:
        fh.write("q1 Q0 dX 5 6.0 bm25\n")
    with pytest.raises(InputError, match=r"candidates\.run:5: docid 'dX' is not in corpus\.jsonl"):
        load_groups(root, "dev")


def test_reading_data_needs_no_metrics_library():
    """A runtime-only install reads data: ranker_eval.beir loads neither ir-measures, scipy nor torch."""
    code = (
        "import sys, ranker_eval.beir;"
        "bad=[m for m in ('ir_measures','scipy','torch','transformers') if m in sys.modules];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, f"ranker_eval.beir imported: {r.stdout} {r.stderr}"


# -- the real collections (../shared/data, see its README) ---------------------------------------


def test_trec_rag24_dev(data_dir):
    groups = load_groups(data_dir / "trec-rag24", "dev")
    assert len(groups) == 45 and all(len(g.docs) == 20 for g in groups)
    assert all(y in (0, 1, 2, 3) for g in groups for y in g.labels)  # every pair judged
    assert groups == sorted(groups, key=lambda g: g.qid)


def test_wikiqa_dev_has_titles_and_126_answered_questions(data_dir):
    groups = load_groups(data_dir / "wikiqa", "dev")
    assert len(groups) == 296 and sum(1 for g in groups if any(g.labels)) == 126
    assert sum(len(g.docs) for g in groups) == 2733
    assert all(g.docs[0]["title"] for g in groups)


def test_trec_dl_splits_by_qid_prefix_and_unjudged_queries_are_optional(data_dir):
    root = data_dir / "trec-dl"
    dev = load_groups(root, "train:dl21-")
    rest = load_groups(root, "train:!dl21-")
    assert len(dev) == 53 and all(g.qid.startswith("dl21-") for g in dev)
    assert len(rest) == 54 and not any(g.qid.startswith("dl21-") for g in rest)
    assert any(y is None for g in dev for y in g.labels)  # the pools hold unjudged candidates
    with_unjudged = load_groups(root, "train:!dl21-", unjudged_queries=True)
    assert len(with_unjudged) == 54 + 76  # DL22's queries have no labels at all
    dl22 = [g for g in with_unjudged if g.qid.startswith("dl22-")]
    assert dl22 and all(y is None for g in dl22 for y in g.labels)
