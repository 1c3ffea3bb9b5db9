"""The model card of a package: data plus a template (``model_card.md.tmpl`` beside this module).

:func:`render_model_card` fills the template from what the build measured and recorded:

- ``train_config``: the student's distillation settings (``train_config.json`` of ``ranker train
  distill``: loss, alpha/beta, groups, steps, data sources);
- ``package``: the package's ``ranker.json`` (quantization, fidelity report, fusion rule, lengths);
- ``teacher``: the teacher report beside the teacher scores (``scores.json`` of ``ranker train
  label``; also in ``ranker_student.json`` under ``teacher``);
- ``figures``: the dev headlines, ``{"int8": .., "fp32": .., "fused": .., "first_stage": ..}``,
  each ``{"data measure": value}`` from ``ranker eval --json``;
- ``speed``: a benchmark's figures (``docs_per_s``, ``peak_rss_mib`` or ``peak_rss_mb``) and the ``command`` that
  measured them;
- ``notes``: the prose that belongs to one model and its data rather than to the template
  (``family``, ``start``, ``audience``, ``uncovered``, ``data``, ``licence``, ``limits``).

Nothing in the card is typed by hand at build time: a figure in it is a figure of its inputs.

Example:
    >>> from ranker_quantize.card import CardData, render_model_card
    >>> text = render_model_card(CardData(train_config=cfg, layers=6, package=ranker_json, teacher=report,
    ...                                   figures=figures, speed=speed, notes=notes, how="...",
    ...                                   results_table="| ... |"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePath
from string import Template
from typing import Any

__all__ = ["CardData", "render_model_card", "card_template", "NOTE_KEYS"]

# The prose a card takes from its caller, not from measurements.
NOTE_KEYS = ("family", "start", "audience", "uncovered", "data", "licence", "limits")

_NAN = float("nan")


def card_template() -> Template:
    """The model card template shipped with ranker_quantize (``$name`` fields, :class:`string.Template`)."""
    text = resources.files("ranker_quantize").joinpath("model_card.md.tmpl").read_text(encoding="utf-8")
    return Template(text)


def _describe(train_config: Mapping[str, Any], layers: int, notes: Mapping[str, str]) -> str:
    """What the student is, in words, from its distillation settings and its layer count."""
    what = f"A {layers}-layer {notes['family']} {{}} ({notes['start']} start)"
    if train_config.get("architecture") == "segmented":
        return (
            what.format("bi-encoder") + " packed as a cross-encoder: the query and the passage are encoded apart\n"
            "inside one graph (ranker_models.segmented) and scored by their cosine, scaled; INT8. It scores a"
            " (query, passage) pair for"
        )
    return what.format("cross-encoder") + ", INT8, that scores a (query, passage) pair for"


def _loss_terms(cfg: Mapping[str, Any]) -> str:
    terms = f"alpha={cfg['alpha']}, beta={cfg['beta']}"
    if cfg.get("label_weight"):
        terms += f", plus {cfg['label_weight']} x the labels' pairwise RankNet term"
    return terms


def _merge(merge: Mapping[str, Any] | None) -> str:
    if not merge:
        return ""
    return (
        f"\n   Then WiSE-FT (`ranker train merge`): {merge['alpha']} x those weights +"
        f" {1 - merge['alpha']:.1f} x the start ({merge['base']}) as it ships; the score head stays the tuned one's."
    )


def _limits(figures: Mapping[str, Mapping[str, float]], notes: Mapping[str, str]) -> str:
    """One line per dev headline (INT8 against fp32, fused and the first stage), then the notes."""
    lines = []
    for key, v in figures["int8"].items():
        lines.append(
            f"- {key}: INT8 {v:.3f} (fp32 student {figures['fp32'].get(key, _NAN):.3f}; fused with the first stage"
            f" {figures['fused'].get(key, _NAN):.3f}; first-stage order {figures['first_stage'].get(key, _NAN):.3f})."
        )
    return "\n".join([*lines, notes["limits"]])


def _speed(speed: Mapping[str, Any]) -> str:
    # a benchmark reports its peak RSS in the unit it measured: MiB (2**20 bytes) or MB
    unit, rss = ("MiB", speed["peak_rss_mib"]) if speed.get("peak_rss_mib") else ("MB", speed.get("peak_rss_mb"))
    return f"Speed ({speed['command']}): {speed['docs_per_s']:.1f} docs/s" + (
        f", peak RSS {rss:.0f} {unit}." if rss else "."
    )


@dataclass(frozen=True)
class CardData:
    """Everything a model card is filled from (see the module docstring for each source).

    Attributes:
        train_config: the student's ``train_config.json``.
        layers: the student's transformer layer count.
        package: the package's ``ranker.json``.
        teacher: the teacher report (``scores.json``).
        figures: the dev headlines ``{"int8": .., "fp32": .., "fused": .., "first_stage": ..}``.
        speed: ``docs_per_s``, ``peak_rss_mib`` or ``peak_rss_mb`` (optional) and the ``command`` that measured them.
        notes: the prose fields of :data:`NOTE_KEYS`.
        how: Markdown: how the run was made.
        results_table: the Markdown table of dev results.
        merge: the WiSE-FT record (``alpha``, ``base``) of a merged student; None: not merged.
        title: the card's first heading.

    Raises:
        KeyError: ``notes`` lacks a field of :data:`NOTE_KEYS`; the message names it.
    """

    train_config: Mapping[str, Any]
    layers: int
    package: Mapping[str, Any]
    teacher: Mapping[str, Any]
    figures: Mapping[str, Mapping[str, float]]
    speed: Mapping[str, Any]
    notes: Mapping[str, str]
    how: str
    results_table: str
    merge: Mapping[str, Any] | None = None
    title: str = "ranker-sdk default model"

    def __post_init__(self) -> None:
        missing = [k for k in NOTE_KEYS if k not in self.notes]
        if missing:
            raise KeyError(f"notes lack {missing}; a card needs {list(NOTE_KEYS)}")


def render_model_card(data: CardData) -> str:
    """The Markdown model card of a package, from its recorded data (see the module docstring).

    Raises:
        KeyError: a required field is missing from ``train_config``, ``package`` or ``speed``; the
            message names it.
    """
    notes = data.notes
    fields = {
        "title": data.title,
        "description": _describe(data.train_config, data.layers, notes),
        "audience": notes["audience"],
        "how": data.how,
        "uncovered": notes["uncovered"],
        **_teacher_fields(data.teacher),
        **_training_fields(data.train_config, data.merge),
        **_package_fields(data.package),
        "data_notes": notes["data"],
        "licence": notes["licence"],
        "results_table": data.results_table,
        "speed": _speed(data.speed),
        "limits": _limits(data.figures, notes),
    }
    return card_template().substitute(fields)


def _combination(teacher: Mapping[str, Any]) -> str:
    """How the runs were combined: one weighting and fit for all, or weights fitted per source."""
    runs = ", ".join(f"{k} x{v}" for k, v in teacher.get("runs", {}).items())
    fit = teacher.get("fit", {})
    fitted = teacher.get("fitted_weights") or {}
    if not fitted:
        return (
            f"averaged ({runs}), mapped onto the 0-3 grade scale by a least-squares fit on the judged pairs"
            f" (slope {fit.get('slope', _NAN):.3f})"
        )
    per_source = "; ".join(
        f"{src}: " + ", ".join(f"{k} {w:.2f}" for k, w in sorted(ws.items(), key=lambda kv: -kv[1]) if w > 0)
        for src, ws in fitted.items()
    )
    others = [src for src in fit if src not in fitted]
    slopes = ", ".join(f"{src} {f['slope']:.2f}" for src, f in fit.items() if isinstance(f, Mapping))
    return (
        f"weighted per source by a non-negative fit on its judged train pairs ({per_source}"
        + (f"; {', '.join(others)}: the configured weights of the runs it has, {runs}" if others else "")
        + f"), mapped linearly onto each source's grades (slope {slopes})"
    )


def _teacher_fields(teacher: Mapping[str, Any]) -> dict[str, Any]:
    """The teacher's combination of runs, label mix and coverage."""
    mix = teacher.get("label_mix", 0)
    return {
        "combination": _combination(teacher),
        "label_mix": f"{mix:.2f} : {1 - mix:.2f}",
        "pairs": teacher.get("pairs", "?"),
        "covered": teacher.get("queries_covered", "?"),
        "queries": teacher.get("queries", "?"),
    }


