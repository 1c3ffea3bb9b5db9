"""The ``ranker`` command as issue 21 reproduced it: no traceback, no silent success, no surprise.

Each test runs the command the issue names, with the input it names, and checks for one
``error: ...`` line and exit status 1 (or the right result). Missing extras are reproduced in a
child process whose ``sys.modules`` blocks the extra's modules (``None`` there makes ``import``
fail and ``find_spec`` report the module absent): the dependency is blocked, not the unit under
test, and a runtime-only venv (``.venv-runtime``) behaves the same without the block.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ranker_sdk.cli import main

from ..cli_helpers import error_line, run_main

DOCS_JSONL = (
    '{"id": "a", "text": "Paris is the capital of France.", "title": "Paris"}\n{"id": "b", "text": "Bananas."}\n'
)
EXTRAS = ("torch", "transformers", "rank_bm25", "cffi", "onnx", "optimum", "peft")


def _run(args, *, blocked=(), stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """``ranker ARGS`` in a child process with the modules ``blocked`` made unimportable."""
    code = (
        "import sys\n"
        f"for m in {tuple(blocked)!r}: sys.modules[m] = None\n"
        "from ranker_sdk.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


# -- a command whose extra is missing says which, in one line ------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["package", "--model", "x", "--out", "y"], "'ranker package' needs the quantize extra"),
        (["train", "distill", "--max-steps", "1"], "'ranker train' needs the train extra"),
        (["eval", "--model", "bm25", "--data", "{data}/wikiqa", "--max-queries", "2"], "needs the train extra"),
        (["bindings", "build", "--out", "{tmp}/cabi"], "'ranker bindings' needs the bindings extra"),
        (["eval", "--package", "default", "--data", "{data}/wikiqa"], "'ranker eval' needs the eval extra"),
        (["fusion", "--data", "{data}/wikiqa", "--out", "{tmp}/out"], "'ranker fusion' needs the eval extra"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it_and_how_to_install(args, expected, data_dir, tmp_path):
    args = [a.format(data=data_dir, tmp=tmp_path) for a in args]
    blocked = EXTRAS + (("ir_measures", "scipy") if "needs the eval extra" in expected else ())
    if "bm25" in args and not all(importlib.util.find_spec(m) for m in ("ir_measures", "scipy", "tqdm")):
        expected = "'ranker eval' needs the eval extra"  # a runtime-only venv lacks eval's own extra first
    r = _run(args, blocked=blocked)
    line = error_line(r.returncode, r.stderr, expected, "pip install 'ranker-sdk[")
    assert r.returncode == 1, r.stderr
    assert "ModuleNotFoundError" not in r.stderr and line.startswith("error: ")


def test_help_says_which_commands_need_an_extra():
    r = _run(["--help"], blocked=EXTRAS)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    for command, extra in (("package", "quantize"), ("train", "train"), ("bindings", "bindings")):
        assert f"[needs the {extra} extra: pip install 'ranker-sdk[{extra}]']" in text, (command, r.stdout)
    rank_line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("rank "))
    assert "needs" not in rank_line


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the fast path is measured with torch present")
def test_package_with_a_missing_model_fails_before_importing_torch():
    code = (
        "import sys\nfrom ranker_sdk.cli import main\n"
        "rc = main(['package', '--model', '/nonexistent', '--out', '/tmp/never'])\n"
        "print('torch' in sys.modules)\nsys.exit(rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    error_line(r.returncode, r.stderr, "/nonexistent", "no config.json")
    assert r.stdout.strip() == "False", "torch was imported before the path was checked"


# -- the readers of `ranker rank` ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "flags", "expected"),
    [
        ("[" * 100_000 + "\n", [], "deep.jsonl:1: JSON nested too deeply"),
        ('{"text": "a", "score": ' + "9" * 400 + "}\n", ["--first-stage"], "deep.jsonl:1: 'score' 99999"),
        ('{"text": "a", "score": 1e400}\n', ["--first-stage"], "not a finite number"),
        ('{"text": "a", "title": 5}\n', [], "deep.jsonl:1: a doc must be an object with a str 'text'"),
        ('{"text": "a"}\n{"txt": "b"}\n', [], "deep.jsonl:2:"),
    ],
)
def test_rank_readers_turn_malformed_docs_into_file_line_errors(
    default_dir, tmp_path, capsys, content, flags, expected
):
    f = tmp_path / "deep.jsonl"
    f.write_text(content, encoding="utf-8")
    rc, err = run_main(["rank", "--package", str(default_dir), "--query", "q", "--docs", str(f), *flags], capsys)
    error_line(rc, err, expected)
    assert rc == 1


@pytest.mark.parametrize(("name", "content"), [("empty.txt", ""), ("empty.jsonl", ""), ("blank.txt", "\n  \n\n")])
def test_rank_on_empty_input_is_an_error_not_silent_success(default_dir, tmp_path, capsys, name, content):
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    rc, err = run_main(["rank", "--package", str(default_dir), "--query", "q", "--docs", str(f)], capsys)
    error_line(rc, err, name, "no docs")
    assert rc == 1


def test_rank_on_blank_stdin_is_an_error(default_dir):
    r = _run(["rank", "--package", str(default_dir), "--query", "q"], stdin="\n\n")
    error_line(r.returncode, r.stderr, "<stdin>", "no docs")
    assert r.returncode == 1


def test_rank_json_returns_the_users_doc_as_given(default_dir, tmp_path, capsys):
    f = tmp_path / "docs.jsonl"
    f.write_text(DOCS_JSONL, encoding="utf-8")
    assert main(["rank", "--package", str(default_dir), "--query", "capital", "--docs", str(f), "--json"]) == 0
    rows = sorted((json.loads(x) for x in capsys.readouterr().out.splitlines()), key=lambda r: r["index"])
    given = [json.loads(x) for x in DOCS_JSONL.splitlines()]
    assert len(rows) == 2
    assert rows == [{"index": i, "score": r["score"], "doc": given[i]} for i, r in enumerate(rows)]
    assert "title" not in next(r["doc"] for r in rows if r["doc"]["id"] == "b")  # no empty title added


def test_query_from_a_file_and_from_stdin(default_dir, tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text(DOCS_JSONL, encoding="utf-8")
    long_query = "capital of france " * 70_000  # about 1.2 MB: past the OS argument limit
    qf = tmp_path / "query.txt"
    qf.write_text(long_query, encoding="utf-8")
    base = ["rank", "--package", str(default_dir), "--docs", str(docs), "--json"]
    by_file = _run([*base, "--query-file", str(qf)])
    by_stdin = _run([*base, "--query", "-"], stdin=long_query)
    assert by_file.returncode == 0 and by_stdin.returncode == 0, by_file.stderr + by_stdin.stderr
    assert by_file.stdout == by_stdin.stdout and len(by_file.stdout.splitlines()) == 2
    both = _run(["rank", "--package", str(default_dir), "--query", "-"], stdin="q")
    error_line(both.returncode, both.stderr, "--query - and --docs - both read stdin")


def test_rank_over_hundreds_of_docs_shows_a_progress_bar_on_stderr(default_dir, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"short passage number {i}\n" for i in range(600)), encoding="utf-8")
    args = ["rank", "--package", str(default_dir), "--query", "passage", "--docs", str(docs), "--top-k", "1"]
    shown = _run(args, env={"RANKER_PROGRESS": "1"})
    assert shown.returncode == 0, shown.stderr
    assert "256/600 docs" in shown.stderr and "600/600 docs" in shown.stderr
    assert len(shown.stdout.splitlines()) == 1  # the bar never touches stdout
    quiet = _run(args, env={"RANKER_PROGRESS": "0"})
    assert quiet.returncode == 0 and "docs [" not in quiet.stderr


# -- one name for a package: --package everywhere, `default` the bundled one ---------------------


@pytest.mark.parametrize("command", ["verify", "info"])
def test_verify_and_info_take_package_like_rank(command, default_dir, capsys):
    for args in (
        [command, "--package", str(default_dir)],
        [command, str(default_dir)],
        [command, "--package", "default"],
    ):
        rc, err = run_main(args, capsys)
        assert rc == 0, err


def test_rank_package_default_names_the_bundled_package(default_dir, tmp_path, capsys):
    f = tmp_path / "docs.txt"
    f.write_text("Paris is in France.\nBananas.\n", encoding="utf-8")
    assert main(["rank", "--package", "default", "--query", "paris", "--docs", str(f), "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert sorted(r["doc"] for r in rows) == ["Bananas.", "Paris is in France."]


# -- misleading messages --------------------------------------------------------------------------


def test_fusion_data_error_names_data_not_fit_fusion(tmp_path, capsys):
    pytest.importorskip("ir_measures", reason="ranker fusion needs the eval extra")
    (tmp_path / "notpkg").mkdir()
    rc, err = run_main(["fusion", "--data", str(tmp_path / "notpkg"), "--out", str(tmp_path / "out")], capsys)
    line = error_line(rc, err, "--data", "notpkg", "no candidates.run")
    assert "--fit-fusion" not in line


def test_a_folder_with_a_symlink_that_is_not_a_package_says_not_a_package(tmp_path, capsys):
    (tmp_path / "dir").mkdir()
    (tmp_path / "target").mkdir()
    os.symlink(tmp_path / "target", tmp_path / "dir" / "link")
    rc, err = run_main(
        ["rank", "--package", str(tmp_path / "dir"), "--query", "q", "--docs", str(_docs(tmp_path))], capsys
    )
    line = error_line(rc, err, "not a package")
    assert "refusing symlink" not in line


def test_info_on_a_jsonl_file_says_it_is_not_a_package(tmp_path, capsys):
    rc, err = run_main(["info", str(_docs(tmp_path))], capsys)
    line = error_line(rc, err, "docs.jsonl", "not a package")
    assert ".tar.gz (" not in line and "not a readable" not in line


def _docs(tmp_path: Path) -> Path:
    f = tmp_path / "docs.jsonl"
    f.write_text(DOCS_JSONL, encoding="utf-8")
    return f


# -- the tests' own message -----------------------------------------------------------------------


def test_missing_shared_data_message_names_ranker_data(tmp_path):
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/evaluation/test_beir.py::test_trec_rag24_dev",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RANKER_DATA": str(tmp_path / "nowhere")},
    )
    assert r.returncode != 0
    assert "$RANKER_DATA" in r.stdout and str(tmp_path / "nowhere") in r.stdout, r.stdout[-2000:]


# -- ranker fusion --data D with malformed data: one error line naming FILE:LINE -----------------


def _beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "Paris."}\n{"_id": "d2", "text": "Lyon."}\n')
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "capital of france"}\n')
    (root / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    (root / "candidates.run").write_text("q1 Q0 d1 1 2.0 bm25\nq1 Q0 d2 2 1.0 bm25\n")
    return root


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("candidates.run", b"q1 Q0 d1 1 2.0 bm25\nq1 Q0 d2 2 \xff1.0 bm25\n", "candidates.run:2: not UTF-8"),
        ("corpus.jsonl", b'{"_id": "d1", "text": "Par\xe9s."}\n', "corpus.jsonl:1: not UTF-8"),
        ("queries.jsonl", b"[" * 100_000 + b"\n", "queries.jsonl:1: JSON nested too deeply"),
        ("candidates.run", b"q1 Q0 d1 1 2.0 bm25\nq0 Q0\n", "candidates.run:2: expected 'qid Q0 docid rank score tag'"),
        ("candidates.run", b"q0\n", "candidates.run:1: expected 'qid Q0 docid rank score tag'"),
        ("qrels/dev.tsv", b"q1\td1\t1\nq0\n", "dev.tsv:2: expected 'query-id<TAB>corpus-id<TAB>grade'"),
        ("candidates.run", b"q1 Q0 d1 1 2.0 bm25\nq1 Q0 d9 2 1.0 bm25\n", "candidates.run:2: docid 'd9' is not in"),
    ],
)
def test_fusion_refuses_malformed_data_naming_file_and_line(tmp_path, capsys, name, data, expected):
    pytest.importorskip("ir_measures", reason="ranker fusion needs the eval extra")
    root = _beir(tmp_path / "data")
    (root / name).write_bytes(data)
    rc, err = run_main(["fusion", "--data", str(root), "--out", str(tmp_path / "out")], capsys)
    error_line(rc, err, expected)
    assert rc == 1 and not (tmp_path / "out").exists()
