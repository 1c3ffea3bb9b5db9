"""cli.py: ``ranker package`` end to end on the tiny model, and ``ranker verify`` on its output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from ranker_sdk.cli import main

from ..cli_helpers import error_line, run_main, run_subprocess


def test_package_then_verify(tiny_bert_dir, data_dir, tmp_path, capsys):
    out = tmp_path / "pkg"
    card = tmp_path / "card.md"
    card.write_text("# Tiny ranker\n\nA test model: ranks nothing well.\n", encoding="utf-8")
    rc = main(
        [
            "package",
            "--model",
            str(tiny_bert_dir),
            "--out",
            str(out),
            "--calibration",
            str(data_dir / "trec-rag24"),
            "--split",
            "dev",
            "--set",
            "max_queries=3",
            "--set",
            "max_ndcg_drop=1",
            "--max-length",
            "96",
            "--training-data",
            "trec-rag24 train",
            "--tar",
            "--model-card",
            str(card),
        ]
    )
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert f"ok: wrote {out}" in cap.out and "fidelity vs fp32 on 3 queries of trec-rag24/dev" in cap.out
    for stage in ("export", "optimize", "quantize", "verify", "package"):
        assert stage in cap.err, f"no progress shown for {stage}"
    cfg = json.loads((out / "ranker.json").read_text())
    assert cfg["max_length"] == 96 and cfg["query_max_tokens"] == 24
    assert cfg["provenance"]["training_data"] == "trec-rag24 train"

    manifest = json.loads((out / "manifest.json").read_text())
    assert "MODEL_CARD.md" in json.dumps(manifest)
    assert (out / "MODEL_CARD.md").read_bytes() == card.read_bytes()

    assert main(["verify", str(out)]) == 0
    assert main(["verify", str(tmp_path / "pkg.tar.gz")]) == 0
    assert "precision int8" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "pkg.tar.gz")]) == 0
    info = capsys.readouterr().out
    assert "# Tiny ranker" in info and "training_data trec-rag24 train" in info

    from ranker_sdk import Ranker

    assert Ranker.load(out).model_card == card.read_text(encoding="utf-8")


def test_verify_names_the_corrupt_file(int8_package, tmp_path, capsys):
    bad = shutil.copytree(int8_package, tmp_path / "flipped")
    data = bytearray((bad / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "model.onnx").write_bytes(bytes(data))
    assert main(["verify", str(bad)]) == 1
    assert "model.onnx fails its sha256 check" in capsys.readouterr().err

    cut = shutil.copytree(int8_package, tmp_path / "truncated")
    tok = (cut / "tokenizer.json").read_bytes()
    (cut / "tokenizer.json").write_bytes(tok[: len(tok) // 2])
    assert main(["verify", str(cut)]) == 1
    assert "tokenizer.json has" in capsys.readouterr().err

    tarball = int8_package.with_name(int8_package.name + ".tar.gz")
    half = tmp_path / "half.tar.gz"
    half.write_bytes(tarball.read_bytes()[: tarball.stat().st_size // 2])
    assert main(["verify", str(half)]) == 1
    assert "not a readable .tar.gz" in capsys.readouterr().err


def test_errors_are_one_line_and_non_zero(tiny_bert_dir, make_checkpoint, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    assert main(["package", "--model", str(tiny_bert_dir), "--out", str(taken)]) == 1
    assert "error: --out" in capsys.readouterr().err

    two = make_checkpoint("bert", tmp_path / "two", num_labels=2)
    assert main(["package", "--model", str(two), "--out", str(tmp_path / "o")]) == 1
    assert "error: " in capsys.readouterr().err and not (tmp_path / "o").exists()

    assert (
        main(
            [
                "package",
                "--model",
                str(tiny_bert_dir),
                "--out",
                str(tmp_path / "o"),
                "--model-card",
                str(tmp_path / "no-card.md"),
            ]
        )
        == 1
    )
    assert "--model-card" in capsys.readouterr().err and not (tmp_path / "o").exists()

    assert main(["package", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "o"), "--set", "max_queries=0"]) == 1
    assert "max_queries must be a positive integer" in capsys.readouterr().err


def test_cli_module_imports_nothing_heavy():
    code = (
        "import sys, ranker_quantize.cli, ranker_sdk.cli; ranker_sdk.cli.build_parser(); "
        "heavy = {'torch', 'transformers', 'optimum', 'onnx'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_set_reaches_the_quantizer(tiny_bert_dir, data_dir, tmp_path, capsys):
    out = tmp_path / "dyn"
    rc = main(
        [
            "package",
            "--model",
            str(tiny_bert_dir),
            "--out",
            str(out),
            "--set",
            "activations=dynamic",
            "--set",
            "embeddings=fp32",
            "--calibration",
            str(data_dir / "trec-rag24"),
            "--set",
            "max_queries=2",
            "--set",
            "max_ndcg_drop=1",
        ]
    )
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "precision int8 (dynamic activations, fp32 embeddings)" in cap.out
    q = json.loads((out / "ranker.json").read_text())["quantization"]
    assert (q["precision"], q["activations"], q["embeddings"]) == ("int8", "dynamic", "fp32")
    assert "calibration" not in q  # dynamic scales are not calibrated

    argv = ["package", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "x"), "--set", "embeddings=tensor"]
    assert main(argv) == 1  # one scale for the whole table is dynamic-only
    assert "dynamic" in capsys.readouterr().err and not (tmp_path / "x").exists()


def _parse(*argv: str):
    from ranker_sdk.cli import build_parser

    return build_parser().parse_args(["package", "--model", "m", "--out", "o", *argv])


def test_options_and_settings_build_the_package_options():
    """Each option and each --set key lands in its field; the rest keep the dataclass defaults."""
    from ranker_quantize import PackageOptions, QuantizeOptions, VerifyOptions
    from ranker_quantize.cli import _options

    args = _parse(
        *("--precision", "int8", "--max-length", "96", "--calibration", "data", "--split", "test"),
        *("--gate-data", "more", "--gate-data", "other=train", "--fit-fusion", "fit=dev", "--threads", "2"),
        *("--force", "--tar", "--base-model", "base", "--training-data", "text", "--model-card", "card.md"),
        *("--set", "smooth=none", "--set", "reduce_range=FALSE", "--set", "calibration_pairs=64"),
        *("--set", "max_queries=3", "--set", "min_spearman=0.5", "--set", "padded_batches=true"),
        *("--set", "query_max_tokens=20", "--set", "fusion_objective=maxmin"),
    )
    assert _options(args) == PackageOptions(
        max_length=96,
        query_max_tokens=20,
        quantize=QuantizeOptions(smooth=None, reduce_range=False, calibration_pairs=64),
        verify=VerifyOptions(
            calibration="data",
            split="test",
            max_queries=3,
            min_spearman=0.5,
            threads=2,
            gate_data=(("more", "dev"), ("other", "train")),
        ),
        force=True,
        base_model="base",
        training_data="text",
        tar=True,
        model_card="card.md",
        fusion_data=(("fit", "dev"),),
        fusion_objective="maxmin",
        padded_batches=True,
    )
    assert _options(_parse()) == PackageOptions()


def test_every_setting_is_a_field_and_its_help_shows_the_default():
    """--set's keys are exactly the fields without an option of their own, and --help tells their defaults."""
    import dataclasses
    import re

    from ranker_quantize import PackageOptions, QuantizeOptions, VerifyOptions
    from ranker_quantize.cli import _SETTINGS, _own_options

    defaults = {}
    for cls in (PackageOptions, QuantizeOptions, VerifyOptions):
        for f in dataclasses.fields(cls):
            if f.name not in ("quantize", "verify"):
                defaults[f.name] = f.default
    assert set(_SETTINGS) == set(defaults) - set(_own_options())
    assert set(_own_options()) - {"model", "out", "verbose", "settings"} <= set(defaults)  # the rest are fields
    for key, text in _SETTINGS.items():
        value = defaults[key]
        if value is None:
            continue
        shown = (
            str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)
        )
        assert re.search(rf"\b{re.escape(shown)} \(default\)|default:? {re.escape(shown)}\b", text), (key, shown, text)


