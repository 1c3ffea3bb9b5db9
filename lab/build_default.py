"""Build the bundled default package from a finished recipe run (the last step of the main job).

    python -m lab.build_default --run runs/dl [--student auto] [--out sdk/ranker_sdk/default]

1. Picks the student (``auto``: of the hybrid-loss students evaluated in ``RUN/eval``, the best
   mean of the three dev headlines: trec-dl nDCG@10 (trec_eval), trec-rag24 nDCG@10, wikiqa MAP).
2. Packages it with ``ranker package``'s defaults (``RUN/package``): ONNX, graph optimization, INT8,
   verified against fp32 on the dev sets pooled; the first-stage fusion weight fitted max-min on
   trec-rag24 dev, trec-dl DL21 and wikiqa dev (fused at or above each set's first stage where one
   weight can do that; ``--fusion``), as ``python -m lab.default_fusion`` refits it.
3. Evaluates the package on every dev set, alone and fused with the first stage
   (``RUN/eval/shipped_int8*.json``), and does not ship a student whose INT8 package costs more
   than half a point on the mean of the dev headlines, or a point on any one, against its fp32
   figures (unless ``--force``): with
   ``--student auto`` the next-best student is packaged and gated instead; exit 1 when none passes.
4. Measures its speed (``lab/benchmarks/bench_rank.py``) and writes the model card from those
   measured figures, the package to ``--out`` (card listed in its manifest) and the results table
   and plot (:mod:`lab.report`) to ``--results``. Rows a run does not measure (``CARRIED``: the
   teacher's dev view, E5 as it ships, the previous default) are kept from the table being replaced.

Needs the ``train`` and ``quantize`` extras (``scripts/test.sh`` installs them into ``.venv``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from lab import report

ROOT = Path(__file__).resolve().parents[1]
NOTES = Path(__file__).resolve().parent / "default_card.json"
DATA = ROOT.parent / "shared" / "data"
DEFAULT = ROOT / "sdk" / "ranker_sdk" / "default"
# what the bundled default's card is rendered from again (lab.default_fusion)
RECORD = ROOT / "lab" / "default_record.json"
# Static INT8 is calibrated on the verification queries: these, 512 pairs (lab.benchmarks.int8_fidelity too).
CALIBRATION = {"calibration": str(DATA / "trec-rag24"), "split": "dev", "max_queries": 45}
# What INT8 may cost against the fp32 student: on the mean of the dev headlines, and on any one.
# The dev sets the bundled fusion rule is fitted on (max-min): squad is left out, since a fit scores
# every candidate of every query and squad dev's thousands of questions would cost the CPU an hour.
FUSION_DATA = ((str(DATA / "trec-rag24"), "dev"), (str(DATA / "trec-dl"), "train:dl21-"), (str(DATA / "wikiqa"), "dev"))
INT8_MAX_MEAN_LOSS = 0.005
INT8_MAX_SET_LOSS = 0.01
ORDER = (
    "random",
    "bm25",
    "first-stage",
    "teacher",
    "labels_only",
    "pointwise_only",
    "margin_only",
    "hybrid",
    "hybrid_labels",
    "hybrid_labels_wise07",
    "cross_hybrid",
    "seg_zero",
    "seg_labels_only",
    "seg_pointwise_only",
    "seg_margin_only",
    "seg_hybrid",
    "seg_hybrid_lw2",
    "seg_hybrid_lw2_wise07",
    "e5_zero",
    "e5_dist",
    "e5_wise",
    "previous_default",
)
LABELS = {
    "random": "random order",
    "bm25": "BM25 over the candidates (rank_bm25)",
    "first-stage": "first-stage order (candidates.run; trec-dl: BM25's run)",
    "teacher": "teacher target (the runs, E5 and the bi-encoder, weights fitted per source on train labels; no labels)",
    "labels_only": "student, labels only (pairwise)",
    "pointwise_only": "student, point-wise MSE only",
    "margin_only": "student, margin-MSE only",
    "hybrid": "student, hybrid loss (fp32)",
    "hybrid_labels": "student, hybrid + labels (fp32)",
    "hybrid_labels_wise07": "that student, WiSE-FT 0.7 with the bi-encoder as it ships (fp32)",
    "cross_hybrid": "cross-encoder student, hybrid loss (the previous default, fp32)",
    "seg_zero": "all-MiniLM-L6-v2 bi-encoder as it ships (zero-shot)",
    "seg_labels_only": "segmented student, labels only (pairwise)",
    "seg_pointwise_only": "segmented student, point-wise MSE only",
    "seg_margin_only": "segmented student, margin-MSE only",
    "seg_hybrid": "segmented student, hybrid loss (fp32)",
    "seg_hybrid_lw2": "segmented student, hybrid + labels' pairwise term x2 (fp32)",
    "seg_hybrid_lw2_wise07": "that student, WiSE-FT: 0.7 x its weights + 0.3 x the bi-encoder as it ships (fp32)",
    "e5_zero": "multilingual-e5-small as it ships, segmented student (zero-shot, fp32)",
    "e5_dist": "E5-started student, hybrid + labels' pairwise term x2, 300 steps (fp32)",
    "e5_wise": "that student, WiSE-FT: 0.5 x its weights + 0.5 x E5 as it ships (fp32)",
    "previous_default": "the previous default (MiniLM student, INT8), measured again on these sets",
}


# Rows of the results table a rerun of the main job does not measure: the teacher's dev view needs
# every signal scored over the dev sets (half an hour more of E5), E5 as it ships (the start every
# student is compared with) is the same model in every run, and the previous default is no longer
# in the tree to measure again. A run that did measure one (RUN/eval/NAME.json) replaces it.
CARRIED = ("teacher", "e5_zero", "previous_default")


def carried_rows(results: Path, measured: set[str]) -> list[dict]:
    """The ``CARRIED`` rows of the results table ``results`` (a ``.json``) not in ``measured``."""
    if not results.is_file():
        return []
    rows = json.loads(results.read_text(encoding="utf-8"))
    return [r for r in rows if r.get("model") in CARRIED and r["model"] not in measured]


def in_order(table: list[dict]) -> list[dict]:
    """The rows by ``ORDER``, the shipped rows last, any other name after them as it came."""
    pos = {n: i for i, n in enumerate((*ORDER, "shipped_int8", "shipped_int8_fused"))}
    return sorted(table, key=lambda r: pos.get(r["model"], len(pos)))


def dev_sources():
    from ranker_training.config import DataSource

    return [
        DataSource(str(DATA / "trec-dl"), "train:dl21-"),
        DataSource(str(DATA / "trec-rag24"), "dev"),
        DataSource(str(DATA / "wikiqa"), "dev"),
        DataSource(str(DATA / "squad"), "dev", with_positive=True, max_queries=300),
    ]


def int8_losses(fp32: dict[str, float], int8: dict[str, float]) -> list[str]:
    """What the INT8 package misses of the gate: the mean of the dev headlines within
    :data:`INT8_MAX_MEAN_LOSS` of fp32 and each within :data:`INT8_MAX_SET_LOSS` (printed per set)."""
    over = []
    for key, a in fp32.items():
        b = int8[key]
        flag = "" if a - b <= INT8_MAX_SET_LOSS else "  OVER the one-point budget"
        over += [key] if flag else []
        print(f"INT8 vs fp32, {key}: {a:.4f} -> {b:.4f} ({100 * (b - a):+.2f} points){flag}", flush=True)
    mean_loss = sum(fp32[k] - int8[k] for k in fp32) / max(1, len(fp32))
    print(f"INT8 vs fp32, mean of {len(fp32)} headlines: {100 * -mean_loss:+.2f} points", flush=True)
    return over + (["the mean"] if mean_loss > INT8_MAX_MEAN_LOSS else [])


def headlines(result: dict) -> dict[str, float]:
    """:func:`lab.report.headlines` keyed ``"data measure"``, as printed and carded."""
    return {f"{data} {measure}": v for (data, measure), v in report.headlines(result).items()}


def _student_json(run: Path, name: str, file: str) -> dict:
    path = run / "students" / name / file
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def student_config(run: Path, name: str) -> dict:
    """The settings a student was distilled with (``train_config.json``, written by distillation)."""
    return _student_json(run, name, "train_config.json")


def merge_record(run: Path, name: str) -> dict:
    """How a student was interpolated with its start (``merge.json`` of ``ranker train merge``), or {}."""
    return _student_json(run, name, "merge.json")


def shippable(run: Path, name: str) -> bool:
    """The recipe's product: a student distilled with the whole hybrid loss (point-wise and margin terms)."""
    sc = student_config(run, name)
    return sc.get("loss") == "hybrid" and sc.get("alpha", 0) > 0 and sc.get("beta", 0) > 0


