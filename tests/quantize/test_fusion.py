"""fusion.py: fitting the first-stage weight, sealing it into a package, ``ranker package --fit-fusion``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from ranker_eval.beir import load_groups
from ranker_quantize.fusion import (
    DEFAULT_WEIGHTS,
    FitOptions,
    FusionQuery,
    add_fusion,
    check_fusion_data,
    fit_fusion,
    fit_weight,
    score_queries,
)
from ranker_sdk import InputError, PackageError, Ranker
from ranker_sdk.cli import main
from ranker_sdk.fusion import zscore


def synthetic_queries(true_weight: float, n_queries: int = 300, n_docs: int = 20, seed: int = 0) -> list[FusionQuery]:
    """Queries whose grades follow ``z(model) + true_weight * z(first_stage)`` exactly.

    The top 5 candidates by that latent score get grades 4, 3, 2, 1, 1; the rest 0. The last
    two candidates of each query are unjudged (None), as in pooled TREC data.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_queries):
        model = rng.normal(size=n_docs).astype(np.float32)
        first = rng.normal(size=n_docs)
        latent = zscore(model) + true_weight * zscore(first)
        grades = np.zeros(n_docs, dtype=int)
        grades[np.argsort(-latent)[:5]] = [4, 3, 2, 1, 1]
        labels = tuple(int(g) for g in grades[:-2]) + (None, None)
        out.append(FusionQuery("synthetic/dev", model, first, labels))
    return out


@pytest.mark.parametrize("true_weight", [0.0, 0.6, 1.5, 2.4])
def test_fit_weight_recovers_a_known_weight(true_weight):
    weight, table = fit_weight(synthetic_queries(true_weight))
    assert abs(weight - true_weight) <= 0.1, (weight, true_weight)
    assert len(table) == len(DEFAULT_WEIGHTS) and min(table) == 0.0 and max(table) == 100.0
    assert table[weight] == max(table.values())
    assert table[weight] > table[0.0] or true_weight == 0.0  # fusion helps exactly when it should


def test_fit_weight_ignores_unjudged_and_unanswerable_queries():
    good = synthetic_queries(1.0, n_queries=100)
    # queries with no relevant judged candidate cannot pull the weight anywhere
    noise = [
        FusionQuery("x", q.model, -q.first_stage, tuple(0 if y is not None else None for y in q.labels))
        for q in synthetic_queries(0.0, n_queries=100, seed=1)
    ]
    assert fit_weight(good + noise) == fit_weight(good)


def _relabel(queries: list[FusionQuery], source: str) -> list[FusionQuery]:
    return [FusionQuery(source, q.model, q.first_stage, q.labels) for q in queries]


def test_maxmin_judges_a_weight_on_its_worst_source():
    # a source where the first stage is right (it needs a large weight) and one where the model is
    # right: the pooled optimum, pulled by the larger source, loses to the first stage on the small
    # one; the max-min weight does not
    strong_first = _relabel(synthetic_queries(100.0, n_queries=30, seed=2), "strong-first")
    model_wins = _relabel(synthetic_queries(0.3, n_queries=150, seed=3), "model-wins")
    queries = strong_first + model_wins
    grid = (0.0, 0.2, 0.4, 0.8, 1.5, 3.0, 10.0, 100.0)
    pooled, _ = fit_weight(queries, grid)
    maxmin, table = fit_weight(queries, grid, objective="maxmin")
    rule_gain = lambda w: min(  # noqa: E731
        np.mean([fq for fq in _gain_per_query(queries, w, src)]) for src in ("strong-first", "model-wins")
    )
    assert rule_gain(pooled) < 0 <= rule_gain(maxmin)
    assert table[maxmin] == max(table.values()) >= 0


def _gain_per_query(queries, weight, source):
    from ranker_eval.metrics import ndcg_at_k
    from ranker_sdk.fusion import Fusion, fuse

    out = []
    for q in queries:
        if q.source == source:
            keep = [i for i, y in enumerate(q.labels) if y is not None]
            y = np.array([q.labels[i] for i in keep])
            fused = fuse(q.model, q.first_stage, Fusion("zscore-linear", weight))[keep]
            out.append(ndcg_at_k(fused, y) - ndcg_at_k(q.first_stage[keep], y))
    return out


