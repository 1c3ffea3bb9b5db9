"""Writing a model package: the files, ``ranker.json`` and the ``manifest.json`` that seals them.

The format is defined by :mod:`ranker_sdk.package` (which reads it); this module is its only
writer. Output is deterministic: the same inputs give byte-identical files, and ``--tar``
archives carry fixed mtimes, owners and modes.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path

from ranker_sdk.errors import InputError
from ranker_sdk.package import FORMAT_VERSION, MANIFEST, REQUIRED_FILES, PackageConfig, sha256_hex

__all__ = ["check_out_dir", "write_package", "tar_package", "manifest_bytes", "config_bytes"]


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def config_bytes(config: PackageConfig) -> bytes:
    """``ranker.json`` for ``config``, byte for byte as :func:`write_package` writes it."""
    return _json_bytes(config.to_dict())


def manifest_bytes(files: Mapping[str, bytes]) -> bytes:
    """``manifest.json`` sealing ``files`` (name -> bytes): the sha256 and size of each."""
    return _json_bytes(
        {
            "format_version": FORMAT_VERSION,
            "files": {n: {"sha256": sha256_hex(b), "size": len(b)} for n, b in sorted(files.items())},
        }
    )


def check_out_dir(out_dir: str | os.PathLike[str], *, tar: bool = False) -> Path:
    """``out_dir`` as a Path, if a package may be written there: it must not exist or be empty.

    The one check of where a package goes: :func:`write_package` makes it when writing, and
    :func:`~ranker_quantize.build_package` before minutes of export (with ``tar``, the
    ``<out_dir>.tar.gz`` beside it must not exist either).

    Raises:
        InputError: ``out_dir`` is a file or a non-empty directory, or the tarball exists.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out} exists and is not an empty directory; choose a new path")
    if tar and out.with_name(out.name + ".tar.gz").exists():
        raise InputError(f"{out}.tar.gz exists; remove it or choose a new --out")
    return out


def write_package(out_dir: str | os.PathLike[str], files: Mapping[str, bytes], config: PackageConfig) -> Path:
    """Write ``files`` plus ``ranker.json`` and ``manifest.json`` into ``out_dir``.

    ``files`` maps names (``model.onnx``, ``tokenizer.json``, optional extras such as
    ``MODEL_CARD.md``) to their bytes. ``out_dir`` must not exist or be empty: a package is
    written whole or not at all (it is assembled in a sibling temp directory and renamed).

    Raises:
        InputError: ``out_dir`` is taken (:func:`check_out_dir`), or a required file is missing.
    """
    out = check_out_dir(out_dir)
    all_files = dict(files)
    all_files["ranker.json"] = config_bytes(config)
    for name in REQUIRED_FILES:
        if name not in all_files:
            raise InputError(f"a package needs {name}; got only {sorted(all_files)}")
    all_files[MANIFEST] = manifest_bytes(all_files)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, data in all_files.items():
        target = tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out


def tar_package(pkg_dir: str | os.PathLike[str], tar_path: str | os.PathLike[str] | None = None) -> Path:
    """Archive a package directory as a reproducible ``.tar.gz`` (one top-level folder)."""
    src = Path(pkg_dir)
    dst = Path(tar_path) if tar_path else src.with_name(src.name + ".tar.gz")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(f"{src.name}/{path.relative_to(src).as_posix()}")
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    with open(dst, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())
    return dst
