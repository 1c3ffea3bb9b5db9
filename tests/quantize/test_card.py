"""``ranker_quantize/card.py``: the model card is a template filled from recorded data.

The fixture is the bundled default's own record: its ``ranker.json`` as shipped, the distillation
settings, teacher report and dev figures its card states. Rendering them must give the bundled
``MODEL_CARD.md`` back (but for the module the segmented student now lives in), and every figure
must move with its input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ranker_quantize.card import CardData, render_model_card

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "sdk" / "ranker_sdk" / "default"
NOTES = json.loads((ROOT / "lab" / "default_card.json").read_text(encoding="utf-8"))
CARD = (DEFAULT / "MODEL_CARD.md").read_text(encoding="utf-8")

TRAIN_CONFIG = {  # train_config.json of the shipped student, as distillation saves it (the fields a card reads)
    "architecture": "segmented",
    "loss": "hybrid",
    "alpha": 1.0,
    "beta": 1.0,
    "label_weight": 2.0,
    "group": {"size": 8, "negatives": "hard"},
    "train": {"max_steps": 1000, "batch_size": 4, "lr": 2e-05},
    "max_length": 160,
    "title_augment": 0.2,
    "data": [
        {"path": "../shared/data/trec-dl", "split": "train:!dl21-", "weight": 5.0},
        {"path": "../shared/data/trec-rag24", "split": "train", "weight": 1.5},
        {"path": "../shared/data/wikiqa", "split": "train", "weight": 0.75},
    ],
}
TEACHER = {  # scores.json, the teacher report of `ranker train label`
    "runs": {"REP_LLAMA": 1.0, "SPLADE_P_P_ENSEMBLE_DISTIL": 1.0, "D_BERT_KD_TASB": 0.5, "OPEN_AI_ADA2": 0.5},
    "fit": {"slope": 0.34},
    "label_mix": 0.5,
    "pairs": 44260,
    "queries_covered": 130,
    "queries": 1173,
}
KEYS = ("trec-dl ndcg@10_trec", "trec-rag24 ndcg@10", "wikiqa map")
FIGURES = {  # `ranker eval --json` headlines of the package, the fp32 student, fused, the first stage
    "int8": dict(zip(KEYS, (0.5565, 0.7097, 0.7340))),
    "fp32": dict(zip(KEYS, (0.5487, 0.7081, 0.7341))),
    "fused": dict(zip(KEYS, (0.6523, 0.7514, 0.7481))),
    "first_stage": dict(zip(KEYS, (0.4638, 0.7931, 0.6728))),
}
SPEED = {
    "docs_per_s": 111.2,
    "peak_rss_mb": 170.0,
    "command": "`benchmarks/bench_rank.py`, 100 trec-rag24 passages, 1 thread",
}


def _section(title: str, end: str) -> str:
    return CARD.split(f"## {title}\n", 1)[1].split(end, 1)[0]


def _render(**changes) -> str:
    kw = dict(
        train_config=TRAIN_CONFIG,
        layers=6,
        package=json.loads((DEFAULT / "ranker.json").read_text(encoding="utf-8")),
        teacher=TEACHER,
        figures=FIGURES,
        speed=SPEED,
        notes=NOTES,
        how=_section("How it was made", "\n\n1. "),
        results_table=_section("Dev results", "\n\nSpeed"),
    )
    return render_model_card(CardData(**(kw | changes)))


def test_the_bundled_card_is_reproduced_from_its_data():
    expected = CARD.replace("(ranker_training.segmented)", "(ranker_models.segmented)")
    assert _render() == expected


def test_every_figure_follows_its_input():
    fig = {k: dict(v) for k, v in FIGURES.items()}
    fig["int8"]["wikiqa map"] = 0.5
    text = _render(layers=3, figures=fig, speed=SPEED | {"docs_per_s": 200.5, "peak_rss_mb": 99.0})
    assert "A 3-layer MiniLM bi-encoder" in text and "200.5 docs/s, peak RSS 99 MB." in text
    assert "- wikiqa map: INT8 0.500 (fp32 student 0.734; fused with the first stage 0.748" in text
    pkg = json.loads((DEFAULT / "ranker.json").read_text(encoding="utf-8"))
    pkg["fusion"]["weight"] = 0.7
    pkg["fidelity"]["spearman"]["mean"] = 0.91
    text = _render(package=pkg)
    assert "weight 0.7 (z-scored" in text and "mean Spearman 0.91," in text


def test_a_cross_encoder_and_a_merged_student_are_described_as_such():
    text = _render(train_config=TRAIN_CONFIG | {"architecture": "cross"}, merge={"alpha": 0.7, "base": "pkg:m"})
    assert "A 6-layer MiniLM cross-encoder (all-MiniLM-L6-v2 start), INT8" in text
    assert "0.7 x those weights + 0.3 x the start (pkg:m)" in text
    assert "WiSE-FT" not in _render()


def test_missing_notes_are_named():
    with pytest.raises(KeyError, match="licence"):
        _render(notes={k: v for k, v in NOTES.items() if k != "licence"})
