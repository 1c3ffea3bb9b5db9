"""Reading and verifying a model package (the contract between ``quantize`` and ``sdk``).

A package is a directory, or a ``.tar.gz`` of one, holding:

- ``model.onnx``: int64 inputs ``[batch, seq]`` named in ``ranker.json``, one float score per row;
- ``tokenizer.json``: a ``tokenizers`` file;
- ``ranker.json``: the :class:`PackageConfig` (format version, lengths, input names, score kind,
  quantization, provenance, fidelity report);
- ``manifest.json``: ``{"format_version": 1, "files": {name: {"sha256": hex, "size": n}}}`` for
  every other file.

Safety comes from the order of operations, and memory stays bounded by what the manifest declares:

1. List the files (``lstat`` of a directory, the headers of a ``.tar.gz``) without reading them:
   paths that could escape the package (absolute, ``..``, symlinks, devices), duplicates and
   more than :data:`MAX_FILES` files are refused here.
2. Read ``manifest.json`` (at most :data:`MAX_MANIFEST_BYTES`) and parse it; a malformed entry
   (a size that is not a non-negative JSON integer, such as ``1e400``; a hash that is not 64 hex
   digits; nesting deep enough to exhaust the parser) is a :class:`PackageError`.
3. Compare the listing with the manifest by name and size: a missing, unlisted or resized file,
   or a declared total above :data:`MAX_PACKAGE_BYTES`, is refused before any of them is read.
   A 1.5 GB stray file in the folder, or a tar member whose header claims gigabytes, never
   reaches memory.
4. Read each listed file exactly once, exactly its declared size, and check its sha256. Only then
   is any byte handed to a parser (JSON, tokenizers, onnxruntime). Parsers get the verified
   bytes, never the path, so a file swapped on disk after the check is never read.

One exception, for memory: ``read_package(path, keep_model=False)`` on a *directory* hashes
``model.onnx`` in chunks without keeping it (:attr:`LoadedPackage.model_path` is set instead of
``files["model.onnx"]``), and the caller hands onnxruntime the path. Holding the verified bytes
while onnxruntime builds its own copy would cost the model's size again at load (23 MB of the
default's peak). The check still runs before the parser; :func:`recheck_file` after the load
refuses a file that changed in between (a deployment rewriting the package while a service
starts). The manifest's hashes detect corruption, not an attacker: whoever can write the file
can write the manifest too.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .dataclass_io import from_dict, to_dict
from .encoding import FORMAT_VERSION, TITLE_SEPARATOR
from .errors import PackageError
from .fusion import Fusion

__all__ = [
    "FORMAT_VERSION",
    "REQUIRED_FILES",
    "PackageConfig",
    "ScoreConfig",
    "LoadedPackage",
    "read_package",
    "recheck_file",
    "sha256_hex",
]

MANIFEST = "manifest.json"
CONFIG = "ranker.json"
MODEL = "model.onnx"
REQUIRED_FILES = (MODEL, "tokenizer.json", CONFIG)
_CHUNK = 1 << 20  # bytes per read when a file is hashed without being kept
# A package larger than this (its listed files together, or one tar member) is refused before a
# byte of it is read: a cross-encoder for CPU ranking is tens of MB, a large one a few hundred,
# and hashing a runaway file costs seconds per GB even when it is not kept.
MAX_PACKAGE_BYTES = 1024**3
# The files the runtime reads; any other listed file is hashed in chunks at load and not kept.
RUNTIME_FILES = (MANIFEST, CONFIG, "tokenizer.json", "MODEL_CARD.md")
MAX_CARD_BYTES = 1024**2
# A package has a handful of files and a manifest of a few hundred bytes; more means it is not one.
MAX_FILES = 64
# Tokens per pair: BERT-family cross-encoders stop at 512, long-context ones at a few thousand.
# The bound keeps a corrupt ranker.json from asking the load-time probe for gigabytes.
MAX_LENGTH = 8192
MAX_MANIFEST_BYTES = 1024**2
# Bounds that keep the runtime's float32 maths finite and its inputs within int64: a calibration
# slope or offset is a few units; a doc is cut to at most this many characters before tokenizing.
MAX_SCORE_PARAM = 1e4
MAX_DOC_CHARS = 1_000_000
MAX_TOKEN_ID = 2**63 - 1
_ALLOWED_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data`` (the manifest's hash)."""
    return hashlib.sha256(data).hexdigest()


