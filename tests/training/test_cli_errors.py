"""``ranker train ...`` and ``ranker eval`` with bad input: one ``error:`` line naming it, never a traceback.

Every case fails before any model is loaded or trained (config, data and paths are checked first),
so these run in seconds.
"""

from __future__ import annotations

import json

import pytest

from ..cli_helpers import error_line, run_main, run_subprocess


@pytest.fixture(scope="module")
def bad(tmp_path_factory, data_dir):
    """A folder of broken inputs, one per mistake a user makes."""
    d = tmp_path_factory.mktemp("bad")
    (d / "syntax.yaml").write_text("train:\n  lr: [1e-4\n", encoding="utf-8")
    (d / "syntax.json").write_text('{"train": {"lr": 1e-4,}}\n', encoding="utf-8")
    (d / "unknown.yaml").write_text("data: [../shared/data/wikiqa]\nlearning_rate: 1\n", encoding="utf-8")
    (d / "type.yaml").write_text("batch_size: many\n", encoding="utf-8")
    (d / "clicks.jsonl").write_text(
        json.dumps({"query": "q", "title": "t", "clicks": 1})
        + "\n"
        + json.dumps({"query": "q", "clicks": "many"})
        + "\n",
        encoding="utf-8",
    )
    (d / "scores.jsonl").write_text("not a scores line\n", encoding="utf-8")
    (d / "empty_model").mkdir()
    beir = d / "beir"  # a BEIR folder whose qrels has a grade that is not a number
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "text": "a doc"}\n', encoding="utf-8")
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "a query"}\n', encoding="utf-8")
    (beir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n", encoding="utf-8")
    return d


WIKIQA = "{data}/wikiqa"

# (argv with {bad}/{data}/{tmp} placeholders, what the error line must name)
CASES = {
    "merge: alpha out of range": (
        ["train", "merge", "--tuned", "{bad}/empty_model", "--alpha", "1.5", "--out", "{tmp}/m"],
        ["alpha must be in (0, 1]", "1.5"],
    ),
    "merge: no student folder": (
        ["train", "merge", "--tuned", "{tmp}/nowhere", "--alpha", "0.7", "--out", "{tmp}/m"],
        ["nowhere", "not a local checkpoint folder"],
    ),
    "cpt: YAML syntax error": (["train", "cpt", "--config", "{bad}/syntax.yaml"], ["syntax.yaml:3", "not valid YAML"]),
    "cpt: click-log line": (
        ["train", "cpt", "--model", "{bad}/empty_model", "--data", "{bad}/clicks.jsonl", "--out", "{tmp}/c"],
        ["clicks.jsonl:2", "'clicks' must be an integer, got 'many'"],
    ),
    "cpt: --max-queries 0": (["train", "cpt", "--max-queries", "0"], ["--max-queries", "'0'"]),
    "teacher: unknown key": (
        ["train", "teacher", "--config", "{bad}/unknown.yaml"],
        ["unknown.yaml", "'learning_rate'"],
    ),
    "teacher: not a checkpoint folder": (
        [
            "train",
            "teacher",
            "--model",
            "{bad}/empty_model",
            "--data",
            WIKIQA,
            "--max-queries",
            "2",
            "--out",
            "{tmp}/t",
        ],
        ["empty_model", "no config.json"],
    ),
    "label: wrong type": (
        ["train", "label", "--config", "{bad}/type.yaml"],
        ["type.yaml", "batch_size", "expected int, got 'many'"],
    ),
    "label: no teacher folder": (
        ["train", "label", "--teacher", "{tmp}/none", "--data", WIKIQA, "--max-queries", "2", "--out", "{tmp}/s.jsonl"],
        ["none", "not a teacher folder"],
    ),
    "label: bad shard": (
        ["train", "label", "--teacher", "x", "--data", WIKIQA, "--shard", "2", "--num-shards", "2"],
        ["shard=2 num_shards=2"],
    ),
    "distill: missing scores file": (
        ["train", "distill", "--student", "x", "--teacher-scores", "{tmp}/none.jsonl", "--data", WIKIQA]
        + ["--max-queries", "2", "--out", "{tmp}/s"],
        ["none.jsonl", "run `ranker train label`"],
    ),
    "distill: bad --data spec": (["train", "distill", "--data", "=train"], ["--data '=train'", "DIR=SPLIT"]),
    "distill: data path": (
        ["train", "distill", "--student", "x", "--loss", "bce", "--data", "{tmp}/nowhere", "--out", "{tmp}/s"],
        ["nowhere", "neither a BEIR folder nor a click-log"],
    ),
    "recipe: JSON syntax error": (
        ["train", "recipe", "--config", "{bad}/syntax.json", "--out", "{tmp}/r"],
        ["syntax.json:1", "not valid JSON"],
    ),
    "recipe: no config file": (
        ["train", "recipe", "--config", "{tmp}/none.yaml", "--out", "{tmp}/r"],
        ["cannot read config", "none.yaml"],
    ),
    "eval: unknown model": (
        ["eval", "--model", "{tmp}/none", "--data", WIKIQA, "--max-queries", "2"],
        ["--model", "none", "expected a package"],
    ),
    "eval: scores file line": (
        ["eval", "--model", "{bad}/scores.jsonl", "--data", WIKIQA, "--max-queries", "2"],
        ["scores.jsonl:1", "expected"],
    ),
    "eval: qrels grade": (["eval", "--model", "bm25", "--data", "{bad}/beir"], ["dev.tsv:2", "grade 'high'"]),
    "eval: missing split": (["eval", "--model", "bm25", "--data", WIKIQA, "--split", "test"], ["test.tsv", "'test'"]),
    "eval: --k 0": (["eval", "--model", "bm25", "--data", WIKIQA, "--k", "0"], ["--k", "'0'"]),
    "eval: package without fusion": (
        ["eval", "--model", "{bad}/empty_model", "--first-stage", "--data", WIKIQA, "--max-queries", "2"],
        ["--first-stage", "not a package"],
    ),
}


def _argv(args, bad, data_dir, tmp_path):
    return [a.format(bad=bad, data=data_dir, tmp=tmp_path) for a in args]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_ends_in_one_error_line(case, bad, data_dir, tmp_path, capsys):
    args, names = CASES[case]
    rc, err = run_main(_argv(args, bad, data_dir, tmp_path), capsys)
    error_line(rc, err, *(n.format(bad=bad, data=data_dir, tmp=tmp_path) for n in names))


def test_every_training_command_is_covered():
    from ranker_sdk.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    train = next(a for a in sub.choices["train"]._actions if a.dest == "stage")
    covered = {" ".join(args[:2]) if args[0] == "train" else args[0] for args, _ in CASES.values()}
    assert covered == {f"train {s}" for s in train.choices} | {"eval"}


@pytest.mark.parametrize(
    "args,names",
    [
        (["train", "cpt", "--config", "{bad}/syntax.yaml"], ["syntax.yaml:3"]),
        (["eval", "--model", "bm25", "--data", "{bad}/beir"], ["dev.tsv:2"]),
    ],
)
def test_a_real_process_prints_no_traceback(args, names, bad, data_dir, tmp_path):
    rc, err = run_subprocess(_argv(args, bad, data_dir, tmp_path))
    assert rc == 1
    assert error_line(rc, err, *(n.format(bad=bad) for n in names)).startswith("error: ")
