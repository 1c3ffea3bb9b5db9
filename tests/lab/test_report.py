"""The results table: rows per model, '-' where a set was not measured, files written."""

from __future__ import annotations

import json

from lab.report import markdown, rows, write


def _res(**by_set):
    return {"sources": [{"data": f"../shared/data/{k}", "split": "dev", "queries": 3, **v} for k, v in by_set.items()]}


def test_rows_pick_each_sets_headline_and_dash_what_is_missing(tmp_path):
    results = {
        "a": _res(**{"trec-dl": {"ndcg@10_trec": 0.61, "ndcg@10": 0.5}, "wikiqa": {"map": 0.8, "mrr": 0.81}}),
        "teacher": {"sources": [{"data": "x/trec-rag24", "split": "dev", "queries": 0, "ndcg@10": 0.0, "pnr": 0.0}]},
    }
    table = rows(results, {"a": 55.0}, {"a": "model A"})
    assert table[0]["dl_ndcg10_trec"] == 0.61 and table[0]["wikiqa_map"] == 0.8 and table[0]["rag_ndcg10"] is None
    assert table[1]["rag_ndcg10"] is None  # covers no query: not a 0.0 score
    md = markdown(table)
    assert "| model A | 0.610 | - | - | 0.800 | 0.810 | - | 55.0 |" in md  # no squad figure: -
    write(table, tmp_path / "r")
    assert json.loads((tmp_path / "r.json").read_text())[0]["model"] == "a"
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_main_keeps_rows_measured_elsewhere_only_when_asked(tmp_path):
    from lab.report import main

    (tmp_path / "run" / "eval").mkdir(parents=True)
    (tmp_path / "run" / "eval" / "x_wise.json").write_text(json.dumps(_res(wikiqa={"map": 0.7, "mrr": 0.71})))
    out = tmp_path / "table.json"
    old = rows({"bm25": _res(wikiqa={"map": 0.5, "mrr": 0.5}), "x_wise": _res(wikiqa={"map": 0.1, "mrr": 0.1})})
    out.write_text(json.dumps(old))
    main(["--run", str(tmp_path / "run"), "--out", str(out), "--keep"])
    table = json.loads(out.read_text())
    assert [r["model"] for r in table] == ["bm25", "x_wise"]  # LABELS order; bm25 carried over
    assert table[1]["wikiqa_map"] == 0.7  # the run's measurement replaces the old row
    main(["--run", str(tmp_path / "run"), "--out", str(out)])
    assert [r["model"] for r in json.loads(out.read_text())] == ["x_wise"]