def ranked(evals: dict, wanted: str, run: Path) -> list[str]:
    """The students to try, best first: ``wanted`` alone, or (``auto``) every evaluated hybrid-loss
    student by the mean of the three dev headlines (the next is tried when one fails the INT8 gate)."""
    if wanted != "auto":
        if wanted not in evals:
            sys.exit(f"no evaluation of student {wanted!r} in the run (have {sorted(evals)})")
        return [wanted]
    have = [s for s in evals if shippable(run, s)]
    if not have:
        sys.exit(
            "the run has no evaluated hybrid-loss student; evaluate one first (ranker eval --json > RUN/eval/hybrid.json)"
        )
    return sorted(have, key=lambda s: -sum(headlines(evals[s]).values()) / len(report.HEADLINES))


def speed(pkg: Path, out: Path, repeats: int) -> dict:
    """docs/s and peak RSS of the package through the SDK, as ``lab.benchmarks.bench_rank`` measures
    them (1 thread, the default path) in a process of its own, so this script's torch does not
    count; the command writes its JSON to ``out``, and the card reads its figures from there."""
    command = [sys.executable, "-m", "lab.benchmarks.bench_rank", "--package", str(pkg), "--threads", "1"]
    command += ["--repeats", str(repeats), "--paths", "sorted", "--json", str(out)]
    subprocess.run(command, cwd=ROOT, check=True)
    row = json.loads(out.read_text(encoding="utf-8"))["rows"][0]
    return {
        "docs_per_s": row["docs_per_s"],
        "peak_rss_mb": row["peak_rss_mib"],
        "command": "`python -m lab.benchmarks.bench_rank`, 100 trec-rag24 passages, 1 thread",
    }


