"""Fixtures of the runtime tests that need nothing beyond the runtime: the bundled default package.

The tiny model of ``tests/conftest.py`` is built with torch; tests that use it are marked
``needs_torch`` there and skipped in a runtime-only install (``pip install ranker-sdk``). What
only needs *a* package (tampering with its files, its manifest, its ``ranker.json``) uses a copy
of the bundled default here instead, so it runs everywhere.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ranker_sdk.package import MANIFEST, LoadedPackage, read_package, sha256_hex
from ranker_sdk.ranker import default_package_path


@pytest.fixture(scope="session")
def default_package() -> LoadedPackage:
    """The bundled default package, read and verified (its config and file bytes)."""
    path = default_package_path()
    assert path is not None, "sdk/ranker_sdk/default/ must hold the bundled package"
    return read_package(path)


@pytest.fixture(scope="session")
def default_dir() -> Path:
    """The bundled default package's directory."""
    path = default_package_path()
    assert path is not None, "sdk/ranker_sdk/default/ must hold the bundled package"
    return path


@pytest.fixture(scope="session")
def default_ranker(default_dir):
    """The bundled default, loaded once (one thread); a Ranker is immutable, so tests share it."""
    from ranker_sdk import Ranker

    return Ranker.load(default_dir, threads=1)


@pytest.fixture
def pkg_copy(tmp_path) -> Path:
    """A writable copy of the bundled default package, to tamper with."""
    dst = tmp_path / "pkg"
    shutil.copytree(default_package_path(), dst)
    return dst


def reseal(pkg: Path) -> None:
    """Rewrite ``manifest.json`` for the files now in ``pkg`` (to reach the checks behind the manifest).

    Written from the format (DESIGN.md: the sha256 and size of every other file), not with the
    packager's writer, so the runtime's reader is tested against the contract itself.
    """
    manifest = json.loads((pkg / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"] = {
        p.name: {"sha256": sha256_hex(p.read_bytes()), "size": p.stat().st_size}
        for p in sorted(pkg.iterdir())
        if p.name != MANIFEST
    }
    (pkg / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
