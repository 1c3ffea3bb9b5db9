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
            "--calibration-queries",
            "3",
            "--max-ndcg-drop",
            "1",
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

    assert (
        main(["package", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "o"), "--calibration-queries", "0"])
        == 2
    )
    assert "--calibration-queries must be a positive integer" in capsys.readouterr().err


def test_cli_module_imports_nothing_heavy():
    code = (
        "import sys, ranker_quantize.cli, ranker_sdk.cli; ranker_sdk.cli.build_parser(); "
        "heavy = {'torch', 'transformers', 'optimum', 'onnx'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_precision_dynamic_and_embeddings_flags(tiny_bert_dir, data_dir, tmp_path, capsys):
    out = tmp_path / "dyn"
    rc = main(
        [
            "package",
            "--model",
            str(tiny_bert_dir),
            "--out",
            str(out),
            "--precision",
            "dynamic",
            "--fp32-embeddings",
            "--calibration",
            str(data_dir / "trec-rag24"),
            "--calibration-queries",
            "2",
            "--max-ndcg-drop",
            "1",
        ]
    )
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "precision int8 (dynamic activations, fp32 embeddings)" in cap.out
    q = json.loads((out / "ranker.json").read_text())["quantization"]
    assert (q["precision"], q["activations"], q["embeddings"]) == ("int8", "dynamic", "fp32")
    assert "calibration" not in q  # dynamic scales are not calibrated

    assert (
        main(
            [
                "package",
                "--model",
                str(tiny_bert_dir),
                "--out",
                str(tmp_path / "x"),
                "--fp32-embeddings",
                "--embeddings",
                "rows",
            ]
        )
        == 2
    )
    assert "contradicts" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert (
        main(["package", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "x"), "--embeddings", "tensor"]) == 1
    )  # one scale for the whole table is dynamic-only
    assert "dynamic" in capsys.readouterr().err and not (tmp_path / "x").exists()


# `ranker package` with bad input: each is refused before the export, in one line naming it
PACKAGE_CASES = {
    "no checkpoint": (["--model", "{tmp}/nomodel"], ["--model", "nomodel", "no config.json"]),
    "--out is a file": (["--out", "{tmp}/afile"], ["--out", "afile", "not an empty directory"]),
    "--out.tar.gz exists": (["--tar", "--out", "{tmp}/taken"], ["taken.tar.gz exists"]),
    "no model card": (["--model-card", "{tmp}/card.md"], ["--model-card", "card.md", "no such file"]),
    "calibration folder": (["--calibration", "{tmp}/nodata"], ["--calibration", "nodata", "not a directory"]),
    "fusion folder": (["--fit-fusion", "{tmp}"], ["--fit-fusion", "no candidates.run"]),
    "fusion arguments": (["--fit-fusion", "{tmp}", "dev", "extra"], ["--fit-fusion takes DATA_DIR"]),
    "zero threads": (["--threads", "0"], ["--threads must be a positive integer"]),
    "smooth twice": (["--smooth", "0.5", "--no-smooth"], ["--no-smooth contradicts --smooth"]),
    "smooth out of range": (["--smooth", "2"], ["smooth", "between 0 and 1"]),
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


def test_package_in_a_real_process_prints_no_traceback(tmp_path):
    rc, err = run_subprocess(["package", "--model", str(tmp_path / "nomodel"), "--out", str(tmp_path / "pkg")])
    assert rc == 1 and error_line(rc, err, "nomodel").startswith("error: ")