# How rows of different lengths meet in one model call (PackageConfig.batching).
BATCHING = ("padded", "exact")


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
    def from_dict(cls, d: object) -> "ScoreConfig":
        """Validate and build from the parsed ``score`` object; raises :class:`PackageError`."""
        cfg = from_dict(cls, d, where="ranker.json: score", error=PackageError)
        if cfg.kind not in ("raw", "sigmoid"):
            raise PackageError(
                f"ranker.json: score.kind must be 'raw' or 'sigmoid', got {cfg.kind!r}; "
                "the package was written by a newer or broken packager"
            )
        if not (abs(cfg.scale) <= MAX_SCORE_PARAM and abs(cfg.bias) <= MAX_SCORE_PARAM):
            raise PackageError(
                f"ranker.json: score.scale and score.bias must be within +-{MAX_SCORE_PARAM:g}, "
                f"got {cfg.scale}, {cfg.bias}"
            )
        return cfg


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
        fusion: how :meth:`Ranker.score` combines its scores with the caller's first-stage
            scores (:class:`ranker_sdk.fusion.Fusion`), or None when the package has no fitted
            rule: then ``first_stage`` is validated and the model's scores come back unchanged.
            Optional, so packages written before it existed load unchanged (format version 1).
        batching: ``"padded"`` (rows of different lengths share a model call, padded, and the
            graph masks the padding) or ``"exact"`` (the graph has no padding mask, which lets
            onnxruntime run its faster attention: the runtime puts only rows of one length in a
            call). Written only when ``"exact"``; a runtime that does not know the key refuses
            such a package rather than pad it.
    """

    format_version: int
    max_length: int
    query_max_tokens: int
    doc_max_chars: int
    inputs: tuple[str, ...]
    title_separator: str = TITLE_SEPARATOR
    pad_token_id: int = 0
    score: ScoreConfig = field(default_factory=ScoreConfig)
    quantization: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    fidelity: Mapping[str, Any] = field(default_factory=dict)
    fusion: Fusion | None = None
    batching: str = "padded"

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
        # A key this version does not know is refused, not skipped: the runtime never guesses
        # what a package says (a new setting comes with a new format version).
        cfg = from_dict(cls, d, where="ranker.json", error=PackageError, hooks=_READERS)
        if not 8 <= cfg.max_length <= MAX_LENGTH or not 1 <= cfg.query_max_tokens < cfg.max_length - 3:
            raise PackageError(
                f"ranker.json: need 8 <= max_length <= {MAX_LENGTH} and 1 <= query_max_tokens < max_length - 3, "
                f"got max_length={cfg.max_length}, query_max_tokens={cfg.query_max_tokens}"
            )
        if not 1 <= cfg.doc_max_chars <= MAX_DOC_CHARS:
            raise PackageError(f"ranker.json: need 1 <= doc_max_chars <= {MAX_DOC_CHARS}, got {cfg.doc_max_chars}")
        if not 0 <= cfg.pad_token_id <= MAX_TOKEN_ID:
            raise PackageError(f"ranker.json: pad_token_id must be in [0, 2**63 - 1], got {cfg.pad_token_id}")
        if cfg.batching not in BATCHING:
            raise PackageError(f"ranker.json: batching must be one of {list(BATCHING)}, got {cfg.batching!r}")
        if (
            "input_ids" not in cfg.inputs
            or "attention_mask" not in cfg.inputs
            or any(name not in _ALLOWED_INPUTS for name in cfg.inputs)
        ):
            raise PackageError(
                f"ranker.json: inputs must include input_ids and attention_mask and may add "
                f"token_type_ids, got {list(cfg.inputs)}"
            )
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``ranker.json``."""
        d = to_dict(self, hooks={Fusion: Fusion.to_dict})
        if d["fusion"] is None:
            del d["fusion"]  # written only when fitted, so a package without fusion is byte-identical to before
        if d["batching"] == "padded":
            del d["batching"]  # the same: packages that pad are byte-identical to before
        return d