def test_unjudged_as_irrelevant_is_what_a_one_answer_pool_needs():
    # one judged (relevant) candidate a query, as in squad: over judged candidates alone every
    # order is perfect, so no weight can be preferred; counting unjudged ones as not relevant
    # recovers the first stage that put the answer first
    rng = np.random.default_rng(0)
    queries = []
    for _ in range(50):
        first = -np.arange(10, dtype=np.float64)
        labels = (1,) + (None,) * 9
        queries.append(FusionQuery("one-answer", rng.normal(size=10).astype(np.float32), first, labels))
    grid = (0.0, 0.5, 2.0, 10.0)
    _, skip_table = fit_weight(queries, grid)
    assert len(set(skip_table.values())) == 1
    weight, table = fit_weight(queries, grid, unjudged="irrelevant")
    assert weight > 1.0 and table[weight] > table[0.0]
    with pytest.raises(InputError, match="objective"):
        fit_weight(queries, objective="best")


def test_fit_weight_refuses_what_it_cannot_fit():
    with pytest.raises(InputError, match="no query with a relevant"):
        fit_weight([FusionQuery("x", np.zeros(3, np.float32), np.zeros(3), (0, 0, None))])
    with pytest.raises(InputError, match="grid"):
        fit_weight(synthetic_queries(1.0, n_queries=5), weights=[])


@pytest.mark.parametrize(
    ("change", "named"),
    [({"objective": "best"}, "objective"), ({"unjudged": "zero"}, "unjudged"), ({"weights": ()}, "grid")],
)
def test_fit_options_are_checked_when_built(change, named):
    """A bad objective fails when the options are made, not after minutes of scoring."""
    with pytest.raises(InputError, match=named):
        FitOptions(**change)


def test_check_fusion_data_names_what_is_missing(data_dir, tmp_path):
    check_fusion_data([(str(data_dir / "trec-rag24"), "dev"), (str(data_dir / "trec-dl"), "train:dl21-")])
    with pytest.raises(InputError, match="no candidates.run"):
        check_fusion_data([(str(tmp_path), "dev")])
    with pytest.raises(InputError, match=r"no qrels/test\.tsv"):
        check_fusion_data([(str(data_dir / "trec-rag24"), "test")])
    with pytest.raises(InputError, match="at least one"):
        check_fusion_data([])


@pytest.fixture(scope="module")
def fitted(tiny_package, data_dir):
    """The tiny package's fusion fitted on trec-rag24 dev (every query, every candidate)."""
    ranker = Ranker.load(tiny_package, threads=1)
    return ranker, fit_fusion(ranker, [(str(data_dir / "trec-rag24"), "dev")])


def test_fit_fusion_on_real_dev_data(fitted):
    _, fusion = fitted
    assert fusion["kind"] == "zscore-linear" and fusion["fitted_on"] == ["trec-rag24/dev"]
    dev = fusion["dev"]
    assert dev["queries"] == 45
    # The first stage of trec-rag24 is strong and the tiny model is random: fusion must lean on it.
    assert dev["first_stage"] > dev["model"] and fusion["weight"] > 0 and dev["fused"] > dev["model"]
    assert fusion["sources"] == [{"data": "trec-rag24/dev", **dev}]
    curve = dict((w, v) for w, v in fusion["curve"])
    assert curve[fusion["weight"]] == max(curve.values()) and len(curve) == fusion["grid"]["points"]
    # the grid runs far enough that the fit is never worse than the first stage alone
    assert dev["fused"] >= dev["first_stage"] - 0.005


def test_add_fusion_reseals_and_the_runtime_reproduces_the_fit(fitted, tiny_package, data_dir, tmp_path):
    ranker, fusion = fitted
    pkg = shutil.copytree(tiny_package, tmp_path / "pkg")
    before = {p.name: p.read_bytes() for p in pkg.iterdir()}
    config = add_fusion(pkg, fusion)
    assert config.fusion.weight == fusion["weight"]
    after = {p.name: p.read_bytes() for p in pkg.iterdir()}
    assert set(after) == set(before)  # no temp file left behind
    assert after["model.onnx"] == before["model.onnx"] and after["tokenizer.json"] == before["tokenizer.json"]
    assert json.loads(after["ranker.json"])["fusion"] == json.loads(json.dumps(fusion))

    fused = Ranker.load(pkg, threads=1)  # the manifest verifies
    assert fused.config.fusion.info["dev"] == fusion["dev"]
    # The runtime's fused scores give exactly the figure the fit recorded.
    from ranker_eval.metrics import ndcg_at_k

    values = []
    for g in load_groups(data_dir / "trec-rag24", "dev"):
        s = fused.score(g.query, list(g.docs), first_stage=-np.arange(1, len(g.docs) + 1))
        values.append(ndcg_at_k(s, np.array(g.labels), 10))
    assert round(float(np.mean(values)), 4) == fusion["dev"]["fused"]


