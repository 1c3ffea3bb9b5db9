"""The teacher: final-token pooling, padding invariance, end token, save/load, training."""

from __future__ import annotations

import json

import pytest
import torch
from ranker_training.config import DataSource, GroupConfig, LoraSettings, TeacherConfig, TrainConfig
from ranker_training.teacher import Teacher, collate, last_token_index

PAIRS = [
    ("who wrote hamlet", {"title": "Hamlet", "text": "Hamlet is a tragedy written by William Shakespeare."}),
    ("how tall is the eiffel tower", "The tower is 330 metres tall, about the same height as an 81-storey building."),
    ("bm25", {"title": "", "text": "BM25 ranks documents."}),
    (
        "what causes rain",
        "Rain is liquid water in the form of droplets that have condensed from atmospheric water "
        "vapor and then become heavy enough to fall under gravity. " * 3,
    ),
]


def _cfg(model_dir, **kw) -> TeacherConfig:
    base = dict(
        model=str(model_dir),
        lora=LoraSettings(enabled=False),
        max_length=96,
        query_max_tokens=16,
        end_token="<|im_end|>",
    )
    base.update(kw)
    return TeacherConfig(**base)


def test_last_token_index_left_and_right():
    m = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(m).tolist() == [2, 4, 4]


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_score_ignores_padding_side_and_batch(family, tiny_llama_dir, tiny_qwen2_dir):
    torch.manual_seed(0)
    teacher = Teacher.build(_cfg(tiny_llama_dir if family == "llama" else tiny_qwen2_dir)).eval()
    rows = [teacher.encode(q, d) for q, d in PAIRS]
    assert len({len(r) for r in rows}) == len(rows), "the pairs must have different lengths to test padding"
    with torch.no_grad():
        alone = torch.cat([teacher(**collate([r], teacher.pad_id)) for r in rows])
        right = teacher(**collate(rows, teacher.pad_id, "right"))
        left = teacher(**collate(rows, teacher.pad_id, "left"))
        other = teacher(**collate([rows[3], rows[0]], teacher.pad_id, "left"))  # different batch-mates
    assert alone.std() > 1e-4, "a random head should give distinct scores"
    torch.testing.assert_close(right, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(other, alone[[3, 0]], atol=1e-5, rtol=1e-4)


def test_every_input_ends_with_the_end_token_within_max_length(tiny_llama_dir, causal_tokenizer):
    teacher = Teacher.build(_cfg(tiny_llama_dir))
    end = causal_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert teacher.encoder.end_id == end != causal_tokenizer.pad_token_id
    for q, d in PAIRS + [("q " * 100, "long doc " * 500)]:
        ids = teacher.encode(q, d)
        assert ids[-1] == end and ids.count(end) == 1
        assert len(ids) <= 96
    # the query keeps at most query_max_tokens tokens, so a long query leaves room for the doc
    long_q = teacher.encode("q " * 100, "the answer")
    assert causal_tokenizer.decode(long_q).count("answer") == 1


def test_unknown_end_token_is_refused(tiny_llama_dir):
    from ranker_training.config import ConfigError

    with pytest.raises(ConfigError, match="end_token"):
        Teacher.build(_cfg(tiny_llama_dir, end_token="<|not_a_token|>"))


def test_save_merges_lora_and_load_gives_the_same_scores(tiny_llama_dir, tmp_path):
    torch.manual_seed(0)
    teacher = Teacher.build(_cfg(tiny_llama_dir, lora=LoraSettings(r=4, alpha=8, dropout=0.0))).eval()
    with torch.no_grad():  # LoRA's B starts at zero: move it so that merging matters
        for n, p in teacher.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.5)
    batch = collate([teacher.encode(q, d) for q, d in PAIRS], teacher.pad_id)
    with torch.no_grad():
        before = teacher(**batch)
    teacher.save(tmp_path / "t")
    files = {p.name for p in (tmp_path / "t").iterdir()}
    assert {"model.safetensors", "head.safetensors", "teacher.json", "tokenizer.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl", ".pth"))]
    assert json.loads((tmp_path / "t" / "teacher.json").read_text())["end_token"] == "<|im_end|>"
    loaded = Teacher.load(tmp_path / "t")
    assert not any("lora" in n for n, _ in loaded.named_parameters())
    with torch.no_grad():
        after = loaded(**batch)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)
    scores = loaded.score_pairs(PAIRS, batch_size=3)
    torch.testing.assert_close(torch.from_numpy(scores), before, atol=1e-5, rtol=1e-4)


def write_separable_clicklog(path, n_queries: int = 8) -> None:
    """Queries whose clicked result says 'relevant answer', the others filler text."""
    rows = []
    for q in range(n_queries):
        query = f"question number {q} about topic {q % 3}"
        rows.append({"query": query, "title": "Answer", "summary": "the relevant answer to the question", "clicks": 2})
        for k in range(3):
            rows.append(
                {"query": query, "title": "Other", "summary": f"unrelated filler text {k} of page", "clicks": 0}
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["pairwise", "listwise"])
def test_training_reduces_the_rank_loss(loss, tiny_llama_dir, tmp_path):
    from ranker_training.teacher import train_teacher

    log = tmp_path / "clicks.jsonl"
    write_separable_clicklog(log)
    cfg = _cfg(
        tiny_llama_dir,
        loss=loss,
        lora=LoraSettings(r=8, alpha=16, dropout=0.0),
        data=(DataSource(str(log)),),
        group=GroupConfig(size=4),
        train=TrainConfig(lr=5e-3, batch_size=4, max_steps=30, warmup_ratio=0.0, log_every=0),
    )
    out = train_teacher(cfg, tmp_path / "teacher")
    losses = json.loads((out / "train_state.json").read_text())["losses"]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses
    t = Teacher.load(out)
    s = t.score_pairs(
        [
            ("question number 3 about topic 0", "the relevant answer to the question"),
            ("question number 3 about topic 0", "unrelated filler text 1 of page"),
        ]
    )
    assert s[0] > s[1]
