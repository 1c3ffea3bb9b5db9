"""Fixtures of the C ABI tests: the library, built once per session, and a C compiler helper."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _compile_c(source: Path, out: Path, lib_dir: Path, *extra: str) -> Path:
    """Compile a C program against ``lib_dir``'s ranker.h (and libranker.so unless ``extra`` says otherwise)."""
    cmd = [
        "gcc",
        "-O1",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-std=gnu11",
        str(source),
        f"-I{lib_dir}",
        "-o",
        str(out),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return out


def _link_flags(lib_dir: Path) -> list[str]:
    return [f"-L{lib_dir}", "-lranker", f"-Wl,-rpath,{lib_dir}"]


@pytest.fixture(scope="session")
def compile_c():
    """``compile_c(source, out, lib_dir, *extra)``: gcc -Werror against lib_dir's ranker.h."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc: the C ABI cannot be built here")
    return _compile_c


@pytest.fixture(scope="session")
def link_flags():
    """``link_flags(lib_dir)``: the documented flags to link libranker.so with an rpath."""
    return _link_flags


@pytest.fixture(scope="session")
def cabi_dir(tmp_path_factory, compile_c) -> Path:
    """``ranker bindings build --out DIR`` run once: DIR holds libranker.so and ranker.h."""
    from ranker_sdk.cli import main

    out = tmp_path_factory.mktemp("cabi")
    assert main(["bindings", "build", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def rank_example(cabi_dir, tmp_path_factory, compile_c, link_flags) -> Path:
    """examples/c/rank.c, compiled with the documented one-line command."""
    out = tmp_path_factory.mktemp("example") / "rank"
    return compile_c(ROOT / "examples" / "c" / "rank.c", out, cabi_dir, *link_flags(cabi_dir))


@pytest.fixture(scope="session")
def docs_file(trec_query_docs, tmp_path_factory) -> tuple[str, list[str], Path]:
    """The real query, its 20 passages on one line each (white space runs made one space), and the file."""
    query, docs = trec_query_docs
    docs = [" ".join(d.split()) for d in docs]
    path = tmp_path_factory.mktemp("docs") / "docs.txt"
    path.write_text("".join(d + "\n" for d in docs), encoding="utf-8")
    return query, docs, path
