"""The package loader refuses anything it cannot trust, naming the file."""

from __future__ import annotations

import json
import os
import tarfile

import pytest
from ranker_sdk import PackageError, Ranker
from ranker_sdk.package import read_package, recheck_file

from tests.sdk.conftest import reseal


def test_valid_package_loads(tiny_package):
    pkg = read_package(tiny_package)
    assert set(pkg.files) == {"model.onnx", "tokenizer.json", "ranker.json", "manifest.json"}
    assert pkg.config.max_length == 64 and pkg.config.inputs[0] == "input_ids"


def test_corrupt_file_is_named(pkg_copy):
    data = bytearray((pkg_copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (pkg_copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"model\.onnx fails its sha256"):
        Ranker.load(pkg_copy)


def test_truncated_file_is_named(pkg_copy):
    data = (pkg_copy / "tokenizer.json").read_bytes()
    (pkg_copy / "tokenizer.json").write_bytes(data[:-10])
    with pytest.raises(PackageError, match=r"tokenizer\.json has \d+ bytes, the manifest says"):
        Ranker.load(pkg_copy)


def test_missing_file_and_missing_manifest(pkg_copy):
    (pkg_copy / "tokenizer.json").unlink()
    with pytest.raises(PackageError, match="tokenizer.json is listed in manifest.json but missing"):
        Ranker.load(pkg_copy)
    (pkg_copy / "manifest.json").unlink()
    with pytest.raises(PackageError, match="no manifest.json"):
        Ranker.load(pkg_copy)


def test_unlisted_file_is_refused(pkg_copy):
    (pkg_copy / "extra.bin").write_bytes(b"x")
    with pytest.raises(PackageError, match="not listed in manifest.json"):
        Ranker.load(pkg_copy)


def test_symlink_is_refused(pkg_copy, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    os.symlink(outside, pkg_copy / "link.txt")
    with pytest.raises(PackageError, match="not a regular file"):
        Ranker.load(pkg_copy)


def test_escaping_manifest_paths_are_refused(pkg_copy):
    man = json.loads((pkg_copy / "manifest.json").read_text())
    man["files"]["../../etc/passwd"] = {"sha256": "0" * 64, "size": 1}
    (pkg_copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(PackageError, match="escapes the package"):
        Ranker.load(pkg_copy)


def test_unknown_format_version_is_refused(pkg_copy):
    cfg = json.loads((pkg_copy / "ranker.json").read_text())
    cfg["format_version"] = 99
    (pkg_copy / "ranker.json").write_text(json.dumps(cfg))
    reseal(pkg_copy)
    with pytest.raises(PackageError, match="format_version 99 is not supported"):
        Ranker.load(pkg_copy)


def test_inputs_must_match_the_model(pkg_copy):
    cfg = json.loads((pkg_copy / "ranker.json").read_text())
    cfg["inputs"] = ["input_ids", "attention_mask"]  # the model also takes token_type_ids
    (pkg_copy / "ranker.json").write_text(json.dumps(cfg))
    reseal(pkg_copy)
    with pytest.raises(PackageError, match="declares"):
        Ranker.load(pkg_copy)


def test_garbage_model_is_a_package_error(pkg_copy):
    (pkg_copy / "model.onnx").write_bytes(b"not an onnx model")
    reseal(pkg_copy)
    with pytest.raises(PackageError, match="onnxruntime"):
        Ranker.load(pkg_copy)


def test_tarball_loads_and_scores_like_the_directory(tiny_package, tiny_ranker, tmp_path):
    from ranker_quantize.package import tar_package

    tar = tar_package(tiny_package, tmp_path / "tiny.tar.gz")
    r = Ranker.load(tar, threads=1)
    docs = ["paris is the capital of france", "bananas are yellow"]
    assert (r.score("capital of france", docs) == tiny_ranker.score("capital of france", docs)).all()


def test_tarball_with_link_member_is_refused(tiny_package, tmp_path):
    tar = tmp_path / "evil.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for p in tiny_package.iterdir():
            t.add(p, arcname=p.name)
        info = tarfile.TarInfo("evil")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        t.addfile(info)
    with pytest.raises(PackageError, match="not a regular file"):
        Ranker.load(tar)


def test_not_a_tarball(tmp_path):
    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(PackageError, match="not a readable .tar.gz"):
        Ranker.load(bad)


def test_missing_path_and_no_default(tmp_path):
    with pytest.raises(PackageError, match="no such package"):
        Ranker.load(tmp_path / "nope")


def test_model_with_two_outputs_per_row_is_refused_at_load(tmp_path, tiny_bert_dir):
    from ranker_quantize.package import write_package
    from transformers import AutoModelForSequenceClassification

    from tests.conftest import export_onnx_bytes, tiny_config

    two = tmp_path / "two_labels"
    AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=2, ignore_mismatched_sizes=True
    ).save_pretrained(two)
    files = {"model.onnx": export_onnx_bytes(two), "tokenizer.json": (tiny_bert_dir / "tokenizer.json").read_bytes()}
    pkg = write_package(tmp_path / "pkg2", files, tiny_config())
    with pytest.raises(PackageError, match="one score per row"):
        Ranker.load(pkg)


def test_model_verified_without_keeping_its_bytes(tiny_package, tmp_path):
    pkg = read_package(tiny_package, keep_model=False)
    assert "model.onnx" not in pkg.files and pkg.model_path == tiny_package / "model.onnx"
    assert pkg.manifest["model.onnx"][0] == (tiny_package / "model.onnx").stat().st_size
    recheck_file(pkg, "model.onnx")  # unchanged: no error
    tarball = tmp_path / "pkg.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for p in sorted(tiny_package.iterdir()):
            tar.add(p, arcname=p.name)
    packed = read_package(tarball, keep_model=False)  # an archive member has no path: bytes are kept
    assert packed.model_path is None and packed.files["model.onnx"] == (tiny_package / "model.onnx").read_bytes()


def test_model_checked_before_the_parser_and_again_after(pkg_copy):
    data = bytearray((pkg_copy / "model.onnx").read_bytes())
    pkg = read_package(pkg_copy, keep_model=False)
    data[len(data) // 2] ^= 0xFF  # rewritten after the check, same size: caught by the recheck
    (pkg_copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"model\.onnx changed on disk while the package was loaded"):
        recheck_file(pkg, "model.onnx")
    with pytest.raises(PackageError, match=r"model\.onnx fails its sha256"):  # and refused up front
        read_package(pkg_copy, keep_model=False)
    (pkg_copy / "model.onnx").write_bytes(bytes(data) + b"x")
    with pytest.raises(PackageError, match=r"model\.onnx has \d+ bytes, the manifest says"):
        read_package(pkg_copy, keep_model=False)


def test_batching_is_padded_unless_the_package_says_exact(pkg_copy):
    cfg = json.loads((pkg_copy / "ranker.json").read_text())
    assert "batching" not in cfg  # a padding package writes no key: its bytes are as before
    assert Ranker.load(pkg_copy, threads=1).config.batching == "padded"
    for value, ok in (("exact", True), ("sometimes", False), (1, False)):
        (pkg_copy / "ranker.json").write_text(json.dumps({**cfg, "batching": value}))
        reseal(pkg_copy)
        if ok:
            assert Ranker.load(pkg_copy, threads=1).config.batching == value
        else:
            with pytest.raises(PackageError, match="batching"):
                Ranker.load(pkg_copy)
