"""``ranker eval`` and ``ranker train`` as issue 21 reproduced them: the bundled package by name,
no ``pnr inf``, a merge error that names the flag, and data-file errors that name FILE:LINE."""

from __future__ import annotations

import json
import math

import pytest
from ranker_sdk.ranker import default_package_path

from ..cli_helpers import error_line, run_main


@pytest.mark.parametrize("flag", ["--package", "--model"])
def test_eval_default_names_the_bundled_package(flag, data_dir, capsys):
    """``ranker eval --package default`` / ``--model default`` evaluate the bundled package, every figure finite."""
    rc, err = run_main(
        ["eval", flag, "default", "--data", str(data_dir / "wikiqa"), "--max-queries", "5", "--json"], capsys
    )
    assert rc == 0, err
    # run_main drops stdout; run again for it (scoring 5 queries is quick)
    from ranker_sdk.cli import main

    assert main(["eval", flag, "default", "--data", str(data_dir / "wikiqa"), "--max-queries", "5", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["model"] == str(default_package_path())
    (src,) = res["sources"]
    assert src["queries"] > 0
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in src.values())


def test_eval_never_reports_pnr_inf(data_dir, tmp_path, capsys):
    """The issue's case: every label-distinct pair ordered right, none wrong, so PNR is x/0. A run that
    scores each candidate by its own grade orders every pair right; PNR is then undefined, not inf."""
    from ranker_eval.beir import load_groups
    from ranker_sdk.cli import main

    run = tmp_path / "by_grade.run"
    with run.open("w", encoding="utf-8") as fh:
        for g in load_groups(data_dir / "wikiqa", "dev", max_queries=5):
            for rank, (doc, label) in enumerate(zip(g.doc_ids, g.labels), 1):
                fh.write(f"{g.qid} Q0 {doc} {rank} {float(label or 0)} by_grade\n")
    assert main(["eval", "--model", str(run), "--data", str(data_dir / "wikiqa"), "--max-queries", "5", "--json"]) == 0
    (src,) = json.loads(capsys.readouterr().out)["sources"]
    assert src["queries"] > 0
    assert src["pnr"] is None and src["pnr_note"].startswith("undefined: all")
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in src.values())


def test_eval_table_prints_an_undefined_pnr_as_a_dash(data_dir, capsys):
    from ranker_sdk.cli import main

    assert main(["eval", "--package", "default", "--data", str(data_dir / "wikiqa"), "--max-queries", "5"]) == 0
    out = capsys.readouterr().out
    assert "pnr inf" not in out and " pnr " in out


def test_merge_of_a_cross_encoder_student_names_the_base_flag(tiny_bert_dir, tmp_path, capsys):
    rc, err = run_main(
        ["train", "merge", "--tuned", str(tiny_bert_dir), "--alpha", "0.7", "--out", str(tmp_path / "m")], capsys
    )
    error_line(rc, err, "--base")


def test_a_scores_file_with_an_overflowing_or_nested_line_names_it(tmp_path):
    from ranker_training.errors import DataError
    from ranker_training.label import read_scores

    for content, what in (
        ('{"qid": "q", "docid": "d", "score": ' + "9" * 400 + "}\n", "not a finite number"),
        ("[" * 100_000 + "\n", "nested too deeply"),
        (b'{"qid": "q\xff", "docid": "d", "score": 1}\n', "not UTF-8"),
    ):
        path = tmp_path / "s.jsonl"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(DataError, match=rf"s\.jsonl:1: .*{what}"):
            read_scores(path)


def test_an_external_run_with_a_short_line_or_huge_score_names_it(tmp_path):
    from ranker_training.errors import DataError
    from ranker_training.external import read_run_scores

    path = tmp_path / "r.run"
    for content, what in (
        ("q Q0 d 1 1.0 t\nq0 Q0\n", r"r\.run:2: expected"),
        ("q Q0 d 1 1e400 t\n", r"r\.run:1: score"),
    ):
        path.write_text(content, encoding="utf-8")
        with pytest.raises(DataError, match=what):
            read_run_scores(path)
