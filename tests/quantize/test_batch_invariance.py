"""The promise of DESIGN.md, on the bundled default: a document's score depends on that document
and the query only, never on its batch neighbours. Measured by the packager's own check
(:func:`ranker_quantize.verify.batch_invariance`), hence here and not in the runtime's tests.

Every trec-rag24 dev query's candidates are scored alone (one pair a call), in the SDK's
default batches, and shuffled into one unsorted call; scores must agree to 1e-3 and the top 10
must be identical on every query. A statically quantized package meets this (its activation
scales are constants); a dynamically quantized one cannot (its scales follow the batch), so for
such a bundled default the test is an expected failure: it is the bug, recorded, not hidden.
"""

from __future__ import annotations

import pytest
from ranker_eval.beir import load_groups
from ranker_quantize.verify import batch_invariance
from ranker_sdk.package import read_package
from ranker_sdk.ranker import default_package_path

DEFAULT = default_package_path()


@pytest.mark.slow
@pytest.mark.skipif(DEFAULT is None, reason="no default package bundled")
def test_default_scores_do_not_depend_on_batch_neighbours(data_dir, request):
    if read_package(DEFAULT).config.quantization.get("activations") != "static":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="the bundled default is dynamically quantized: its scores follow the batch (issue 11)",
            )
        )
    groups = load_groups(data_dir / "trec-rag24", "dev")
    report = batch_invariance(DEFAULT, groups)
    assert report["queries"] == 45
    assert report["max_abs_diff"] <= 1e-3, report
    assert report["top10_identical"] == 1.0, report
