"""``lab/build_default.py``: which student is shipped, and the data its model card is rendered from.

The card itself is :func:`ranker_quantize.card.render_model_card` (tests/quantize/test_card.py);
the build script only gathers its inputs.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")  # build_default needs the train and quantize extras

from ranker_quantize.card import NOTE_KEYS  # noqa: E402

from lab import build_default  # noqa: E402


def test_layer_count_reads_the_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 4}), encoding="utf-8")
    assert build_default.layer_count(tmp_path) == 4


def test_card_notes_hold_every_field_the_card_needs():
    notes = build_default.card_notes(build_default.NOTES)
    assert set(NOTE_KEYS) <= set(notes) and all(isinstance(notes[k], str) and notes[k] for k in NOTE_KEYS)


def test_students_are_tried_best_mean_first_and_only_hybrid_ones(tmp_path):
    def result(dl, rag, wiki):
        return {
            "sources": [
                {"data": "/d/trec-dl", "ndcg@10_trec": dl, "queries": 1},
                {"data": "/d/trec-rag24", "ndcg@10": rag, "queries": 1},
                {"data": "/d/wikiqa", "map": wiki, "queries": 1},
            ]
        }

    evals = {"a": result(0.5, 0.7, 0.7), "b": result(0.6, 0.7, 0.7), "labels": result(0.9, 0.9, 0.9)}
    for name, loss in (("a", "hybrid"), ("b", "hybrid"), ("labels", "pairwise")):
        (tmp_path / "students" / name).mkdir(parents=True)
        cfg = {"loss": loss, "alpha": 1.0, "beta": 1.0}
        (tmp_path / "students" / name / "train_config.json").write_text(json.dumps(cfg))
    assert build_default.ranked(evals, "auto", tmp_path) == ["b", "a"]  # the labels-only one is not the product
    assert build_default.ranked(evals, "a", tmp_path) == ["a"]
    with pytest.raises(SystemExit):
        build_default.ranked(evals, "missing", tmp_path)


def test_int8_gate_reads_the_mean_and_every_set():
    fp32 = {"a": 0.70, "b": 0.60, "c": 0.50}
    assert build_default.int8_losses(fp32, {"a": 0.699, "b": 0.601, "c": 0.497}) == []
    # one set 1.2 points down fails alone, whatever the mean
    assert build_default.int8_losses(fp32, {"a": 0.688, "b": 0.610, "c": 0.505}) == ["a"]
    # every set within a point but the mean 0.7 point down fails on the mean
    assert build_default.int8_losses(fp32, {"a": 0.692, "b": 0.593, "c": 0.494}) == ["the mean"]


def test_training_data_is_read_from_the_student_record(tmp_path):
    student = tmp_path / "students" / "s"
    student.mkdir(parents=True)
    meta = {
        "data": [
            {"path": "../d/trec-dl", "split": "train:!dl21-", "weight": 5.0},
            {"path": "/x/wikiqa", "split": "train"},
        ],
        "teacher_scores": "runs/t/scores.jsonl",
    }
    (student / "ranker_student.json").write_text(json.dumps(meta), encoding="utf-8")
    text = build_default.training_data(tmp_path, "s")
    assert text == "trec-dl train:!dl21- (weight 5) + wikiqa train; teacher: runs/t/scores.jsonl"
    assert build_default.training_data(tmp_path, "missing") == "unrecorded"


def test_rows_a_run_does_not_measure_are_kept_from_the_table_it_replaces(tmp_path):
    old = [{"model": n, "label": n, "dl_ndcg10_trec": 0.1} for n in ("random", "teacher", "previous_default", "x")]
    path = tmp_path / "default.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    kept = build_default.carried_rows(path, {"random", "teacher"})
    assert [r["model"] for r in kept] == ["previous_default"]  # "teacher" measured again; "x" not carried
    assert build_default.carried_rows(tmp_path / "none.json", set()) == []
    new = [{"model": n} for n in ("shipped_int8", "e5_wise", "random")]
    assert [r["model"] for r in build_default.in_order(new + kept)] == [
        "random",
        "e5_wise",
        "previous_default",
        "shipped_int8",
    ]
