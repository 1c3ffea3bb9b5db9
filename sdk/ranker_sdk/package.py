"""Reading and verifying a model package (the contract between ``quantize`` and ``sdk``).

A package is a directory, or a ``.tar.gz`` of one, holding:

- ``model.onnx``: int64 inputs ``[batch, seq]`` named in ``ranker.json``, one float score per row;
- ``tokenizer.json``: a ``tokenizers`` file;
- ``ranker.json``: the :class:`PackageConfig` (format version, lengths, input names, score kind,
  quantization, provenance, fidelity report);
- ``manifest.json``: ``{"format_version": 1, "files": {name: {"sha256": hex, "size": n}}}`` for
  every other file.

Safety comes from the order of operations. Every file is read into memory exactly once, its
size and sha256 are checked against the manifest, and only then is any byte handed to a parser
(JSON, tokenizers, onnxruntime). Parsers are given the verified bytes, never the path, so a file
swapped on disk after the check is never read. Paths that could escape the package (absolute,
``..``, symlinks, devices) are refused, and so is any file the manifest does not list.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import PackageError

__all__ = [
    "FORMAT_VERSION",
    "REQUIRED_FILES",
    "PackageConfig",
    "ScoreConfig",
    "LoadedPackage",
    "read_package",
    "sha256_hex",
]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONFIG = "ranker.json"
REQUIRED_FILES = ("model.onnx", "tokenizer.json", CONFIG)
# A package larger than this is refused before it is read: a cross-encoder for CPU ranking is
# tens of MB, and reading a runaway file into memory would take the host down.
MAX_PACKAGE_BYTES = 2 * 1024**3
_ALLOWED_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data`` (the manifest's hash)."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ScoreConfig:
    """How the model's raw output becomes the score the SDK returns.

    ``kind="raw"`` returns the model output unchanged. ``kind="sigmoid"`` returns
    ``1 / (1 + exp(-(scale * raw + bias)))``, a calibrated probability.
    """

    kind: str = "raw"
    scale: float = 1.0
    bias: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ScoreConfig":
        kind = d.get("kind", "raw")
        if kind not in ("raw", "sigmoid"):
            raise PackageError(
                f"ranker.json: score.kind must be 'raw' or 'sigmoid', got {kind!r}; "
                "the package was written by a newer or broken packager"
            )
        return cls(kind=kind, scale=float(d.get("scale", 1.0)), bias=float(d.get("bias", 0.0)))


@dataclass(frozen=True)
class PackageConfig:
    """The parsed ``ranker.json``: everything the runtime needs to know, so it never guesses.

    Attributes:
        format_version: must equal :data:`FORMAT_VERSION`.
        max_length: tokens per (query, doc) pair, special tokens included.
        query_max_tokens: the query's budget, so a long query never squeezes the doc out.
        doc_max_chars: raw doc text is cut to this many characters before tokenizing.
        inputs: ONNX input names, a subset of input_ids / attention_mask / token_type_ids.
        title_separator: a doc with a title is ``title + title_separator + text``.
        pad_token_id: the id used to pad input_ids (attention_mask is 0 there).
        score: see :class:`ScoreConfig`.
        quantization, provenance, fidelity: free-form records from the packager.
    """

    format_version: int
    max_length: int
    query_max_tokens: int
    doc_max_chars: int
    inputs: tuple[str, ...]
    title_separator: str = " | "
    pad_token_id: int = 0
    score: ScoreConfig = field(default_factory=ScoreConfig)
    quantization: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    fidelity: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PackageConfig":
        """Validate and build from the parsed JSON; raises :class:`PackageError`."""
        if not isinstance(d, Mapping):
            raise PackageError("ranker.json must hold a JSON object")
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise PackageError(
                f"ranker.json: format_version {version!r} is not supported by this ranker-sdk "
                f"(it reads version {FORMAT_VERSION}); upgrade ranker-sdk or repackage the model"
            )
        try:
            cfg = cls(
                format_version=int(version),
                max_length=int(d["max_length"]),
                query_max_tokens=int(d["query_max_tokens"]),
                doc_max_chars=int(d["doc_max_chars"]),
                inputs=tuple(str(x) for x in d["inputs"]),
                title_separator=str(d.get("title_separator", " | ")),
                pad_token_id=int(d.get("pad_token_id", 0)),
                score=ScoreConfig.from_dict(d.get("score", {})),
                quantization=dict(d.get("quantization", {})),
                provenance=dict(d.get("provenance", {})),
                fidelity=dict(d.get("fidelity", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PackageError(f"ranker.json is missing or has a malformed field: {exc!r}") from exc
        if cfg.max_length < 8 or not 1 <= cfg.query_max_tokens < cfg.max_length - 3:
            raise PackageError(
                f"ranker.json: need max_length >= 8 and 1 <= query_max_tokens < max_length - 3, "
                f"got max_length={cfg.max_length}, query_max_tokens={cfg.query_max_tokens}"
            )
        if cfg.doc_max_chars < 1:
            raise PackageError(f"ranker.json: doc_max_chars must be positive, got {cfg.doc_max_chars}")
        if "input_ids" not in cfg.inputs or "attention_mask" not in cfg.inputs or any(
            name not in _ALLOWED_INPUTS for name in cfg.inputs
        ):
            raise PackageError(
                f"ranker.json: inputs must include input_ids and attention_mask and may add "
                f"token_type_ids, got {list(cfg.inputs)}"
            )
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``ranker.json``."""
        return {
            "format_version": self.format_version,
            "max_length": self.max_length,
            "query_max_tokens": self.query_max_tokens,
            "doc_max_chars": self.doc_max_chars,
            "inputs": list(self.inputs),
            "title_separator": self.title_separator,
            "pad_token_id": self.pad_token_id,
            "score": {"kind": self.score.kind, "scale": self.score.scale, "bias": self.score.bias},
            "quantization": dict(self.quantization),
            "provenance": dict(self.provenance),
            "fidelity": dict(self.fidelity),
        }


