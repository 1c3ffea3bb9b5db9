"""The benchmark scripts run end to end as commands (tiny repeat counts); tests/test_layout.py checks
that they import public names only.

A smoke test, not a measurement: the tiny random BERT packaged by the real pipeline, scored on
the real shared workload (1 query x 100 trec-rag24 dev passages) by ``bench_rank.py`` and
``bench_vs_torch.py`` against its own torch fp32 weights, one call each.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "lab" / "benchmarks"


@pytest.fixture(scope="module")
def tiny_int8(tiny_bert_dir, data_dir, tmp_path_factory):
    from ranker_quantize import PackageOptions, VerifyOptions, build_package

    options = PackageOptions(verify=VerifyOptions(calibration=str(data_dir / "trec-rag24"), max_queries=2), force=True)
    return build_package(tiny_bert_dir, tmp_path_factory.mktemp("bench") / "int8", options).path


def _run(script: str, *args: str) -> str:
    module = "lab.benchmarks." + script.removesuffix(".py")
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_bench_vs_torch_reports_ratios_and_spearman(tiny_int8, tiny_bert_dir, tmp_path):
    out = tmp_path / "vs.json"
    text = _run(
        "bench_vs_torch.py",
        "--model",
        str(tiny_bert_dir),
        "--package",
        f"static={tiny_int8}",
        "--threads",
        "1",
        "--repeats",
        "2",
        "--json",
        str(out),
    )
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"] for r in rows] == ["static", "torch fp32 (batches of 32)"]
    mine, torch = rows
    for r in rows:
        assert r["docs_per_s"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0 and r["peak_rss_mib"] > 50 and r["repeats"] == 2
    assert torch["speed_x"] == 1.0 and torch["spearman"] == 1.0
    assert mine["speed_x"] == pytest.approx(mine["docs_per_s"] / torch["docs_per_s"])
    assert mine["rss_x"] == pytest.approx(mine["peak_rss_mib"] / torch["peak_rss_mib"])
    assert math.isfinite(mine["spearman"]) and mine["spearman"] > 0.5  # same weights, same inputs
    assert "static" in text and "spearman" in text


@pytest.mark.slow
def test_bench_rank_paths_and_torch_baseline(tiny_int8, tiny_bert_dir, tmp_path):
    out = tmp_path / "rank.json"
    _run(
        "bench_rank.py",
        "--package",
        str(tiny_int8),
        "--model",
        str(tiny_bert_dir),
        "--threads",
        "1",
        "--repeats",
        "1",
        "--paths",
        "sorted",
        "unbatched",
        "--json",
        str(out),
    )
    rows = json.loads(out.read_text())["rows"]
    assert [r["path"] for r in rows] == ["sorted", "unbatched", "torch"]
    assert all(r["threads"] == 1 and "speed_x" in r and r["peak_rss_mb"] == r["peak_rss_mib"] for r in rows)


def test_bench_packages_reports_ratios_against_the_first(tiny_int8, tmp_path):
    out = tmp_path / "packages.json"
    text = _run(
        "bench_packages.py",
        "--package",
        str(tiny_int8),
        "--package",
        str(tiny_int8),
        "--repeats",
        "1",
        "--rounds",
        "1",
        "--json",
        str(out),
    )
    rows = json.loads(out.read_text())
    assert len(rows) == 2 and rows[0]["speed_x"] == 1.0 and rows[0]["rss_x"] == 1.0
    assert all(r["docs_per_s"] > 0 and r["threads"] == 1 and math.isfinite(r["speed_x"]) for r in rows)
    assert "speed" in text


def test_profile_ops_shares_sum_to_one(tiny_int8):
    from lab.benchmarks.profile_ops import op_shares

    shares = op_shares(str(tiny_int8), rows=2, runs=2)
    assert shares and abs(sum(shares.values()) - 1.0) < 1e-6
    assert any("MatMul" in op or "Attention" in op for op in shares)


def test_bench_openvino_compares_against_onnxruntime(tiny_int8, tmp_path):
    out = tmp_path / "ov.json"
    _run("bench_openvino.py", "--package", str(tiny_int8), "--threads", "1", "--repeats", "1", "--json", str(out))
    rows = {r["runtime"]: r for r in json.loads(out.read_text())["rows"]}
    ort = rows["onnxruntime"]
    assert ort["speed_x"] == 1.0 and ort["max_abs_diff_vs_ort"] == 0.0 and ort["docs_per_s"] > 0
    ov = rows["openvino"]  # measured when openvino is installed, an error row when it is not
    assert ("error" in ov) or (ov["docs_per_s"] > 0 and math.isfinite(ov["spearman_vs_ort"]))


def test_pareto_table_joins_speed_size_and_quality(tiny_int8, tmp_path):
    result = {  # the shape `ranker eval --json` prints
        "sources": [
            {"data": "/x/trec-dl", "split": "train:dl21-", "ndcg@10_trec": 0.5, "queries": 53},
            {"data": "/x/trec-rag24", "split": "dev", "ndcg@10": 0.7, "queries": 45},
            {"data": "/x/wikiqa", "split": "dev", "map": 0.9, "queries": 126},
        ]
    }
    ev = tmp_path / "eval.json"
    ev.write_text(json.dumps(result))
    out = tmp_path / "pareto"
    text = _run(
        "pareto.py",
        "--entry",
        f"a={tiny_int8}={ev}",
        "--entry",
        f"b={tiny_int8}={ev}",
        "--repeats",
        "1",
        "--rounds",
        "1",
        "--out",
        str(out),
    )
    rows = json.loads(out.with_suffix(".json").read_text())
    assert [r["name"] for r in rows] == ["a", "b"] and rows[0]["speed_x"] == 1.0 and rows[0]["rss_x"] == 1.0
    assert rows[1]["q_mean"] == pytest.approx(0.7) and rows[1]["q_wikiqa"] == 0.9
    assert rows[0]["model_mib"] == pytest.approx((tiny_int8 / "model.onnx").stat().st_size / 2**20)
    assert out.with_suffix(".png").stat().st_size > 0 and "| a |" in text


def test_ceiling_times_graph_variants_of_one_package(tiny_bert_dir, data_dir, tmp_path):
    from ranker_quantize import PackageOptions, VerifyOptions, build_package

    options = PackageOptions(
        padded_batches=True, verify=VerifyOptions(calibration=str(data_dir / "trec-rag24"), max_queries=2), force=True
    )
    padded = build_package(tiny_bert_dir, tmp_path / "padded", options).path
    out = _run("ceiling.py", "--package", str(padded), "--model", str(tiny_bert_dir), "--repeats", "1")
    rows = {}
    for line in out.splitlines()[2:]:
        name, docs_s, speed, rho = line.rsplit(None, 3)
        rows[name.strip()] = (float(docs_s), float(speed.rstrip("x")), float(rho))
    assert list(rows) == [
        "sdk batches",
        "one row a call",
        "no mask, one row a call",
        "no mask, exact-length batches",
        "+ GELU approximation",
        "MatMulNBits 8-bit, sdk batches",
    ]
    assert rows["sdk batches"][1] == 1.0 and rows["sdk batches"][2] == 1.0
    assert rows["one row a call"][2] > 0.999  # static INT8: a pair's score does not depend on its batch
    assert rows["no mask, one row a call"][2] > 0.99  # nothing padded, so the mask was not needed
    assert rows["no mask, exact-length batches"][2] > 0.99
    assert all(docs_s > 0 for docs_s, _, _ in rows.values())


@pytest.fixture(scope="module")
def tiny_segmented(tiny_bert_dir, data_dir, tmp_path_factory):
    """The segmented student of the tiny encoder, saved as training saves it, and its INT8 package."""
    import shutil

    from ranker_models.segmented import load_segmented, save_segmented
    from ranker_quantize import PackageOptions, VerifyOptions, build_package

    root = tmp_path_factory.mktemp("seg")
    save_segmented(load_segmented(tiny_bert_dir), root / "model")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_bert_dir / name, root / "model" / name)
    options = PackageOptions(verify=VerifyOptions(calibration=str(data_dir / "trec-rag24"), max_queries=2), force=True)
    return root / "model", build_package(root / "model", root / "int8", options).path


def test_bench_lengths_rows_per_model_length_and_threads(tiny_int8, tiny_bert_dir, tiny_segmented, tmp_path):
    seg_model, seg_pkg = tiny_segmented
    out = tmp_path / "lengths.json"
    text = _run(
        "bench_lengths.py",
        "--model",
        f"ce={tiny_bert_dir}={tiny_int8}",
        "--model",
        f"seg={seg_model}={seg_pkg}",
        "--lengths",
        "24",
        "96",
        "--threads",
        "1",
        "--docs",
        "3",
        "--rounds",
        "2",
        "--json",
        str(out),
    )
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["model"], r["length"], r["threads"]) for r in rows] == [
        ("ce", 24, 1),
        ("ce", 96, 1),
        ("seg", 24, 1),
        ("seg", 96, 1),
    ]
    for r in rows:
        assert r["tokens_per_row"] == r["length"]  # every pair filled to exactly L tokens
        assert r["docs"] == 3 and r["rounds"] == 2
        assert r["speed_x_min"] <= r["speed_x"] <= r["speed_x_max"] and r["cpu_speed_x"] > 0
        assert r["ranker_docs_per_s"] > 0 and r["torch_docs_per_s"] > 0
        assert r["ranker_peak_rss_mib"] > 50 and r["torch_peak_rss_mib"] > 50
        assert -1.0 <= r["spearman"] <= 1.0
    assert len(result["load_average_before"]) == 3 and "| ce | 96 |" in text

    # the page and the README sentence are rendered from this JSON alone
    doc = tmp_path / "page.md"
    doc.write_text("intro\n<!-- speed-by-length:begin -->\nold\n<!-- speed-by-length:end -->\noutro\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lab.benchmarks.render_speed_by_length", "--json", str(out), "--doc", str(doc)]
        + ["--model", "seg", "--length", "96"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    page = doc.read_text()
    assert page.startswith("intro\n") and page.endswith("outro\n") and "old" not in page
    seg96 = rows[3]
    assert f"**{seg96['speed_x']:.2f}x**" in page and result["command"] in page
    assert proc.stdout.startswith("At 96 tokens") and f"{seg96['speed_x']:.1f}x" in proc.stdout


def test_bench_lengths_refuses_a_length_beyond_the_package(tiny_int8, tiny_bert_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "lab.benchmarks.bench_lengths", "--model", f"ce={tiny_bert_dir}={tiny_int8}"]
        + ["--lengths", "4096", "--threads", "1", "--docs", "2", "--rounds", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 1 and "exceeds the package's max_length" in proc.stderr


def test_shape_costs_per_row_token(tiny_int8):
    text = _run(
        "shape_costs.py", "--package", str(tiny_int8), "--lengths", "8", "32", "--rows", "1", "2", "--rounds", "1"
    )
    rows = [line.split() for line in text.splitlines()[1:]]  # ROWS x TOKENS US RATIO
    assert [(r[0], r[2]) for r in rows] == [("1", "8"), ("2", "8"), ("1", "32"), ("2", "32")]
    assert all(float(r[3]) > 0 and float(r[4].rstrip("x")) > 0 for r in rows)
    assert rows[0][4] == rows[2][4] == "1.00x"  # one row a call is each length's reference


def test_bench_lengths_natural_rows_are_cut_not_filled(tiny_int8, tiny_bert_dir, tmp_path):
    out = tmp_path / "natural.json"
    _run(
        "bench_lengths.py",
        "--model",
        f"ce={tiny_bert_dir}={tiny_int8}",
        "--natural",
        "--lengths",
        "128",
        "--threads",
        "1",
        "--docs",
        "6",
        "--rounds",
        "1",
        "--json",
        str(out),
    )
    result = json.loads(out.read_text())
    [row] = result["rows"]
    assert 0 < row["tokens_per_row"] <= 128 and "as they are, cut at L tokens" in result["workload"]
    assert row["docs"] == 6 and row["speed_x"] > 0


@pytest.mark.slow
def test_int8_fidelity_compares_schemes_on_unlabelled_train_queries(tiny_bert_dir, tmp_path):
    out = tmp_path / "fidelity.json"
    text = _run(
        "int8_fidelity.py",
        "--model",
        str(tiny_bert_dir),
        "--variants",
        "smooth 0.8",
        "smooth 0.8, FFN output fp32",
        "--queries",
        "2",
        "--candidates",
        "5",
        "--json",
        str(out),
    )
    record = json.loads(out.read_text())
    assert record["sets"] == {"trec-dl/train:!dl21-": 2, "trec-rag24/train": 2, "wikiqa/train": 2, "squad/train": 2}
    first, kept = record["rows"]
    assert [first["variant"], kept["variant"]] == ["smooth 0.8", "smooth 0.8, FFN output fp32"]
    for row in record["rows"]:
        assert set(row["per_set"]) == set(record["sets"])
        assert 0.0 <= row["top10_overlap"] <= 1.0 and -1.0 <= row["spearman"] <= 1.0
        assert row["variant"] in text
    assert first["scoring_time_ratio"] == 1.0 and kept["scoring_time_ratio"] > 0
    assert kept["model_mib"] > first["model_mib"]  # the FFN output weights stay fp32
    assert "FFN output MatMuls kept fp32" in kept["method"]