# How ranker.json's objects with a shape or checks of their own are read (see ranker_sdk.dataclass_io).
_READERS = {ScoreConfig: ScoreConfig.from_dict, Fusion: Fusion.from_dict}


@dataclass(frozen=True)
class LoadedPackage:
    """A verified package held in memory: its config and the verified bytes of its files.

    ``model_path`` is set (and ``model.onnx`` absent from ``files``) only when the package was
    read with ``keep_model=False`` from a directory; ``manifest`` is ``name -> (size, sha256)``.
    """

    source: str
    config: PackageConfig
    files: Mapping[str, bytes]
    manifest: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    model_path: Path | None = None


def _check_member_name(name: str, source: str) -> str:
    p = PurePosixPath(name)
    if not p.parts or p.is_absolute() or ".." in p.parts or "\\" in name:
        raise PackageError(f"{source}: refusing path {name!r} that escapes the package")
    return str(p)


def _size_error(source: str, size: int) -> PackageError:
    return PackageError(
        f"{source}: package is {size} bytes, more than the {MAX_PACKAGE_BYTES} bytes a ranker package may hold; "
        "refusing it before reading"
    )


def _manifest_error(source: str, what: str) -> PackageError:
    return PackageError(f"{source}: {MANIFEST} {what}; re-create the package")


def _list_directory(root: Path) -> dict[str, int]:
    """``name -> size`` of every file under ``root``, from ``lstat`` alone (nothing is opened)."""
    sizes: dict[str, int] = {}
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
            sizes[_check_member_name(rel, str(root))] = st.st_size
            if len(sizes) > MAX_FILES:
                raise PackageError(f"{root}: more than {MAX_FILES} files; this is not a ranker package")
    return sizes


def _list_tarball(tar: tarfile.TarFile, source: str) -> dict[str, tarfile.TarInfo]:
    """``name -> member`` from the archive's headers (the members' bytes are skipped, not kept)."""
    members: dict[str, tarfile.TarInfo] = {}
    for member in tar:
        if member.isdir():
            continue
        name = _check_member_name(member.name, source)
        if not member.isreg():
            raise PackageError(f"{source}: refusing {name!r}: not a regular file (link or device)")
        if name in members:
            raise PackageError(f"{source}: {name!r} appears twice in the archive; refusing the package")
        members[name] = member
        # Checked on the header, before tarfile decompresses its way past the member's bytes.
        total = sum(m.size for m in members.values())
        if total > MAX_PACKAGE_BYTES + MAX_MANIFEST_BYTES:
            raise _size_error(source, total)
        if len(members) > MAX_FILES:
            raise PackageError(f"{source}: more than {MAX_FILES} files; this is not a ranker package")
    # A tarball of the package directory has one top-level folder; strip it.
    tops = {name.split("/", 1)[0] for name in members}
    if MANIFEST not in members and len(tops) == 1 and all("/" in n for n in members):
        top = tops.pop()
        members = {name[len(top) + 1 :]: m for name, m in members.items()}
    return members


