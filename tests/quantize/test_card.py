"""``ranker_quantize/card.py``: the model card is a template filled from recorded data.

The fixture is the bundled default's own record: its ``ranker.json`` as shipped, the distillation
settings, teacher report and dev figures its card states. Rendering them must give the bundled
``MODEL_CARD.md`` back, and every figure must move with its input.
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

# The shipped default's record (what its card is filled from), kept by the lab beside the card's prose.
RECORD = json.loads((ROOT / "lab" / "default_record.json").read_text(encoding="utf-8"))
TRAIN_CONFIG, TEACHER, FIGURES, SPEED = (RECORD[k] for k in ("train_config", "teacher", "figures", "speed"))


def _section(title: str, end: str) -> str:
    return CARD.split(f"## {title}\n", 1)[1].split(end, 1)[0]


def _render(**changes) -> str:
    kw = dict(
        train_config=TRAIN_CONFIG,
        layers=RECORD["layers"],
        package=json.loads((DEFAULT / "ranker.json").read_text(encoding="utf-8")),
        teacher=TEACHER,
        figures=FIGURES,
        speed=SPEED,
        notes=NOTES,
        how=RECORD["how"],
        merge=RECORD.get("merge"),
        results_table=_section("Dev results", "\n\nSpeed"),
    )
    return render_model_card(CardData(**(kw | changes)))


def test_the_bundled_card_is_reproduced_from_its_data():
    assert _render() == CARD


def test_every_figure_follows_its_input():
    fig = {k: dict(v) for k, v in FIGURES.items()}
    fig["int8"]["wikiqa map"] = 0.5
    text = _render(layers=3, figures=fig, speed=SPEED | {"docs_per_s": 200.5, "peak_rss_mib": 99.0})
    assert f"A 3-layer {NOTES['family']} bi-encoder" in text and "200.5 docs/s, peak RSS 99 MiB." in text
    in_mb = {"docs_per_s": 1.0, "peak_rss_mb": 98.0, "command": "c"}  # a benchmark that measured MB says MB
    assert "Speed (c): 1.0 docs/s, peak RSS 98 MB." in _render(speed=in_mb)
    fused = FIGURES["fused"]["wikiqa map"]
    fp32 = FIGURES["fp32"]["wikiqa map"]
    assert f"- wikiqa map: INT8 0.500 (fp32 student {fp32:.3f}; fused with the first stage {fused:.3f}" in text
    pkg = json.loads((DEFAULT / "ranker.json").read_text(encoding="utf-8"))
    pkg["fusion"]["weight"] = 0.7
    pkg["fidelity"]["spearman"]["mean"] = 0.91
    text = _render(package=pkg)
    assert "weight 0.7 (z-scored" in text and "mean Spearman 0.91," in text


def test_a_cross_encoder_and_a_merged_student_are_described_as_such():
    text = _render(train_config=TRAIN_CONFIG | {"architecture": "cross"}, merge={"alpha": 0.7, "base": "pkg:m"})
    assert f"A {RECORD['layers']}-layer {NOTES['family']} cross-encoder ({NOTES['start']} start), INT8" in text
    assert "0.7 x those weights + 0.3 x the start (pkg:m)" in text
    assert "Then WiSE-FT" in _render() and "Then WiSE-FT" not in _render(merge=None)


def test_missing_notes_are_named():
    with pytest.raises(KeyError, match="licence"):
        _render(notes={k: v for k, v in NOTES.items() if k != "licence"})


def test_a_maxmin_rule_says_what_it_promises():
    pkg = json.loads((DEFAULT / "ranker.json").read_text(encoding="utf-8"))
    kept = pkg | {"fusion": pkg["fusion"] | {"objective": "maxmin", "never_below_first_stage": True}}
    assert "at or above the first-stage order on every one of those sets" in _render(package=kept)
    lost = pkg | {"fusion": pkg["fusion"] | {"objective": "maxmin", "never_below_first_stage": False}}
    assert "this one loses least on the worst" in _render(package=lost)
    pooled = pkg | {
        "fusion": {k: v for k, v in pkg["fusion"].items() if k not in ("objective", "never_below_first_stage")}
    }
    assert "Chosen max-min" not in _render(package=pooled)


def test_the_teacher_line_says_how_the_runs_were_combined():
    """Weights fitted per source are stated per source, largest first; one global weighting states its fit."""
    fitted = {"trec-dl": {"A": 0.25, "B": 0.75, "C": 0.0}, "wikiqa": {"E5": 1.0}}
    fit = {"trec-dl": {"slope": 0.5}, "wikiqa": {"slope": 0.25}, "squad": {"slope": 1.0}}
    text = _render(teacher={"runs": {"A": 1.0, "B": 1.0}, "fitted_weights": fitted, "fit": fit, "label_mix": 0.5})
    assert (
        "weighted per source by a non-negative fit on its judged train pairs (trec-dl: B 0.75, A 0.25; wikiqa: E5 1.00"
        in text
    )
    assert "squad: the configured weights of the runs it has, A x1.0, B x1.0)" in text
    assert "(slope trec-dl 0.50, wikiqa 0.25, squad 1.00)" in text and "C 0.00" not in text
    one = _render(teacher={"runs": {"A": 1.0}, "fit": {"slope": 0.34}, "label_mix": 0.5})
    assert (
        "averaged (A x1.0), mapped onto the 0-3 grade scale by a least-squares fit on the judged pairs (slope 0.340)"
        in one
    )
