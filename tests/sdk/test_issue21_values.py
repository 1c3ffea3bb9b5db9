"""Package values, first-stage numbers, memory, threads and small API edges (issue 21), as the issue writes them.

Each test reproduces one report: a ``ranker.json`` whose values are finite in float64 but give
NaN/inf in the float32 maths; first-stage scores that overflow; a listed file held in memory;
``threads`` beyond the cores; a ``Hit`` repr printing the whole doc; ``Ranker.load("")``.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
from ranker_sdk import InputError, PackageError, Ranker
from ranker_sdk.fusion import zscore
from ranker_sdk.package import MAX_PACKAGE_BYTES, read_package
from ranker_sdk.ranker import Hit, available_cores

from .conftest import reseal

DOCS = ["Paris is the capital of France.", "Bananas are yellow.", "The Eiffel Tower is in Paris."]


def _edit_config(pkg, **changes) -> None:
    cfg = json.loads((pkg / "ranker.json").read_text())
    cfg.update(changes)
    (pkg / "ranker.json").write_text(json.dumps(cfg))
    reseal(pkg)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"fusion": {"kind": "zscore-linear", "weight": 1e39}}, r"fusion\.weight must be a number within"),
        (
            {"score": {"kind": "sigmoid", "scale": 1e300, "bias": -1e300}},
            r"score\.scale and score\.bias must be within",
        ),
        ({"pad_token_id": 2**63}, r"pad_token_id must be in \[0, 2\*\*63 - 1\]"),
        ({"pad_token_id": -1}, r"pad_token_id must be in"),
        ({"doc_max_chars": 10**12}, r"need 1 <= doc_max_chars <= 1000000"),
    ],
)
def test_ranker_json_values_that_break_float32_maths_are_refused_at_load(pkg_copy, changes, match):
    _edit_config(pkg_copy, **changes)
    with pytest.raises(PackageError, match=match):
        Ranker.load(pkg_copy)


def test_largest_allowed_values_still_give_finite_scores(pkg_copy):
    """At the bounds (weight 1000, scale/bias 1e4) every score is finite: the bounds are tight enough."""
    _edit_config(
        pkg_copy,
        fusion={"kind": "zscore-linear", "weight": 1000.0},
        score={"kind": "sigmoid", "scale": 1e4, "bias": -1e4},
    )
    ranker = Ranker.load(pkg_copy)
    scores = ranker.score("capital of france", DOCS, first_stage=[1e153, -1e153, 0.0])
    assert np.isfinite(scores).all()


def test_first_stage_beyond_float_range_is_an_input_error(default_ranker):
    with pytest.raises(InputError, match=r"first_stage\[0\] is too large for a float"):
        default_ranker.score("q", DOCS, first_stage=[10**400, 0, 1])


def test_first_stage_of_1e154_or_more_is_not_silently_zeroed():
    """The variance of [1e154, 0, -1e154] overflows float64 when squared; the z-scores must not all be 0."""
    z = zscore(np.array([1e154, 0.0, -1e154]))
    np.testing.assert_allclose(z, [np.sqrt(1.5), 0.0, -np.sqrt(1.5)])
    np.testing.assert_allclose(zscore(np.array([1e300, 2e300, 3e300])), zscore(np.array([1.0, 2.0, 3.0])))


def test_first_stage_of_1e200_changes_the_fused_order(pkg_copy):
    _edit_config(pkg_copy, fusion={"kind": "zscore-linear", "weight": 100.0})
    ranker = Ranker.load(pkg_copy)
    for first in ([0.0, 1e200, 2e200], [2e200, 1e200, 0.0]):
        hits = ranker.rank("capital of france", DOCS, first_stage=first)
        assert hits[0].index == int(np.argmax(first)), "a weight of 100 lets the first stage decide"


def test_a_listed_file_the_runtime_does_not_use_is_hashed_not_kept(pkg_copy):
    """A listed 64 MiB file (sparse: no disk) is verified at load but not held in memory."""
    with open(pkg_copy / "extra.bin", "wb") as fh:
        fh.truncate(64 * 1024**2)
    reseal(pkg_copy)
    pkg = read_package(pkg_copy, keep_model=False, runtime_only=True)
    assert "extra.bin" not in pkg.files and "extra.bin" in pkg.manifest
    assert set(pkg.files) == {"manifest.json", "ranker.json", "tokenizer.json", "MODEL_CARD.md"} & (
        set(pkg.manifest) | {"manifest.json"}
    )
    assert "extra.bin" in read_package(pkg_copy).files  # the packager's reader still copies every file


def test_a_listed_file_changed_after_sealing_still_fails_its_hash(pkg_copy):
    with open(pkg_copy / "extra.bin", "wb") as fh:
        fh.write(b"a" * 1000)
    reseal(pkg_copy)
    (pkg_copy / "extra.bin").write_bytes(b"b" * 1000)
    with pytest.raises(PackageError, match=r"extra\.bin fails its sha256 check"):
        Ranker.load(pkg_copy)


def test_a_package_over_the_size_cap_is_refused_before_reading(pkg_copy):
    """A listed sparse file one byte over the cap: refused from the manifest alone, in well under a second's read."""
    with open(pkg_copy / "huge.bin", "wb") as fh:
        fh.truncate(MAX_PACKAGE_BYTES + 1)
    manifest = json.loads((pkg_copy / "manifest.json").read_text())
    manifest["files"]["huge.bin"] = {"sha256": "0" * 64, "size": MAX_PACKAGE_BYTES + 1}
    (pkg_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match=rf"more than the {MAX_PACKAGE_BYTES} bytes a ranker package may hold"):
        Ranker.load(pkg_copy)


