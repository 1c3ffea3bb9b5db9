"""Static INT8 (the default of ``ranker package``): a document's score does not depend on its batch.

Built by the real pipeline (export, fusion, calibration on real trec-rag24 dev pairs, QDQ
quantization, verification, sealing) and scored through the real SDK. A dynamically quantized
package of the same checkpoint is the contrast: the same measurement does see its batch
dependence, so the static test is not passing by looking at nothing.
"""

from __future__ import annotations

import pytest
from ranker_quantize import PackageOptions, QuantizeOptions, VerifyOptions, build_package
from ranker_quantize.verify import batch_invariance, calibration_groups
from ranker_sdk.package import read_package


@pytest.fixture(scope="module")
def dev_groups(data_dir):
    return calibration_groups(data_dir / "trec-rag24", "dev", max_queries=12)[0]


def test_default_package_is_static_int8_and_says_so(int8_package):
    q = read_package(int8_package).config.quantization
    assert q["precision"] == "int8" and q["activations"] == "static" and q["embeddings"] == "rows"
    assert "static" in q["method"] and q["calibration"]["data"] == "trec-rag24/dev"
    assert q["calibration"]["pairs"] == 4 * 20  # the 4 verification queries' candidates, one pair a feed


def test_static_scores_do_not_depend_on_batch_neighbours(int8_package, dev_groups):
    report = batch_invariance(int8_package, dev_groups)
    assert report["queries"] == 12
    assert report["max_abs_diff"] <= 1e-3, report
    assert report["top10_identical"] == 1.0, report


@pytest.mark.slow
def test_dynamic_scores_do_depend_on_them(tiny_bert_dir, data_dir, dev_groups, tmp_path):
    """The contrast: per-batch activation scales move a pair's score with its neighbours."""
    options = PackageOptions(
        quantize=QuantizeOptions(activations="dynamic"),
        verify=VerifyOptions(calibration=str(data_dir / "trec-rag24"), max_queries=4, max_ndcg_drop=1.0),
    )
    pkg = build_package(tiny_bert_dir, tmp_path / "dynamic", options).path
    assert read_package(pkg).config.quantization["activations"] == "dynamic"
    assert batch_invariance(pkg, dev_groups)["max_abs_diff"] > 1e-3


def test_static_cross_encoder_drops_the_padding_mask_and_batches_exactly(
    int8_package, tiny_bert_dir, data_dir, dev_groups, tmp_path
):
    """Fused MultiHeadAttention loses its mask input (onnxruntime's faster attention path) and the
    package says ``batching: "exact"``; ``padded_batches`` keeps the mask and the old batching."""
    import numpy as np
    import onnx
    from ranker_eval.metrics import spearman
    from ranker_sdk import Ranker

    def mha_inputs(pkg):
        model = onnx.load_from_string(read_package(pkg).files["model.onnx"])
        return {len(n.input) for n in model.graph.node if n.op_type == "MultiHeadAttention"}

    assert read_package(int8_package).config.batching == "exact"
    assert mha_inputs(int8_package) == {4}  # query, key, value, bias: no key_padding_mask
    options = PackageOptions(
        padded_batches=True,
        verify=VerifyOptions(calibration=str(data_dir / "trec-rag24"), max_queries=4, max_ndcg_drop=1.0),
    )
    padded = build_package(tiny_bert_dir, tmp_path / "padded", options).path
    assert read_package(padded).config.batching == "padded" and mha_inputs(padded) == {5}
    assert "batching" not in read_package(padded).config.to_dict()
    exact, masked = Ranker.load(int8_package, threads=1), Ranker.load(padded, threads=1)
    for g in dev_groups[:4]:
        a, b = exact.score(g.query, list(g.docs)), masked.score(g.query, list(g.docs))
        # the same quantized weights and scales; attention differs only in rounding (about 1e-6 in
        # fp32), which an INT8 graph can amplify by flipping a rounding step downstream
        assert spearman(a, b) > 0.9 and np.abs(a - b).max() < 0.5
