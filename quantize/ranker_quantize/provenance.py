"""Where a package came from: checkpoint hash, code commit and tool versions.

Everything recorded here is a pure function of the inputs and the environment (no dates, no
absolute paths), so packaging the same checkpoint twice gives byte-identical ``ranker.json``.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

__all__ = ["checkpoint_sha256", "code_commit", "tool_versions"]

_WEIGHT_SUFFIXES = (".safetensors",)  # pickled .bin weights are refused at load
_TOOLS = ("ranker-sdk", "torch", "transformers", "optimum-onnx", "onnx", "onnxruntime", "tokenizers")


def checkpoint_sha256(model_dir: Path) -> str:
    """sha256 over the names and sha256s of ``config.json``, the weight files and ``tokenizer.json``.

    Identifies the checkpoint independently of where it lies on disk.
    """
    model_dir = Path(model_dir)
    names = sorted(
        p.name
        for p in model_dir.iterdir()
        if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name in ("config.json", "tokenizer.json"))
    )
    h = hashlib.sha256()
    for name in names:
        digest = hashlib.sha256((model_dir / name).read_bytes()).hexdigest()
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def code_commit(start: Path | None = None) -> str | None:
    """The git commit checked out in the repository holding this code, or None.

    Reads ``.git/HEAD`` and the ref it names (loose or packed) directly, so it needs no ``git``
    binary and never runs a subprocess. A pip-installed copy has no ``.git`` and gives None.
    """
    here = (start or Path(__file__)).resolve()
    for parent in [here, *here.parents]:
        git = parent / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text(encoding="utf-8").strip()
            if not text.startswith("gitdir:"):
                return None
            git = (parent / text.split(":", 1)[1].strip()).resolve()
        if git.is_dir():
            return _resolve_head(git)
    return None


def _resolve_head(git: Path) -> str | None:
    try:
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head or None  # detached HEAD holds the commit itself
    ref = head.split(":", 1)[1].strip()
    common = git
    if (git / "commondir").is_file():  # worktrees keep refs in the main repository
        common = (git / (git / "commondir").read_text(encoding="utf-8").strip()).resolve()
    for root in (git, common):
        loose = root / ref
        if loose.is_file():
            return loose.read_text(encoding="utf-8").strip() or None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    return None


def tool_versions() -> dict[str, str]:
    """Installed versions of the tools that shaped the package (absent ones are skipped)."""
    out = {}
    for name in _TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out
