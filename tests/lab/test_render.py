"""``lab/render.py``: every published figure is rendered from the results JSON, and the committed
renderings (the README's results table, docs/results.md) are current."""

from __future__ import annotations

import json
import shutil

import pytest

from lab import render


def test_the_committed_renderings_are_current():
    stale = [str(p.relative_to(render.ROOT)) for p, text in render.renderings().items() if p.read_text() != text]
    assert not stale, f"stale: {stale}; run python -m lab.render"


def test_check_mode_names_a_stale_rendering(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{render.START}\nold figures\n{render.END}\n", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    from lab.benchmarks.render_speed_by_length import BEGIN, END

    (tmp_path / "docs" / "speed-by-length.md").write_text(f"# speed\n{BEGIN}\nold\n{END}\n", encoding="utf-8")
    monkeypatch.setattr(render, "ROOT", tmp_path)
    assert render.main(["--check"]) == 1
    assert "README.md" in capsys.readouterr().err
    assert render.main([]) == 0 and render.main(["--check"]) == 0
    assert "old figures" not in readme.read_text() and (tmp_path / "docs" / "results.md").is_file()


def test_a_figure_follows_its_json(tmp_path, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(render.RESULTS, results)
    pareto = json.loads((results / "pareto.json").read_text())
    default = next(r for r in pareto if r["package"] == "sdk/ranker_sdk/default")
    default["docs_per_s"], default["peak_rss_mib"] = 123.45, 99.0
    (results / "pareto.json").write_text(json.dumps(pareto))
    rows = json.loads((results / "default.json").read_text())
    next(r for r in rows if r["model"] == "shipped_int8")["rag_ndcg10"] = 0.1234
    (results / "default.json").write_text(json.dumps(rows))
    monkeypatch.setattr(render, "RESULTS", results)
    block = render.render_readme_block()
    assert "123.5 docs/s" in block and "peak RSS of 99 MiB" in block and "| 0.123 |" in block
    page = render.render_results_page()
    assert "| 123.5 |" in page and "| 0.123 |" in page


def test_every_table_header_names_its_gain_convention():
    page = render.render_results_page()
    for header in ("trec-dl DL21 nDCG@10 (trec_eval: gain = grade)", "trec-rag24 nDCG@10 (gain 2^grade - 1)"):
        # the quality table, the CPU recipe table, the signals table and the Pareto table
        assert page.count(header) == 4 and header in render.render_readme_block()
    assert "wikiqa MAP (binary)" in page
    assert page.count("squad MRR@10 (trec_eval: unjudged = not relevant)") == 3


def test_a_readme_without_markers_is_refused(tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text("# no markers\n", encoding="utf-8")
    monkeypatch.setattr(render, "ROOT", tmp_path)
    with pytest.raises(ValueError, match="markers"):
        render.renderings()


def test_the_default_speed_has_one_value_everywhere():
    """The Pareto measurement is the speed of record: the card's record and the results table copy it."""
    speed = render.default_speed()
    record = json.loads((render.ROOT / "lab" / "default_record.json").read_text())["speed"]
    table = json.loads((render.RESULTS / "default.json").read_text())
    shipped = next(r for r in table if r["model"] == "shipped_int8")
    assert record["docs_per_s"] == speed["docs_per_s"] == shipped["docs_per_s"]
    assert record["peak_rss_mib"] == speed["peak_rss_mib"]