def test_threads_beyond_the_cores_are_clamped_with_a_warning(default_dir, caplog):
    cores = available_cores()
    with caplog.at_level(logging.WARNING, logger="ranker_sdk.ranker"):
        ranker = Ranker.load(default_dir, threads=256)
    assert f"threads=256 is more than the {cores} cores available; using {cores}" in caplog.text
    assert np.isfinite(ranker.score("q", DOCS)).all()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_threads_256_does_not_start_256_threads(default_dir):
    before = len(os.listdir("/proc/self/task"))
    ranker = Ranker.load(default_dir, threads=256)
    ranker.score("q", DOCS)
    started = len(os.listdir("/proc/self/task")) - before
    assert started <= available_cores() + 4, f"{started} OS threads for {available_cores()} cores"


def test_hit_repr_shows_the_start_of_a_long_doc():
    hit = Hit(index=3, score=0.5, doc="word " * 10_000)
    text = repr(hit)
    assert len(text) < 200 and text.startswith("Hit(index=3, score=0.5000, doc='word word") and "..." in text
    assert hit.doc == "word " * 10_000  # the doc itself stays whole


@pytest.mark.parametrize("path", ["", "   "])
def test_load_of_an_empty_path_is_an_input_error_not_the_current_directory(path):
    with pytest.raises(InputError, match="path is empty"):
        Ranker.load(path)


def test_a_tar_member_header_over_the_cap_is_refused_before_its_bytes(tmp_path):
    """A tar header claiming more than the cap: refused from the header, before any data is read or inflated."""
    import gzip
    import tarfile

    from ranker_sdk.package import MAX_MANIFEST_BYTES

    info = tarfile.TarInfo("pkg/huge.bin")
    info.size = MAX_PACKAGE_BYTES + MAX_MANIFEST_BYTES + 1
    path = tmp_path / "huge.tar.gz"
    path.write_bytes(gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT)))  # the header alone: no data follows
    with pytest.raises(
        PackageError, match="more than the .* bytes a ranker package may hold; refusing it before reading"
    ):
        read_package(path)
