"""Teacher labelling: score every candidate of every query into a scores file.

Every candidate of every group is scored, labelled or not: the student learns from the
teacher's view of the whole candidate list, not only of the judged pairs.

Scores files (one row per (qid, docid)):

- ``.jsonl``: ``{"qid": "Q1", "docid": "D1-0", "score": 1.234}``
- ``.tsv``: ``Q1<TAB>D1-0<TAB>1.234`` (no header)

The labeller is

- *batched*: pairs are sorted by length and padded per batch;
- *resumable*: rows already in the output are skipped; a torn last line (a crash mid-write) is
  cut off before appending, and the file is flushed after every batch;
- *shardable*: ``shard=i, num_shards=n`` scores the queries whose position ``% n == i`` into
  ``<stem>.shard<i>of<n><suffix>``; :func:`read_scores` merges the shards. Under ``accelerate
  launch`` / ``torchrun`` with ``num_shards=1`` each process takes its rank as its shard.

Example:
    >>> label(LabelConfig(teacher="runs/teacher", data=(DataSource("../shared/data/wikiqa", "train"),),
    ...                   out="runs/scores.jsonl"))                                       # doctest: +SKIP
    >>> read_scores("runs/scores.jsonl")[("TQ1", "TQ1-0")]                                 # doctest: +SKIP
    -0.53
"""

from __future__ import annotations

import glob
import json
import logging
import os
from pathlib import Path

from ranker_sdk.jsonl import decode_line, finite_float, parse_line

from .config import ConfigError, LabelConfig, resolve_path
from .errors import DataError

__all__ = ["label", "read_scores", "shard_path"]

log = logging.getLogger(__name__)


def shard_path(out: str | Path, shard: int, num_shards: int) -> Path:
    """The file shard ``shard`` of ``num_shards`` writes (``out`` itself when unsharded)."""
    out = Path(out)
    if num_shards <= 1:
        return out
    return out.with_name(f"{out.stem}.shard{shard}of{num_shards}{out.suffix}")


_WANT = {".tsv": "qid<TAB>docid<TAB>score", ".jsonl": '{"qid": ..., "docid": ..., "score": ...}'}


def _parse(line: str, fmt: str, where: str) -> tuple[str, str, float]:
    """One line of a scores file; :class:`DataError` naming ``where`` (``FILE:LINE``) for anything else."""
    want = f"expected {_WANT[fmt]} (a scores file from `ranker train label`)"
    if fmt == ".tsv":
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) != 3:
            raise DataError(f"{where}: {want}")
        q, d, s = parts
    else:
        r = parse_line(line, where, error=DataError, expect=_WANT[fmt])
        if not all(k in r for k in ("qid", "docid", "score")):
            raise DataError(f"{where}: {want}")
        q, d, s = str(r["qid"]), str(r["docid"]), r["score"]
    try:
        return q, d, finite_float(s, where, "score", DataError)
    except DataError as exc:
        raise DataError(f"{where}: {want}; {str(exc).removeprefix(where + ': ')}") from None


def _row(qid: str, docid: str, score: float, fmt: str) -> str:
    """One line of a scores file (the inverse of :func:`_parse`)."""
    if fmt == ".tsv":
        return f"{qid}\t{docid}\t{float(score):.6g}\n"
    return json.dumps({"qid": qid, "docid": docid, "score": round(float(score), 6)}) + "\n"


def _read_one(path: Path) -> dict[tuple[str, str], float]:
    fmt = ".tsv" if path.suffix == ".tsv" else ".jsonl"
    out: dict[tuple[str, str], float] = {}
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n") or not raw.strip():  # a line without its newline was torn by a crash
                continue
            row = _parse(decode_line(raw, f"{path}:{n}", DataError), fmt, f"{path}:{n}")
            out[(row[0], row[1])] = row[2]
    return out


def read_scores(path: str | Path) -> dict[tuple[str, str], float]:
    """``(qid, docid) -> score`` of a scores file, or of all its shards when the file itself is absent.

    A last line without its newline (a write torn by a crash) is left out; any other line that
    does not parse, or no file at all, is a :class:`~ranker_training.errors.DataError`.
    """
    path = Path(path)
    files = (
        [path]
        if path.is_file()
        else sorted(Path(p) for p in glob.glob(str(path.with_name(f"{path.stem}.shard*of*{path.suffix}"))))
    )
    if not files:
        raise DataError(
            f"no scores at {path} (nor shards {path.stem}.shard<i>of<n>{path.suffix}); run `ranker train label`"
        )
    out: dict[tuple[str, str], float] = {}
    for f in files:
        out.update(_read_one(f))
    return out