def _parse_manifest(data: bytes, source: str) -> dict[str, tuple[int, str]]:
    """``name -> (size, sha256)`` of ``manifest.json``; every malformation is a :class:`PackageError`."""
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: pathologically nested JSON
        raise _manifest_error(source, f"is not valid JSON ({type(exc).__name__})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _manifest_error(source, 'must be an object with a "files" object')
    if manifest.get("format_version") != FORMAT_VERSION:
        raise PackageError(
            f"{source}: {MANIFEST} format_version {manifest.get('format_version')!r} is not "
            f"supported (this ranker-sdk reads {FORMAT_VERSION}); upgrade ranker-sdk"
        )
    listed: dict[str, tuple[int, str]] = {}
    for name, entry in manifest["files"].items():
        name = _check_member_name(name, source)
        size = entry.get("size") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        # Only a JSON integer is a size: 1e400 parses as float inf, and true is an int in Python.
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _manifest_error(source, f"entry for {name} needs a non-negative integer size, got {size!r}")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise _manifest_error(source, f"entry for {name} needs a 64-digit hex sha256")
        listed[name] = (size, digest)
    for name in REQUIRED_FILES:
        if name not in listed:
            raise PackageError(f"{source}: {MANIFEST} does not list the required file {name}")
    return listed


def _check_listing(listed: Mapping[str, tuple[int, str]], sizes: Mapping[str, int], source: str) -> None:
    """Compare what the manifest lists with what is there, by name and size, before reading."""
    for name, (size, _) in listed.items():
        if name not in sizes:
            raise PackageError(f"{source}: {name} is listed in {MANIFEST} but missing")
        if sizes[name] != size:
            raise PackageError(
                f"{source}: {name} has {sizes[name]} bytes, the manifest says {size}: the file is "
                "truncated or replaced; re-create the package"
            )
    extra = sorted(set(sizes) - set(listed) - {MANIFEST})
    if extra:
        raise PackageError(f"{source}: files not listed in {MANIFEST}: {extra}; refusing the package")
    total = sum(size for size, _ in listed.values())
    if total > MAX_PACKAGE_BYTES:
        raise _size_error(source, total)
    card = listed.get("MODEL_CARD.md")
    if card is not None and card[0] > MAX_CARD_BYTES:
        raise PackageError(f"{source}: MODEL_CARD.md is {card[0]} bytes; a model card is at most {MAX_CARD_BYTES}")


def _read_exactly(fh: IO[bytes], name: str, size: int, source: str) -> bytes:
    """Read ``size`` bytes of ``name`` and check that there are no more (the file did not grow)."""
    data = fh.read(size)
    if len(data) != size or fh.read(1):
        raise PackageError(
            f"{source}: {name} changed size while it was read (expected {size} bytes); re-create the package"
        )
    return data


def _hash_exactly(fh: IO[bytes], name: str, size: int, source: str) -> str:
    """sha256 of exactly ``size`` bytes of ``name``, read in chunks and not kept."""
    h, left = hashlib.sha256(), size
    while left:
        chunk = fh.read(min(left, _CHUNK))
        if not chunk:
            break
        h.update(chunk)
        left -= len(chunk)
    if left or fh.read(1):
        raise PackageError(
            f"{source}: {name} changed size while it was read (expected {size} bytes); re-create the package"
        )
    return h.hexdigest()


def _digest_error(source: str, name: str) -> PackageError:
    return PackageError(
        f"{source}: {name} fails its sha256 check against {MANIFEST}: the file is corrupt "
        "or was modified; re-create the package"
    )


def _read_verified(
    open_member: Callable[[str], IO[bytes]],
    sizes: Mapping[str, int],
    source: str,
    unkept: Callable[[str], bool] = lambda name: False,
) -> tuple[dict[str, bytes], dict[str, tuple[int, str]]]:
    """Read the manifest, check the listing, then read and hash each listed file once.

    Files for which ``unkept(name)`` is true are hashed in chunks and left out of the returned bytes.
    """
    if MANIFEST not in sizes:
        raise PackageError(f"{source}: no {MANIFEST}; this is not a ranker package (or it is incomplete)")
    if sizes[MANIFEST] > MAX_MANIFEST_BYTES:
        raise _manifest_error(source, f"is {sizes[MANIFEST]} bytes, more than a manifest can be ({MAX_MANIFEST_BYTES})")
    with open_member(MANIFEST) as fh:
        files = {MANIFEST: _read_exactly(fh, MANIFEST, sizes[MANIFEST], source)}
    listed = _parse_manifest(files[MANIFEST], source)
    _check_listing(listed, sizes, source)
    for name, (size, digest) in listed.items():
        with open_member(name) as fh:
            if unkept(name):
                if _hash_exactly(fh, name, size, source) != digest:
                    raise _digest_error(source, name)
                continue
            data = _read_exactly(fh, name, size, source)
        if sha256_hex(data) != digest:
            raise _digest_error(source, name)
        files[name] = data
    return files, listed


def recheck_file(pkg: LoadedPackage, name: str) -> None:
    """Hash ``name`` of a directory package again; :class:`PackageError` if it is not what was verified.

    For a file handed to a parser by path (``keep_model=False``): called after the parser is done,
    it refuses a file rewritten between the first check and the parse.
    """
    size, digest = pkg.manifest[name]
    try:
        with open(Path(pkg.source) / name, "rb") as fh:
            same = _hash_exactly(fh, name, size, pkg.source) == digest
    except OSError as exc:
        raise PackageError(f"{pkg.source}: {name} vanished while the package was loaded ({exc})") from exc
    if not same:
        raise PackageError(
            f"{pkg.source}: {name} changed on disk while the package was loaded; load it again once it is complete"
        )


def _read_files(p: Path, unkept: Callable[[str], bool]) -> tuple[dict[str, bytes], dict[str, tuple[int, str]]]:
    source = str(p)
    if p.is_dir():
        if not (p / MANIFEST).is_file():  # before the listing, whose refusals would name a symptom
            raise PackageError(f"{p}: not a package: no {MANIFEST} in this directory (expected a ranker package)")
        return _read_verified(lambda name: open(p / name, "rb"), _list_directory(p), source, unkept)
    with open(p, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            raise PackageError(f"{p}: not a package: expected a package directory or a .tar.gz of one")
    try:
        with tarfile.open(p, mode="r:gz") as tar:
            members = _list_tarball(tar, source)

            def open_member(name: str) -> IO[bytes]:
                fh = tar.extractfile(members[name])
                if fh is None:
                    raise PackageError(f"{source}: cannot read {name!r} from the archive")
                return fh

            return _read_verified(open_member, {n: m.size for n, m in members.items()}, source, unkept)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise PackageError(f"{p}: not a readable .tar.gz package ({exc}); re-create it") from exc


def read_package(path: str | os.PathLike[str], *, keep_model: bool = True, runtime_only: bool = False) -> LoadedPackage:
    """Read and verify the package at ``path`` (a directory or a ``.tar.gz``).

    ``keep_model=False``: for a directory, verify ``model.onnx`` without keeping its bytes and set
    :attr:`LoadedPackage.model_path` instead (see the module docstring); a ``.tar.gz`` keeps them.
    ``runtime_only=True``: listed files the runtime does not read (anything but
    :data:`RUNTIME_FILES` and ``model.onnx``) are hashed in chunks and left out of ``files``, so
    memory at load does not grow with them.

    Raises :class:`PackageError` naming the offending file if anything is missing, corrupt,
    unlisted, unsafe, oversized, malformed, or of an unknown format version.
    """
    if isinstance(path, str) and not path.strip():
        raise PackageError("the package path is empty; pass the package directory or .tar.gz")
    if not isinstance(path, (str, os.PathLike)):
        raise PackageError(
            f"a package path must be a str or os.PathLike, got {type(path).__name__}; pass the "
            "package directory or .tar.gz (or None for the bundled default)"
        )
    p = Path(path)
    if p.is_symlink():
        raise PackageError(f"{p}: refusing a package path that is a symlink; pass the real path")
    if not (p.is_dir() or p.is_file()):
        raise PackageError(f"{p}: no such package (expected a directory or a .tar.gz)")
    drop_model = not keep_model and p.is_dir()

    def unkept(name: str) -> bool:
        return (name == MODEL and drop_model) or (runtime_only and name != MODEL and name not in RUNTIME_FILES)

    files, listed = _read_files(p, unkept)
    try:
        raw = json.loads(files[CONFIG])
    except (ValueError, RecursionError) as exc:
        raise PackageError(f"{p}: {CONFIG} is not valid JSON ({type(exc).__name__}: {exc})") from exc
    try:
        config = PackageConfig.from_dict(raw)
    except PackageError as exc:
        raise PackageError(f"{p}: {exc}") from exc
    return LoadedPackage(
        source=str(p), config=config, files=files, manifest=listed, model_path=p / MODEL if drop_model else None
    )
