"""lab/gpu_pack.py: a checkpoint packed to travel to/from a GPU machine comes back close and whole."""

from __future__ import annotations

import numpy as np

from lab.gpu_pack import PART, pack, unpack


def test_pack_unpack_round_trip(tiny_bert_dir, tmp_path):
    from safetensors.numpy import load_file

    pack(tiny_bert_dir, tmp_path / "packed", "m")
    parts = sorted((tmp_path / "packed").glob("m.part*"))
    assert parts and all(p.stat().st_size <= PART for p in parts)
    unpack(tmp_path / "packed", "m", tmp_path / "back")
    a = load_file(str(tiny_bert_dir / "model.safetensors"))
    b = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert set(a) == set(b)
    for k, v in a.items():
        assert b[k].dtype == v.dtype and b[k].shape == v.shape, k
        if v.dtype == np.float32:
            # int8 rows (fp16 scales): within one step of the row's scale; fp16: relative 1e-3
            tol = (
                np.abs(v).max(axis=1, keepdims=True) / 127 + 1e-6
                if k.endswith("word_embeddings.weight")
                else np.abs(v) * 1e-3 + 1e-4
            )
            assert np.all(np.abs(b[k] - v) <= tol), k
    names = {p.name for p in (tmp_path / "back").iterdir()}
    assert {"config.json", "tokenizer.json", "model.safetensors"} <= names