def training_data(run: Path, name: str) -> str:
    """The sources and teacher a student was distilled on, from its ``ranker_student.json``, for
    the package's provenance: ``trec-dl train:!dl21- (weight 5.0) + ...; teacher: FILE``."""
    meta = _student_json(run, name, "ranker_student.json")
    sources = " + ".join(
        f"{Path(d['path']).name} {d['split']}" + (f" (weight {d['weight']:g})" if "weight" in d else "")
        for d in meta.get("data", ())
    )
    teacher = meta.get("teacher_scores")
    return (sources or "unrecorded") + (f"; teacher: {teacher}" if teacher else "")


def layer_count(ckpt: Path) -> int:
    """Transformer layers of the checkpoint as saved (after any layer dropping), from its config.json."""
    return int(json.loads((ckpt / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"])


def card_notes(path: Path = NOTES) -> dict:
    """The default model's prose that is not measured (data, licence, limits): ``lab/default_card.json``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def smooth_alpha(text: str) -> float | None:
    """``--smooth``: a number, or none (off)."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an alpha between 0 and 1 or none, got {text!r}") from None


def main() -> None:
    from ranker_quantize.quantize import EMBEDDINGS, FFN_OUTPUTS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=str(ROOT / "runs" / "dl"), help="a finished `ranker train recipe` output")
    ap.add_argument("--student", default="auto", help="student name, or auto (chosen on dev)")
    ap.add_argument(
        "--how",
        default="`ranker train recipe --config configs/recipe-cpu-e5.yaml --out runs/cpu-e5`, then "
        "`python -m lab.build_default --student e5_wise --ffn-output fp32` (a 2-core CPU, no GPU).",
        help="how the run was made, for the model card (markdown)",
    )
    ap.add_argument("--out", default=str(DEFAULT))
    ap.add_argument("--repeats", type=int, default=5, help="bench_rank.py repeats")
    ap.add_argument("--force", action="store_true", help="ship even if INT8 costs more than half a point somewhere")
    ap.add_argument(
        "--precision",
        default="int8",
        choices=("int8", "dynamic", "fp32"),
        help="package precision (ranker package --precision, dynamic: --set activations=dynamic; default: static int8)",
    )
    ap.add_argument(
        "--embeddings",
        default="rows",
        choices=EMBEDDINGS,
        help="word table of an INT8 package (ranker package --set embeddings=...; default: rows)",
    )
    ap.add_argument(
        "--smooth",
        type=smooth_alpha,
        default=0.8,
        help="SmoothQuant alpha of a static INT8 package, or none (ranker package --set smooth=...; default 0.8)",
    )
    ap.add_argument(
        "--ffn-output",
        default="int8",
        choices=FFN_OUTPUTS,
        help="the FFN output MatMuls of an INT8 package (ranker package --set ffn_output=...; default int8)",
    )
    ap.add_argument(
        "--calibration-pairs",
        type=int,
        default=512,
        help="pairs that calibrate static INT8 (ranker package --set calibration_pairs=N; default 512)",
    )
    ap.add_argument(
        "--fusion",
        action="append",
        default=None,
        metavar="DIR=SPLIT",
        help="fit the fusion rule on these dev sets (default: trec-rag24=dev, trec-dl=train:dl21-, wikiqa=dev)",
    )
    ap.add_argument(
        "--base-model",
        default=None,
        help="the model the student started from, as the package's provenance records it "
        "(default: the student's own record, ranker_student.json's base_model)",
    )
    ap.add_argument(
        "--training-data",
        default=None,
        help="what the student was trained on, as the package's provenance records it "
        "(default: the sources and teacher of the student's ranker_student.json)",
    )
    ap.add_argument("--card-notes", default=str(NOTES), help="the model card's unmeasured prose (JSON)")
    ap.add_argument(
        "--results",
        default=str(ROOT / "lab" / "results" / "default"),
        help="results table prefix (.json, .png)",
    )
    args = ap.parse_args()

    from ranker_eval.beir import parse_source
    from ranker_quantize import PackageOptions, QuantizeOptions, VerifyOptions, build_package
    from ranker_quantize.card import CardData, render_model_card
    from ranker_quantize.cli import StageBars
    from ranker_quantize.package import write_package
    from ranker_quantize.pipeline import QUANTIZATION_SETTINGS, quantization_settings
    from ranker_quantize.provenance import checkpoint_sha256
    from ranker_sdk.package import read_package
    from ranker_training.evaluate import evaluate_package
    from tqdm.auto import tqdm

    fusion = [parse_source(f, "dev") for f in args.fusion] if args.fusion else list(FUSION_DATA)
    if None in fusion:
        ap.error(f"--fusion {args.fusion[fusion.index(None)]!r}: expected DIR or DIR=SPLIT")
    run = Path(args.run)
    evals = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((run / "eval").glob("*.json"))
        if not p.stem.startswith("shipped")
    }
    candidates = ranked(evals, args.student, run)
    quant = QuantizeOptions(
        activations="dynamic" if args.precision == "dynamic" else "static",
        embeddings=args.embeddings,
        calibration_pairs=args.calibration_pairs,
        smooth=args.smooth,
        ffn_output=args.ffn_output,
    )
    precision = "fp32" if args.precision == "fp32" else "int8"
    wanted = quantization_settings(PackageOptions(precision=precision, quantize=quant))
    dev = dev_sources()
    pkg = run / "package"
    for student in candidates:
        print(f"student: {student}", flush=True)
        ckpt = run / "students" / student
        built = read_package(pkg).config if pkg.exists() else None
        if (
            built is not None
            and built.provenance.get("checkpoint_sha256") == checkpoint_sha256(ckpt)
            and {k: v for k, v in built.quantization.items() if k in QUANTIZATION_SETTINGS} == wanted
            # (a package calibrated on fewer pairs than asked, all there were, is rebuilt: safe, slower)
            and (built.quantization.get("calibration") or {}).get("pairs")
            == (quant.calibration_pairs if precision == "int8" and quant.static else None)
            and [f"{Path(d).name}/{sp}" for d, sp in fusion] == (built.to_dict().get("fusion") or {}).get("fitted_on")
        ):
            print(f"packaged: {pkg} (already built from this checkpoint)", flush=True)
        else:
            if pkg.exists():
                shutil.rmtree(pkg)
            bars = StageBars()  # the main job's log shows each stage's progress
            result = build_package(
                ckpt,
                pkg,
                PackageOptions(
                    precision=precision,
                    quantize=quant,
                    verify=VerifyOptions(
                        **CALIBRATION,
                        min_top10_overlap=0.85,
                        gate_data=((str(DATA / "trec-dl"), "train:dl21-"), (str(DATA / "wikiqa"), "dev")),
                    ),
                    fusion_objective="maxmin",
                    fusion_unjudged="irrelevant",
                    fusion_data=tuple(fusion),
                    base_model=args.base_model,
                    training_data=args.training_data or training_data(run, student),
                ),
                progress=bars,
            )
            bars.close()
            print(f"packaged: {result.path}", flush=True)

        shipped_res, fused_res = evaluate_package(
            str(pkg), dev, k=10, progress=lambda **kw: tqdm(dynamic_ncols=True, file=sys.stderr, **kw)
        )
        for name, res in (("shipped_int8", shipped_res), ("shipped_int8_fused", fused_res)):
            (run / "eval" / f"{name}.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        fp32, shipped, fused = headlines(evals[student]), headlines(shipped_res), headlines(fused_res)
        over = int8_losses(fp32, shipped)
        if not over or args.force:
            break
        print(f"INT8 misses the gate ({', '.join(over)}): {student} is not shipped", flush=True)
    else:
        sys.exit(f"no student passed the INT8 gate (tried {candidates}); not shipping (--force to override)")

    bench = speed(pkg, run / "bench_rank_shipped.json", args.repeats)
    order = [n for n in ORDER if n in evals] + ["shipped_int8", "shipped_int8_fused"]
    results = {n: evals[n] for n in order if n in evals} | {
        "shipped_int8": shipped_res,
        "shipped_int8_fused": fused_res,
    }
    labels = LABELS | {
        "shipped_int8": f"**shipped: {student} student, INT8**",
        "shipped_int8_fused": "**shipped, fused with the first stage**",
    }
    kept = carried_rows(Path(f"{args.results}.json"), set(results))
    if kept:
        print(f"kept from {args.results}.json (not measured by this run): {[r['model'] for r in kept]}", flush=True)
    table = in_order(report.rows(results, {"shipped_int8": bench["docs_per_s"]}, labels) + kept)
    table_md = report.write(table, args.results)
    print(table_md, flush=True)

    loaded = read_package(pkg)
    teacher_report = (
        json.loads((run / "scores.json").read_text(encoding="utf-8")) if (run / "scores.json").is_file() else {}
    )
    record = {
        "layers": layer_count(ckpt),
        "train_config": student_config(run, student),
        "teacher": teacher_report,
        "figures": {"int8": shipped, "fp32": fp32, "fused": fused, "first_stage": headlines(evals["first-stage"])},
        "speed": bench,
        "how": args.how,
        "merge": merge_record(run, student) or None,
    }
    text = render_model_card(
        CardData(
            package=loaded.config.to_dict(),
            notes=card_notes(args.card_notes),
            results_table=table_md,
            **record,
        )
    )
    (run / "MODEL_CARD.md").write_text(text, encoding="utf-8")
    out = Path(args.out)
    record_path = RECORD if out.resolve() == DEFAULT.resolve() else run / RECORD.name
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if out.exists():
        if any(out.iterdir()) and not (out / "manifest.json").is_file():
            sys.exit(f"{out} exists and is not a package; refusing to replace it")
        shutil.rmtree(out)
    files = {k: v for k, v in loaded.files.items() if k in ("model.onnx", "tokenizer.json")}
    files["MODEL_CARD.md"] = text.encode("utf-8")
    write_package(out, files, loaded.config)
    print(
        f"wrote {out}: " + ", ".join(f"{k} {v:.4f}" for k, v in shipped.items()) + f", {bench['docs_per_s']:.1f} docs/s"
    )


if __name__ == "__main__":
    main()