def test_add_fusion_refuses_bad_input_and_leaves_the_package_alone(tiny_package, tmp_path):
    pkg = shutil.copytree(tiny_package, tmp_path / "pkg")
    before = {p.name: p.read_bytes() for p in pkg.iterdir()}
    with pytest.raises(PackageError, match=r"ranker\.json: fusion\.weight"):
        add_fusion(pkg, {"kind": "zscore-linear", "weight": float("nan")})
    assert {p.name: p.read_bytes() for p in pkg.iterdir()} == before
    with pytest.raises(InputError, match="package directory"):
        add_fusion(tmp_path / "pkg.tar.gz", {"kind": "zscore-linear", "weight": 1.0})
    (pkg / "model.onnx").write_bytes(before["model.onnx"] + b"\0")
    with pytest.raises(PackageError, match="model.onnx"):  # a tampered package is never re-sealed
        add_fusion(pkg, {"kind": "zscore-linear", "weight": 1.0})


def test_score_queries_pools_several_folders(tiny_package, data_dir):
    ranker = Ranker.load(tiny_package, threads=1)
    seen = []
    queries = score_queries(
        ranker,
        [(str(data_dir / "trec-rag24"), "dev"), (str(data_dir / "wikiqa"), "dev")],
        progress=lambda done, total: seen.append((done, total)),
    )
    names = [q.source for q in queries]
    assert names.count("trec-rag24/dev") == 45 and names.count("wikiqa/dev") > 100
    assert seen[-1] == (len(queries), len(queries))
    q = queries[0]
    assert len(q.model) == len(q.first_stage) == len(q.labels) and q.first_stage[0] == -1.0


def test_package_cli_fits_fusion(tiny_bert_dir, data_dir, tmp_path, capsys):
    out = tmp_path / "pkg"
    rc = main(
        [
            "package",
            "--model",
            str(tiny_bert_dir),
            "--out",
            str(out),
            "--precision",
            "fp32",
            "--set",
            "max_queries=2",
            "--tar",
            "--fit-fusion",
            f"{data_dir / 'trec-rag24'}=dev",
        ]
    )
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "fusion: first-stage weight" in cap.out and "trec-rag24/dev" in cap.out and "fusion" in cap.err
    for pkg in (out, tmp_path / "pkg.tar.gz"):  # the tarball is made after the fusion is sealed in
        assert Ranker.load(pkg, threads=1).config.fusion.info["fitted_on"] == ["trec-rag24/dev"]
    assert (
        main(["package", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "x"), "--fit-fusion", str(tmp_path)])
        == 1
    )
    assert "no candidates.run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # the split is DIR=SPLIT, never a word of its own
        main(["package", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "y"), "--fit-fusion", "d", "dev"])
    assert exit_.value.code == 2 and "unrecognized arguments: dev" in capsys.readouterr().err


def test_ranker_eval_first_stage_reports_the_fitted_figure(fitted, tiny_package, data_dir, tmp_path, capsys):
    """``ranker eval --first-stage`` (training/evaluate.py) and the fit agree on the same package."""
    _, fusion = fitted
    pkg = shutil.copytree(tiny_package, tmp_path / "pkg")
    add_fusion(pkg, fusion)
    args = ["eval", "--model", str(pkg), "--data", str(data_dir / "trec-rag24"), "--split", "dev", "--json"]
    assert main(args + ["--first-stage"]) == 0
    fused = json.loads(capsys.readouterr().out)["sources"][0]
    assert main(args) == 0
    alone = json.loads(capsys.readouterr().out)["sources"][0]
    assert fused["queries"] == alone["queries"] == fusion["dev"]["queries"]
    assert round(fused["ndcg@10"], 4) == fusion["dev"]["fused"]
    assert round(alone["ndcg@10"], 4) == fusion["dev"]["model"]


