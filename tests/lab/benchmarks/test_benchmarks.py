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
