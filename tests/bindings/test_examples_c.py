"""examples/c as the README documents it: the Makefile builds under build/, `-` is the bundled package."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from ranker_sdk import Ranker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "c"


@pytest.fixture(scope="module")
def make():
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("no make/gcc here")
    return lambda *args: subprocess.run(
        ["make", "-C", str(EXAMPLE), *args], capture_output=True, text=True, timeout=600
    )


def test_make_run_ranks_the_sample_docs_with_the_bundled_package(make, cabi_dir, tmp_path):
    """`make run` builds build/rank and ranks examples/c/docs.txt with "-": the same order as the Python SDK."""
    r = make(f"BUILD={tmp_path}", f"RANKER_DIR={cabi_dir}", "run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "rank").is_file() and not (EXAMPLE / "rank").exists()
    rows = [ln.split("\t") for ln in r.stdout.splitlines() if "\t" in ln]
    docs = [ln for ln in (EXAMPLE / "docs.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
    expected = Ranker.load(threads=1).rank("is pew research trustworthy", docs, top_k=5)
    assert [int(row[1]) for row in rows] == [h.index for h in expected]
    assert [float(row[2]) for row in rows] == pytest.approx([h.score for h in expected], abs=1e-5)
    assert rows[0][3] == docs[expected[0].index]


def test_make_without_ranker_says_what_to_activate(make, tmp_path):
    r = make(f"BUILD={tmp_path}", "RANKER=")
    assert r.returncode != 0
    assert "error: no 'ranker' command to build libranker with: run 'bash scripts/test.sh'" in r.stderr
    assert ". .venv/bin/activate" in r.stderr


def test_the_build_folder_is_git_ignored():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    r = subprocess.run(
        ["git", "check-ignore", "build/rank", "build/cabi/libranker.so"], cwd=ROOT, capture_output=True, text=True
    )
    assert r.stdout.split() == ["build/rank", "build/cabi/libranker.so"], r.stdout + r.stderr


def test_a_c_host_writes_nothing_to_home_or_tmp(rank_example, docs_file, tiny_package, tmp_path):
    """The embedded runtime keeps onnxruntime's telemetry off inside C hosts too (no ~/.cache/Microsoft, no $TMPDIR/.ses)."""
    query, _, path = docs_file
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(home / ".cache")}
    proc = subprocess.run(
        [str(rank_example), str(tiny_package), query, str(path), "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 3
    assert [p.name for p in home.rglob("*")] == [] and [p.name for p in tmp.rglob("*")] == []