# `ranker package` with bad input: each is refused before the export, in one line naming it
PACKAGE_CASES = {
    "no checkpoint": (["--model", "{tmp}/nomodel"], ["--model", "nomodel", "no config.json"]),
    "--out is a file": (["--out", "{tmp}/afile"], ["--out", "afile", "not an empty directory"]),
    "--out.tar.gz exists": (["--tar", "--out", "{tmp}/taken"], ["taken.tar.gz exists"]),
    "no model card": (["--model-card", "{tmp}/card.md"], ["--model-card", "card.md", "no such file"]),
    "calibration folder": (["--calibration", "{tmp}/nodata"], ["--calibration", "nodata", "not a directory"]),
    "fusion folder": (["--fit-fusion", "{tmp}"], ["--fit-fusion", "no candidates.run"]),
    "fusion split": (["--fit-fusion", "{tmp}="], ["--fit-fusion", "expected DIR or DIR=SPLIT"]),
    "fusion split as a word": (["--fit-fusion", "{tmp}", "dev"], ["unrecognized arguments: dev"]),
    "gate split": (["--gate-data", "=dev"], ["--gate-data", "expected DIR or DIR=SPLIT"]),
    "zero threads": (["--threads", "0"], ["threads must be a positive integer"]),
    "zero max length": (["--max-length", "0"], ["max_length must be a positive integer"]),
    "max length not a number": (["--max-length", "long"], ["--max-length", "'long'"]),
}


