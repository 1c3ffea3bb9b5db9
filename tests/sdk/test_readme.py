"""The README as a newcomer follows it: its Python blocks run, its CLI examples run, its query ids exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ranker_eval.beir import read_qrels

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str, text: str = README) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _section(title: str) -> str:
    """The README text from the ``## title`` heading to the next ``## `` heading."""
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _env() -> dict[str, str]:
    """The environment of an activated venv: this interpreter's bin/ first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.mark.parametrize("code", _blocks("python"), ids=lambda c: c.splitlines()[0][:40])
def test_every_python_block_runs_as_written(code):
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env())
    assert r.returncode == 0, f"{code}\n---\n{r.stderr}"


def test_the_python_sdk_block_prints_its_hits():
    code, fusion = _blocks("python", _section("The Python SDK"))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env())
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and {ln.split()[0] for ln in lines} == {"0", "1"}, r.stdout + r.stderr
    # the first-stage fusion block: a ranking of the three docs, then the package's fusion weight
    r = subprocess.run(
        [sys.executable, "-c", fusion], cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env()
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    order, _, weight = r.stdout.strip().partition("] ")
    assert sorted(int(i) for i in order.strip("[").split(",")) == [0, 1, 2], r.stdout
    assert weight == "no fusion rule" or float(weight) >= 0, r.stdout


def test_the_runnable_cli_examples_run_as_written():
    """The first bash block of 'The CLI', line by line, in a shell whose PATH finds `ranker` (an active venv)."""
    block = _blocks("bash", _section("The CLI"))[0]
    commands = [ln.split("  #")[0].strip() for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(commands) >= 5
    for cmd in commands:
        r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env())
        assert r.returncode == 0 and "Traceback" not in r.stderr, f"{cmd}\n{r.stdout}\n{r.stderr}"
        assert r.stdout.strip(), cmd


def test_every_qid_in_the_readme_and_examples_exists(data_dir):
    dev = set(read_qrels(data_dir / "trec-rag24", "dev"))
    texts = [README] + [p.read_text(encoding="utf-8") for p in (ROOT / "examples").rglob("*.py")]
    texts += [p.read_text(encoding="utf-8") for p in (ROOT / "scripts").glob("*.sh")]
    qids = {q for t in texts for q in re.findall(r"--qid[ =]+(\d[\w-]*)", t)}
    assert qids, "the README shows a --qid example"
    assert qids <= dev, f"--qid values in no trec-rag24 dev query: {sorted(qids - dev)}"