def _training_fields(train_config: Mapping[str, Any], merge: Mapping[str, Any] | None) -> dict[str, Any]:
    """The distillation settings: loss, groups, steps, lengths, data and any WiSE-FT merge."""
    tr = train_config["train"]
    return {
        "loss": train_config["loss"],
        "loss_terms": _loss_terms(train_config),
        "group_size": train_config["group"]["size"],
        "negatives": train_config["group"]["negatives"],
        "steps": tr["max_steps"],
        "batch_size": tr["batch_size"],
        "lr": tr["lr"],
        "max_length": train_config["max_length"],
        "title_augment": train_config.get("title_augment", 0),
        "merge": _merge(merge),
        "data": ", ".join(
            f"{PurePath(d['path']).name} {d['split']} (x{d.get('weight', 1.0)})" for d in train_config["data"]
        ),
    }


def _fusion_rule(fusion: Mapping[str, Any]) -> str:
    """What a max-min rule promises on the sets it was fitted on (a pooled rule promises nothing)."""
    if fusion.get("objective") != "maxmin":
        return ""
    if fusion.get("never_below_first_stage"):
        return "\n   Chosen max-min: the fused order is at or above the first-stage order on every one of those sets."
    return (
        "\n   Chosen max-min: no single weight keeps the fused order at or above the first stage on every one of"
        " those sets; this one loses least on the worst."
    )


def _package_fields(package: Mapping[str, Any]) -> dict[str, Any]:
    """What ``ranker.json`` records: quantization, fidelity, the fusion rule and the lengths."""
    quant = package.get("quantization", {})
    fid = package.get("fidelity", {})
    fus = package.get("fusion") or {}
    return {
        "method": quant.get("method", "INT8"),
        "quantization": ", ".join(
            f"{k}={v}" for k, v in quant.items() if k != "method" and not isinstance(v, (dict, list))
        ),
        "fidelity_queries": fid.get("queries"),
        "fidelity_data": str(fid.get("data", "")).replace("/", " "),
        "spearman": fid.get("spearman", {}).get("mean"),
        "overlap": fid.get("top10_overlap", {}).get("mean"),
        "fusion_weight": f"{fus['weight']:g}" if isinstance(fus.get("weight"), (int, float)) else fus.get("weight"),
        "fusion_fitted_on": ", ".join(fus.get("fitted_on") or ["-"]),
        "fusion_rule": _fusion_rule(fus),
        "query_max_tokens": package["query_max_tokens"],
        "package_max_length": package["max_length"],
    }