@pytest.mark.parametrize("case", sorted(PACKAGE_CASES))
def test_package_refuses_bad_input_in_one_line(case, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "taken.tar.gz").write_bytes(b"")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")  # never read: every case fails before the export
    args, names = PACKAGE_CASES[case]
    argv = ["package", "--model", "{tmp}/model", "--out", "{tmp}/pkg", *args]
    rc, err = run_main([a.format(tmp=tmp_path) for a in argv], capsys)
    error_line(rc, err, *names)
    assert not (tmp_path / "pkg").exists()


# `--set` mistakes: one line naming the key, status 1, before any work
SET_CASES = {
    "unknown key": ("smoth=0.5", ["--set smoth: unknown key; the keys are activations, embeddings,", "opset"]),
    "not a number": ("smooth=high", ["--set smooth: expected float, got 'high'"]),
    "out of range": (
        "smooth=2",
        ["smooth must be an alpha strictly between 0 and 1, or none (None in Python) to switch it off, got 2.0"],
    ),
    "not a yes/no": ("reduce_range=yes", ["--set reduce_range: expected true/false, got 'yes'"]),
    "not a choice": ("embeddings=int4", ["embeddings must be one of rows, tensor, fp32; got 'int4'"]),
    "not a count": ("max_queries=0", ["max_queries must be a positive integer, got 0"]),
    "not a whole number": ("calibration_pairs=2.5", ["--set calibration_pairs: expected int, got '2.5'"]),
    "none where one is needed": ("fusion_objective=none", ["--set fusion_objective: expected str, got NoneType"]),
    "an option's own field": (
        "calibration=data",
        ["--set calibration: calibration has an option of its own: --calibration"],
    ),
    "no value": ("smooth", ["--set 'smooth': expected KEY=VALUE"]),
}


@pytest.mark.parametrize("case", sorted(SET_CASES))
def test_set_refuses_bad_keys_and_values_in_one_line(case, tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")  # never read: every case fails before the export
    spec, names = SET_CASES[case]
    rc, err = run_main(
        ["package", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "pkg"), "--set", spec], capsys
    )
    assert rc == 1
    error_line(rc, err, *names)
    assert not (tmp_path / "pkg").exists()


# The spellings `ranker package` no longer takes: an option each had, or a --set key has, one spelling.
REMOVED = (
    "--calibration-queries 3",  # --set max_queries=3
    "--min-spearman 0.5",  # --set min_spearman=0.5
    "--max-ndcg-drop 1",  # --set max_ndcg_drop=1
    "--min-top10-overlap 0.5",  # --set min_top10_overlap=0.5
    "--per-tensor",  # --set per_channel=false
    "--reduce-range",  # --set reduce_range=true
    "--no-reduce-range",  # --set reduce_range=false
    "--embeddings fp32",  # --set embeddings=fp32
    "--fp32-embeddings",  # --set embeddings=fp32
    "--calibration-pairs 64",  # --set calibration_pairs=64
    "--smooth 0.5",  # --set smooth=0.5
    "--no-smooth",  # --set smooth=none
    "--padded-batches",  # --set padded_batches=true
    "--query-max-tokens 20",  # --set query_max_tokens=20
    "--doc-max-chars 500",  # --set doc_max_chars=500
    "--fusion-split dev",  # --fit-fusion DIR=dev
    "--precision dynamic",  # --set activations=dynamic
)


@pytest.mark.parametrize("old", REMOVED)
def test_removed_spellings_are_refused_by_the_parser(old, tmp_path, capsys):
    rc, err = run_main(["package", "--model", str(tmp_path), "--out", str(tmp_path / "pkg"), *old.split()], capsys)
    line = error_line(rc, err, old.split()[-1] if old.startswith("--precision") else old.split()[0])
    assert rc == 2 and ("unrecognized arguments" in line or "invalid choice" in line)
    assert not (tmp_path / "pkg").exists()


def test_package_in_a_real_process_prints_no_traceback(tmp_path):
    rc, err = run_subprocess(["package", "--model", str(tmp_path / "nomodel"), "--out", str(tmp_path / "pkg")])
    assert rc == 1 and error_line(rc, err, "nomodel").startswith("error: ")
