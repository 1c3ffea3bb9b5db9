"""The default package bundled in ranker_sdk: it is there, sealed, documented, and it ranks real data."""

from __future__ import annotations

import random

import numpy as np
from ranker_eval.beir import load_groups
from ranker_eval.metrics import pnr_pairs
from ranker_sdk import Ranker
from ranker_sdk.cli import main
from ranker_sdk.ranker import default_package_path


def test_a_default_package_is_bundled_with_its_model_card():
    path = default_package_path()
    assert path is not None, "sdk/ranker_sdk/default/ must hold the bundled package"
    ranker = Ranker.load(threads=1)
    assert ranker.source == str(path)
    assert ranker.config.quantization["precision"] == "int8"
    assert ranker.config.fidelity["passed"] is True
    card = ranker.model_card
    assert card is not None and "research" in card.lower() and "| model |" in card


def test_the_default_ranks_wikiqa_dev_well_above_chance(data_dir):
    """Share of label-distinct pairs ordered right (PNR's pairs) over answered wikiqa dev questions,
    against random orders of the same lists (about one half). numpy only: runs in a runtime-only install."""
    ranker = Ranker.load(threads=1)
    groups = [g for g in load_groups(data_dir / "wikiqa", "dev") if any(g.labels) and len(g.docs) > 1][:40]
    rng = random.Random(0)
    ours, chance = np.zeros(2), np.zeros(2)
    for g in groups:
        labels = [y or 0 for y in g.labels]
        ours += pnr_pairs(ranker.score(g.query, list(g.docs)), labels)
        for _ in range(20):
            chance += pnr_pairs([rng.random() for _ in labels], labels)
    right, by_chance = ours[0] / ours.sum(), chance[0] / chance.sum()
    assert ours.sum() > 300 and abs(by_chance - 0.5) < 0.05, (ours, chance)
    assert right > by_chance + 0.2, (right, by_chance)  # 0.88 against 0.51 with the bundled default


def test_cli_info_and_verify_default_to_the_bundled_package(capsys):
    assert main(["verify"]) == 0
    assert "manifest verified" in capsys.readouterr().out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "precision int8" in out and "# ranker-sdk default model" in out
