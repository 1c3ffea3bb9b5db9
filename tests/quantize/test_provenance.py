"""provenance.py: checkpoint hash and commit, read without running git."""

from __future__ import annotations

import shutil

from ranker_quantize.provenance import checkpoint_sha256, code_commit, tool_versions

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_commit_from_loose_ref(tmp_path):
    (tmp_path / ".git" / "refs" / "heads").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / ".git" / "refs" / "heads" / "main").write_text(SHA + "\n")
    (tmp_path / "pkg").mkdir()
    assert code_commit(tmp_path / "pkg" / "mod.py") == SHA


def test_commit_from_packed_refs_and_detached(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/dev\n")
    (tmp_path / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{SHA} refs/heads/dev\n")
    assert code_commit(tmp_path / "x.py") == SHA
    (tmp_path / ".git" / "HEAD").write_text(SHA[::-1] + "\n")
    assert code_commit(tmp_path / "x.py") == SHA[::-1]


def test_no_repository_gives_none(tmp_path):
    # tmp_path lies outside any repository (pytest's base temp is under /tmp).
    assert code_commit(tmp_path / "x.py") is None


def test_checkpoint_hash_ignores_location(tiny_bert_dir, tmp_path):
    copy = shutil.copytree(tiny_bert_dir, tmp_path / "elsewhere")
    assert checkpoint_sha256(copy) == checkpoint_sha256(tiny_bert_dir)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace('"gelu"', '"relu"'))
    assert checkpoint_sha256(copy) != checkpoint_sha256(tiny_bert_dir)


def test_tool_versions():
    v = tool_versions()
    assert {"onnxruntime", "onnx", "torch", "transformers"} <= set(v)
