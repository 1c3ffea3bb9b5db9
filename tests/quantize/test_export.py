"""export.py: loading checkpoints and the exported graph's contract, for every family."""

from __future__ import annotations

import shutil

import onnx
import pytest
from ranker_quantize.errors import ExportError
from ranker_quantize.export import export_onnx, load_checkpoint
from ranker_sdk.errors import InputError


def test_graph_contract_per_family(family_dirs):
    for family, path in family_dirs.items():
        ckpt = load_checkpoint(path)
        # Eager attention: sdpa traces to a subgraph the optimizer cannot fuse.
        assert ckpt.model.config._attn_implementation == "eager"
        graph = export_onnx(ckpt)
        with_types = family in ("bert", "electra")
        expected = {"input_ids", "attention_mask"} | ({"token_type_ids"} if with_types else set())
        assert set(graph.inputs) == expected, family
        for i in graph.model.graph.input:
            t = i.type.tensor_type
            assert t.elem_type == onnx.TensorProto.INT64
            assert [d.dim_param for d in t.shape.dim] == ["batch_size", "sequence_length"]
        out = graph.model.graph.output[0].type.tensor_type.shape.dim
        assert out[0].dim_param == "batch_size" and out[1].dim_value == 1
        assert all(t.data_location == onnx.TensorProto.DEFAULT for t in graph.model.graph.initializer)
        assert ckpt.tokenizer_json == (path / "tokenizer.json").read_bytes()


def test_rejects_a_head_with_two_outputs(make_checkpoint, tmp_path):
    path = make_checkpoint("bert", tmp_path / "two", num_labels=2)
    with pytest.raises(ExportError, match="2 outputs"):
        load_checkpoint(path)


def test_rejects_a_bare_encoder(tiny_bert_dir, tmp_path):
    from transformers import AutoModel

    # A BertModel checkpoint loads as a classifier only with a random head: refuse it.
    AutoModel.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path / "enc")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (tmp_path / "enc" / name).write_bytes((tiny_bert_dir / name).read_bytes())
    with pytest.raises(ExportError, match="classifier.*random|random"):
        load_checkpoint(tmp_path / "enc")


def test_rejects_a_missing_checkpoint(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        load_checkpoint(tmp_path / "nothing")


def test_pickled_checkpoint_is_refused(tiny_bert_dir, tmp_path):
    """No pickle anywhere: a checkpoint whose weights are only a pytorch_model.bin is not loaded."""
    from transformers import AutoModelForSequenceClassification

    ckpt = tmp_path / "bin_ckpt"
    AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).save_pretrained(ckpt, safe_serialization=False)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_bert_dir / f, ckpt / f)
    assert (ckpt / "pytorch_model.bin").is_file() and not (ckpt / "model.safetensors").exists()
    with pytest.raises(ExportError):
        load_checkpoint(ckpt)