def test_fusion_cli_refits_a_copy_and_leaves_the_original_alone(fitted, tiny_package, data_dir, tmp_path, capsys):
    """``ranker fusion``: a finished package refitted on other data, written as a new package."""
    _, first_fit = fitted
    from ranker_quantize.package import write_package
    from ranker_sdk.package import PackageConfig, read_package

    pkg = read_package(tiny_package)  # a package with a model card and a rule of its own
    files = {n: b for n, b in pkg.files.items() if n not in ("manifest.json", "ranker.json")}
    config = PackageConfig.from_dict({**pkg.config.to_dict(), "fusion": {"kind": "zscore-linear", "weight": 0.0}})
    src = write_package(tmp_path / "src", files | {"MODEL_CARD.md": b"# tiny\n"}, config)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = tmp_path / "refit"
    rc = main(["fusion", "--package", str(src), "--data", f"{data_dir / 'trec-rag24'}=dev", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # the original is untouched
    refit = Ranker.load(out, threads=1)  # the copy verifies
    # the same fit as fit_fusion on the same package and data, replacing the old rule
    assert refit.config.fusion.weight == first_fit["weight"] != 0.0
    assert refit.config.fusion.info["dev"] == first_fit["dev"]
    assert (out / "model.onnx").read_bytes() == before["model.onnx"]
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert card.startswith("# tiny\n") and "## First-stage fusion, refitted" in card
    assert f"| trec-rag24/dev | 45 | {first_fit['dev']['model']} |" in card
    dev = first_fit["dev"]
    assert (
        f"{'trec-rag24/dev':<28} {45:>7} {dev['model']:>7.4f} {dev['first_stage']:>7.4f} {dev['fused']:>7.4f}"
        in cap.out
    )
    assert "score" in cap.err  # the progress bar


FUSION_CASES = {
    "out taken": (["--data", "{data}", "--out", "{tmp}/src"], ["--out", "not an empty directory"]),
    "no candidates.run": (["--data", "{tmp}", "--out", "{tmp}/o"], ["no candidates.run"]),
    "no such split": (["--data", "{data}=nosplit", "--out", "{tmp}/o"], ["no qrels/nosplit.tsv"]),
    "empty split": (["--data", "{data}=", "--out", "{tmp}/o"], ["expected DIR or DIR=SPLIT"]),
    "no data": (["--out", "{tmp}/o"], ["--data"]),
    "zero threads": (["--data", "{data}", "--out", "{tmp}/o", "--threads", "0"], ["threads must be a positive int"]),
    "not a package": (["--package", "{tmp}/nopkg", "--data", "{data}", "--out", "{tmp}/o"], ["nopkg"]),
}


@pytest.mark.parametrize("case", sorted(FUSION_CASES))
def test_fusion_cli_refuses_bad_input_in_one_line(case, tiny_package, data_dir, tmp_path, capsys):
    from ..cli_helpers import error_line, run_main

    shutil.copytree(tiny_package, tmp_path / "src")
    args, names = FUSION_CASES[case]
    fill = {"tmp": tmp_path, "data": data_dir / "trec-rag24"}
    argv = ["fusion", "--package", str(tmp_path / "src"), *[a.format(**fill) for a in args]]
    rc, err = run_main(argv, capsys)
    error_line(rc, err, *names)
    assert not (tmp_path / "o").exists()


def test_fusion_cli_maxmin_records_its_objective(tiny_package, data_dir, tmp_path, capsys):
    """``ranker fusion --objective maxmin --unjudged irrelevant``: the record says how it was fitted
    and whether fused stays at or above every set's first stage."""
    out = tmp_path / "maxmin"
    args = ["fusion", "--package", str(tiny_package), "--out", str(out), "--threads", "1"]
    args += ["--data", f"{data_dir / 'wikiqa'}=dev", "--data", f"{data_dir / 'trec-rag24'}=dev"]
    assert main(args + ["--objective", "maxmin", "--unjudged", "irrelevant"]) == 0
    info = Ranker.load(out, threads=1).config.fusion.info
    assert info["objective"] == "maxmin" and "unjudged = not relevant" in info["metric"]
    worst = min(s["fused"] - s["first_stage"] for s in info["sources"])
    assert info["never_below_first_stage"] == (worst >= 0)
    printed = capsys.readouterr().out
    assert "fusion: first-stage weight" in printed and "best worst-set gain of ndcg@10" in printed
    assert "best mean" not in printed
    with pytest.raises(SystemExit) as exc:  # argparse's own refusal of an unknown objective
        main(args[:-4] + ["--data", f"{data_dir / 'wikiqa'}=dev", "--objective", "best"])
    assert exc.value.code == 2