@dataclass(frozen=True)
class LoadedPackage:
    """A verified package held in memory: its config and the verified bytes of its files."""

    source: str
    config: PackageConfig
    files: Mapping[str, bytes]


def _check_member_name(name: str, source: str) -> str:
    p = PurePosixPath(name)
    if not p.parts or p.is_absolute() or ".." in p.parts or "\\" in name:
        raise PackageError(f"{source}: refusing path {name!r} that escapes the package")
    return str(p)


def _read_directory(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                raise PackageError(f"{root}: refusing symlink {os.path.join(dirpath, d)!r} in the package")
        for fname in filenames:
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                raise PackageError(f"{root}: refusing {rel!r}: not a regular file (symlink or device)")
            total += st.st_size
            if total > MAX_PACKAGE_BYTES:
                raise PackageError(f"{root}: package is larger than {MAX_PACKAGE_BYTES} bytes")
            with open(full, "rb") as fh:
                files[_check_member_name(rel, str(root))] = fh.read()
    return files


def _read_tarball(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                if member.isdir():
                    continue
                name = _check_member_name(member.name, str(path))
                if not member.isreg():
                    raise PackageError(f"{path}: refusing {name!r}: not a regular file (link or device)")
                total += member.size
                if total > MAX_PACKAGE_BYTES:
                    raise PackageError(f"{path}: package is larger than {MAX_PACKAGE_BYTES} bytes")
                fh = tar.extractfile(member)
                if fh is None:
                    raise PackageError(f"{path}: cannot read {name!r} from the archive")
                files[name] = fh.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise PackageError(f"{path}: not a readable .tar.gz package ({exc}); re-create it") from exc
    # A tarball of the package directory has one top-level folder; strip it.
    tops = {name.split("/", 1)[0] for name in files}
    if MANIFEST not in files and len(tops) == 1 and all("/" in n for n in files):
        top = tops.pop()
        files = {name[len(top) + 1 :]: data for name, data in files.items()}
    return files


def _verify_manifest(files: dict[str, bytes], source: str) -> None:
    if MANIFEST not in files:
        raise PackageError(f"{source}: no {MANIFEST}; this is not a ranker package (or it is incomplete)")
    try:
        manifest = json.loads(files[MANIFEST])
        listed = manifest["files"]
        if manifest.get("format_version") != FORMAT_VERSION:
            raise PackageError(
                f"{source}: {MANIFEST} format_version {manifest.get('format_version')!r} is not "
                f"supported (this ranker-sdk reads {FORMAT_VERSION}); upgrade ranker-sdk"
            )
        if not isinstance(listed, dict):
            raise TypeError("'files' is not an object")
    except PackageError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"{source}: {MANIFEST} is malformed ({exc!r})") from exc
    for name in REQUIRED_FILES:
        if name not in listed:
            raise PackageError(f"{source}: {MANIFEST} does not list the required file {name}")
    for name, entry in listed.items():
        _check_member_name(name, source)
        if name not in files:
            raise PackageError(f"{source}: {name} is listed in {MANIFEST} but missing")
        data = files[name]
        try:
            size, digest = int(entry["size"]), str(entry["sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PackageError(f"{source}: {MANIFEST} entry for {name} is malformed ({exc!r})") from exc
        if len(data) != size:
            raise PackageError(
                f"{source}: {name} has {len(data)} bytes, the manifest says {size}: the file is "
                "truncated or replaced; re-create the package"
            )
        if sha256_hex(data) != digest:
            raise PackageError(
                f"{source}: {name} fails its sha256 check against {MANIFEST}: the file is corrupt "
                "or was modified; re-create the package"
            )
    extra = sorted(set(files) - set(listed) - {MANIFEST})
    if extra:
        raise PackageError(f"{source}: files not listed in {MANIFEST}: {extra}; refusing the package")


def read_package(path: str | os.PathLike[str]) -> LoadedPackage:
    """Read and verify the package at ``path`` (a directory or a ``.tar.gz``).

    Raises :class:`PackageError` naming the offending file if anything is missing, corrupt,
    unlisted, unsafe, or of an unknown format version.
    """
    p = Path(path)
    if p.is_symlink():
        raise PackageError(f"{p}: refusing a package path that is a symlink; pass the real path")
    if p.is_dir():
        files = _read_directory(p)
    elif p.is_file():
        files = _read_tarball(p)
    else:
        raise PackageError(f"{p}: no such package (expected a directory or a .tar.gz)")
    _verify_manifest(files, str(p))
    try:
        raw = json.loads(files[CONFIG])
    except ValueError as exc:
        raise PackageError(f"{p}: {CONFIG} is not valid JSON ({exc})") from exc
    return LoadedPackage(source=str(p), config=PackageConfig.from_dict(raw), files=files)
