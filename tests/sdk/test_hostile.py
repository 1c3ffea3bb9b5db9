"""Regression tests for the defects adversarial probes found (issue 12): every one of them failed
before its fix.

Memory claims are checked in a child process (so the measurement is not the test runner's own
peak) either as peak-RSS growth or under an ``RLIMIT_DATA`` cap that the old code exceeded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ranker_sdk import InputError, InternalError, PackageError, Ranker
from ranker_sdk.package import read_package

from tests.conftest import tiny_config
from tests.sdk.conftest import reseal

ROOT = Path(__file__).resolve().parents[2]


def _child(code: str, *, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with the repo on sys.path."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env if env is not None else {**os.environ},
    )


# -- the loader: every malformed package is a PackageError naming the file --------------------


def test_manifest_size_1e400_is_a_package_error(pkg_copy):
    man = (pkg_copy / "manifest.json").read_text()
    size = json.loads(man)["files"]["model.onnx"]["size"]
    (pkg_copy / "manifest.json").write_text(man.replace(f'"size": {size}', '"size": 1e400', 1))
    with pytest.raises(PackageError, match=r"manifest\.json entry for model\.onnx needs a non-negative integer size"):
        Ranker.load(pkg_copy)


def test_deeply_nested_manifest_is_a_package_error(pkg_copy):
    (pkg_copy / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PackageError, match=r"manifest\.json is not valid JSON \(RecursionError\)"):
        Ranker.load(pkg_copy)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda text, cfg: "[" * 100_000 + "]" * 100_000, r"ranker\.json is not valid JSON \(RecursionError"),
        (
            lambda text, cfg: text.replace(f'"max_length": {cfg["max_length"]}', '"max_length": 1e400'),
            r"ranker\.json: max_length: expected int, got inf",
        ),
        (lambda text, cfg: json.dumps({**cfg, "max_length": 10**9}), r"max_length <= 8192"),
        (
            lambda text, cfg: json.dumps({**cfg, "score": {"kind": "sigmoid", "scale": float("nan")}}),
            r"score\.scale and score\.bias must be within",
        ),
        (lambda text, cfg: json.dumps({**cfg, "score": "raw"}), r"ranker\.json: score: expected a mapping"),
        (
            lambda text, cfg: json.dumps({**cfg, "max_length": "x" * 10**6}),
            r"max_length: expected int, got 'xxx.*\.\.\.$",
        ),
        (
            lambda text, cfg: json.dumps({k: v for k, v in cfg.items() if k != "inputs"}),
            r"ranker\.json: missing key\(s\) \['inputs'\]",
        ),
        (
            lambda text, cfg: json.dumps({**cfg, "score_kind": "raw"}),
            r"ranker\.json: unknown key\(s\) \['score_kind'\]; the valid keys are \['format_version',",
        ),
    ],
)
def test_malformed_ranker_json_is_a_package_error(pkg_copy, edit, match):
    text = (pkg_copy / "ranker.json").read_text()
    (pkg_copy / "ranker.json").write_text(edit(text, json.loads(text)))
    reseal(pkg_copy)
    with pytest.raises(PackageError, match=match):
        Ranker.load(pkg_copy)


def test_load_with_a_non_path_is_a_clear_error():
    with pytest.raises(InputError, match="path must be a str, an os.PathLike or None"):
        Ranker.load(5)
    with pytest.raises(PackageError, match="must be a str or os.PathLike"):
        read_package(5)


def test_max_length_beyond_the_model_position_limit_is_refused_at_load(tmp_path, tiny_onnx, tiny_bert_dir):
    """The tiny model has 128 positions; a package promising 256 used to load and fail on the first long doc."""
    from ranker_quantize.package import write_package  # the packager: only with the tiny model (torch)

    files = {"model.onnx": tiny_onnx, "tokenizer.json": (tiny_bert_dir / "tokenizer.json").read_bytes()}
    pkg = write_package(tmp_path / "long", files, tiny_config(max_length=256, doc_max_chars=4000))
    with pytest.raises(
        PackageError, match=r"model\.onnx fails on a 256-token probe batch \(ranker\.json max_length 256\)"
    ):
        Ranker.load(pkg)


def _sqrt_model(offset: float) -> bytes:
    """An ONNX model scoring every row ``sqrt(seq_len - offset)``: NaN for batches narrower than ``offset``."""
    from onnx import TensorProto, helper

    ins = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch"])
    nodes = [
        helper.make_node("Shape", ["input_ids"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["seq"]),
        helper.make_node("Cast", ["seq"], ["seqf"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["seqf", "offset"], ["d"]),
        helper.make_node("Sqrt", ["d"], ["root"]),
    ]
    for n in ("input_ids", "attention_mask", "token_type_ids"):  # use every input, times zero
        nodes += [
            helper.make_node("Cast", [n], [n + "_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", [n + "_f", "axis1"], [n + "_s"], keepdims=0),
            helper.make_node("Mul", [n + "_s", "zero"], [n + "_z"]),
        ]
    nodes += [
        helper.make_node("Add", ["input_ids_z", "attention_mask_z"], ["a"]),
        helper.make_node("Add", ["a", "token_type_ids_z"], ["b"]),
        helper.make_node("Add", ["b", "root"], ["scores"]),
    ]
    inits = [
        helper.make_tensor("one", TensorProto.INT64, [], [1]),
        helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("offset", TensorProto.FLOAT, [], [offset]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    graph = helper.make_graph(nodes, "sqrt_len", ins, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _package_with_model(tmp_path, tiny_bert_dir, model: bytes, name: str) -> Path:
    from ranker_quantize.package import write_package

    files = {"model.onnx": model, "tokenizer.json": (tiny_bert_dir / "tokenizer.json").read_bytes()}
    return write_package(tmp_path / name, files, tiny_config())


def test_model_returning_nan_is_refused_at_load(tmp_path, tiny_bert_dir):
    pkg = _package_with_model(tmp_path, tiny_bert_dir, _sqrt_model(1e6), "nan")  # sqrt(negative) always
    with pytest.raises(PackageError, match=r"model\.onnx returns non-finite scores \[nan, nan\] on a 64-token probe"):
        Ranker.load(pkg)


def test_non_finite_score_at_run_time_is_an_internal_error(tmp_path, tiny_bert_dir):
    """Finite on the full-width probe, NaN on narrower batches: scoring raises, never returns NaN."""
    pkg = _package_with_model(tmp_path, tiny_bert_dir, _sqrt_model(63.5), "nan_short")
    ranker = Ranker.load(pkg, threads=1, batch_size=1)  # each doc is its own batch, padded to itself
    long_doc = "the probe runs the model once at its full length " * 20
    assert np.isfinite(ranker.score("q", [long_doc])).all()  # padded to 64: sqrt(0.5)
    with pytest.raises(InternalError, match=r"non-finite scores for docs \[1\]"):
        ranker.score("q", [long_doc, "short"])  # the short doc's batch is 6 tokens wide: NaN


def test_onnxruntime_failures_leave_stderr_quiet(tmp_path, tiny_onnx, tiny_bert_dir):
    from ranker_quantize.package import write_package

    files = {"model.onnx": tiny_onnx, "tokenizer.json": (tiny_bert_dir / "tokenizer.json").read_bytes()}
    pkg = write_package(tmp_path / "long", files, tiny_config(max_length=256, doc_max_chars=4000))
    r = _child(f"""
        from ranker_sdk import PackageError, Ranker
        try:
            Ranker.load({str(pkg)!r}, threads=1)
        except PackageError:
            print("refused")
    """)
    assert r.stdout.strip() == "refused", r.stderr
    assert r.stderr == "", r.stderr  # onnxruntime used to print a red [E:onnxruntime:...] line here


# -- memory and time bounds ---------------------------------------------------------------------


def _read_under_600_mb(path):
    """``read_package(path)`` in a child whose data segment is capped at 600 MB; prints the PackageError."""
    return _child(f"""
        import resource
        from ranker_sdk.package import read_package
        from ranker_sdk import PackageError
        cap = 600 * 1024**2
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
        try:
            read_package({str(path)!r})
        except PackageError as exc:
            print(exc)
    """)


def test_unlisted_huge_file_is_refused_before_it_is_read(pkg_copy):
    """A 1.5 GB stray file (sparse: no disk used) is refused from its listing, under a 600 MB data cap."""
    with open(pkg_copy / "stray.bin", "wb") as fh:
        fh.truncate(1536 * 1024**2)
    r = _read_under_600_mb(pkg_copy)
    assert "files not listed in manifest.json: ['stray.bin']" in r.stdout, r.stdout + r.stderr


def test_tar_member_claiming_gigabytes_is_refused_before_it_is_read(tiny_package, tmp_path):
    """An unlisted 700 MB member of zeros compresses to under a megabyte; it must never be inflated into memory."""
    from ranker_quantize.package import tar_package

    tar = tar_package(tiny_package, tmp_path / "ok.tar.gz")
    evil = tmp_path / "evil.tar.gz"

    class Zeros:
        def __init__(self, n):
            self.left = n

        def read(self, k=-1):
            k = self.left if k < 0 else min(k, self.left)
            self.left -= k
            return bytes(k)

    size = 700 * 1024**2
    with tarfile.open(tar, "r:gz") as src, tarfile.open(evil, "w:gz", compresslevel=1) as dst:
        for m in src:
            dst.addfile(m, src.extractfile(m))
        info = tarfile.TarInfo("tiny/bomb.bin")
        info.size = size
        dst.addfile(info, Zeros(size))
    assert evil.stat().st_size < 5 * 1024**2
    r = _read_under_600_mb(evil)
    assert "files not listed in manifest.json: ['bomb.bin']" in r.stdout, r.stdout + r.stderr


def test_tar_member_whose_size_disagrees_with_the_manifest(tiny_package, tmp_path):
    from ranker_quantize.package import tar_package

    tar = tar_package(tiny_package, tmp_path / "ok.tar.gz")
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(tar, "r:gz") as src, tarfile.open(bad, "w:gz") as dst:
        for m in src:
            data = src.extractfile(m).read()
            if m.name.endswith("tokenizer.json"):
                data += b" " * 10
                m.size = len(data)
            dst.addfile(m, __import__("io").BytesIO(data))
    with pytest.raises(PackageError, match=r"tokenizer\.json has \d+ bytes, the manifest says"):
        Ranker.load(bad)


def _peak_rss_growth_mb(package: Path, work: str) -> float:
    """Peak-RSS growth (MB) of a child that loads ``package`` then runs ``work`` (with ``ranker``, ``docs``)."""
    r = _child(f"""
        import json, resource
        from ranker_sdk import Ranker
        ranker = Ranker.load({str(package)!r}, threads=1)
        docs = []
        with open({str(ROOT.parent / "shared" / "data" / "trec-rag24" / "corpus.jsonl")!r}) as fh:
            for line in fh:
                docs.append(json.loads(line)["text"])
                if len(docs) == 300:
                    break
        ranker.score("warm up", docs[:50])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        {work}
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
    """)
    assert r.returncode == 0, r.stderr
    return float(r.stdout.split()[-1])


@pytest.mark.slow
def test_ten_thousand_docs_in_bounded_memory(tiny_package, data_dir):
    """10,000 candidates score in chunks: peak RSS grows by less than a tenth of what encoding them all took."""
    growth = _peak_rss_growth_mb(tiny_package, "s = ranker.score('school lunch prices', docs * 34)")
    assert growth < 40, f"scoring 10,200 docs grew peak RSS by {growth:.0f} MB"


def test_ten_megabyte_query_is_cut_by_characters_first(tiny_package, tiny_ranker, data_dir):
    huge = "inflation " * 1_000_000  # 10 MB
    budget = tiny_ranker.config.query_max_tokens * 100
    docs = ["prices rose sharply this year", "bananas are yellow"]
    np.testing.assert_array_equal(tiny_ranker.score(huge, docs), tiny_ranker.score(huge[:budget], docs))
    growth = _peak_rss_growth_mb(tiny_package, "ranker.score('inflation ' * 1_000_000, docs[:2])")
    assert growth < 100, f"a 10 MB query grew peak RSS by {growth:.0f} MB (the whole query was tokenized)"


# -- arguments ----------------------------------------------------------------------------------


def test_threads_has_an_upper_bound(default_dir):
    from ranker_sdk.ranker import MAX_THREADS

    with pytest.raises(InputError, match=f"threads must be at most {MAX_THREADS}, got 100000"):
        Ranker.load(default_dir, threads=100_000)


def test_numpy_integers_are_accepted(tiny_package, tiny_ranker):
    r = Ranker.load(tiny_package, threads=np.int64(1), batch_size=np.int32(4), max_batch_tokens=np.uint16(256))
    docs = ["a", "b", "c"]
    hits = r.rank("q", docs, top_k=np.int64(2))
    assert [h.index for h in hits] == [h.index for h in tiny_ranker.rank("q", docs, top_k=2)]
    with pytest.raises(InputError, match="top_k"):
        r.rank("q", docs, top_k=np.int64(0))


# -- telemetry ----------------------------------------------------------------------------------


def test_loading_and_scoring_write_nothing_to_home_or_tmp(tiny_package, tmp_path):
    """onnxruntime's telemetry wrote ~/.cache/Microsoft/... and $TMPDIR/.ses; the SDK turns it off."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"))
    r = _child(
        f"""
        from ranker_sdk import Ranker
        print(Ranker.load({str(tiny_package)!r}, threads=1).score("q", ["a doc", "another"]))
    """,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in home.rglob("*")) == [] and sorted(p.name for p in tmp.rglob("*")) == []


def test_a_host_can_opt_back_in_to_telemetry():
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "0"}
    r = _child("import os, ranker_sdk; print(os.environ['ORT_DISABLE_TELEMETRY'])", env=env)
    assert r.stdout.strip() == "0", r.stderr
    env.pop("ORT_DISABLE_TELEMETRY")
    r = _child("import os, ranker_sdk; print(os.environ['ORT_DISABLE_TELEMETRY'])", env=env)
    assert r.stdout.strip() == "1", r.stderr