def _cut_torn_tail(path: Path) -> None:
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def label(cfg: LabelConfig, *, progress=None, device: str | None = None) -> Path:
    """Score the candidates of ``cfg.data``; returns the file written.

    With only ``cfg.teacher`` set, the file holds the LLM teacher's scores. With ``cfg.runs`` or
    ``cfg.label_mix`` too, the LLM's scores go to ``<stem>.llm<suffix>`` and the file holds the
    combined target of :mod:`ranker_training.external` (a report beside it, ``<stem>.json``).
    """
    combine = bool(cfg.runs) or cfg.label_mix > 0
    if not cfg.teacher and not combine:
        raise ConfigError("label: set teacher (an LLM teacher folder) or runs (external rankers to combine)")
    out = Path(cfg.out)
    llm_out = out.with_name(f"{out.stem}.llm{out.suffix}") if combine else out
    llm_path = _label_llm(cfg, llm_out, progress=progress, device=device) if cfg.teacher else None
    if not combine:
        return llm_path
    from .data import load_sourced
    from .external import combine_targets

    if cfg.num_shards > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "label: combining runs needs every shard's LLM scores; label the shards, then run "
            "again with num_shards 1 in one process to combine"
        )
    run_dirs = [Path(cfg.signal_dir or out.parent / "runs")]
    if cfg.bi_encoder:
        from .biencoder import write_runs

        write_runs(cfg.bi_encoder, cfg.data, run_dirs[0], max_queries=cfg.max_queries)
    if cfg.signals:
        from ranker_sdk.ranker import available_cores

        from .signals import write_signal_runs

        folders = {Path(s.path).name for s in cfg.data}
        for name in cfg.signals:
            wanted = cfg.signal_sources.get(name)
            if wanted is not None and not set(wanted) <= folders:
                # a misspelt folder would silently leave its source without the signal
                log.warning(
                    "label.signal_sources[%s]: %s not among this run's sources %s",
                    name,
                    sorted(set(wanted) - folders),
                    sorted(folders),
                )
            sources = [s for s in cfg.data if wanted is None or Path(s.path).name in wanted]
            write_signal_runs(
                name, sources, run_dirs[0], threads=available_cores(), max_queries=cfg.max_queries, progress=progress
            )
    sourced = load_sourced(cfg.data, max_queries=cfg.max_queries)
    llm = read_scores(llm_path) if llm_path is not None else None
    targets, report = combine_targets(sourced, cfg, llm=llm, run_dirs=run_dirs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fmt = ".tsv" if out.suffix == ".tsv" else ".jsonl"
        fh.writelines(_row(qid, did, t, fmt) for (qid, did), t in targets.items())
    os.replace(tmp, out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return out


def _label_llm(cfg: LabelConfig, out: Path, *, progress=None, device: str | None = None) -> Path:
    """The LLM teacher's score of every candidate into ``out`` (batched, resumable, shardable)."""
    import torch

    from .data import load_sources
    from .teacher import Teacher

    shard, num = cfg.shard, cfg.num_shards
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if num == 1 and world > 1:  # launched as several processes: one shard each
        shard, num = int(os.environ.get("RANK", "0")), world
    if not 0 <= shard < num:
        raise ConfigError(f"shard must be in [0, num_shards), got shard={shard} num_shards={num}")
    path = shard_path(out, shard, num)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = ".tsv" if path.suffix == ".tsv" else ".jsonl"
    groups = [g for i, g in enumerate(load_sources(cfg.data, max_queries=cfg.max_queries)) if i % num == shard]
    _cut_torn_tail(path)
    done = _read_one(path) if path.is_file() else {}
    todo = [
        (g.qid, g.doc_ids[c], g.query, g.docs[c])
        for g in groups
        for c in range(len(g.doc_ids))
        if (g.qid, g.doc_ids[c]) not in done
    ]
    log.info("label: shard %d/%d, %d pairs done, %d to score -> %s", shard, num, len(done), len(todo), path)
    if not todo:
        return path
    teacher = Teacher.load(resolve_path(cfg.teacher))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    teacher.to(device)
    bar = progress(total=len(todo) + len(done), initial=len(done), desc="label") if progress else None
    chunk = cfg.batch_size * 8  # sort by length within chunks, write after each
    with open(path, "a", encoding="utf-8") as fh:
        for s in range(0, len(todo), chunk):
            part = todo[s : s + chunk]
            scores = teacher.score_pairs(
                [(q, d) for _, _, q, d in part], batch_size=cfg.batch_size, bf16=cfg.bf16, device=device
            )
            fh.writelines(_row(qid, did, sc, fmt) for (qid, did, _, _), sc in zip(part, scores))
            fh.flush()
            if bar is not None:
                bar.update(len(part))
    if bar is not None:
        bar.close()
    return path
