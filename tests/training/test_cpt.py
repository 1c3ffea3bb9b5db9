"""CPT: prompt tokens are masked with -100, only the clicked result is learned."""

from __future__ import annotations

import json

import torch
from ranker_training.config import CPTConfig, DataSource, TrainConfig
from ranker_training.cpt import IGNORE, CPTExamples, clicked_pairs, train_cpt
from ranker_training.data import Group


def test_prompt_and_padding_are_masked(causal_tokenizer):
    cfg = CPTConfig(model="x", max_length=64, query_max_tokens=16)
    ex = CPTExamples(causal_tokenizer, cfg)
    prompt = ex.prompt.encode("who wrote hamlet")
    ids, labels = ex.encode("who wrote hamlet", {"title": "Hamlet", "text": "A tragedy by Shakespeare."})
    assert ids[: len(prompt)] == prompt
    assert labels[: len(prompt)] == [IGNORE] * len(prompt)
    target = ids[len(prompt) :]
    assert labels[len(prompt) :] == target and IGNORE not in target
    assert target[-1] == causal_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert causal_tokenizer.decode(target[:-1]).strip() == "Hamlet | A tragedy by Shakespeare."
    short = ex.encode("bm25", "Okapi")
    batch = ex.collate([(ids, labels), short])
    assert batch["labels"].shape == batch["input_ids"].shape
    n = len(short[0])
    assert (batch["labels"][1, n:] == IGNORE).all() and (batch["attention_mask"][1, n:] == 0).all()
    # a long doc is cut so that the example fits and still ends with the end token
    ids, labels = ex.encode("q", "word " * 500)
    assert len(ids) == 64 and ids[-1] == ex.end_id


def test_loss_counts_target_tokens_only(tiny_llama_dir, causal_tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    ex = CPTExamples(causal_tokenizer, CPTConfig(model="x", max_length=64, query_max_tokens=16))
    a = ex.collate([ex.encode("who wrote hamlet", "William Shakespeare")])
    b = ex.collate([ex.encode("a completely different and longer query", "William Shakespeare")])
    with torch.no_grad():
        la, lb = model(**a).loss, model(**b).loss
        logits = model(input_ids=a["input_ids"]).logits[0, :-1]
    tgt = a["labels"][0, 1:]
    keep = tgt != IGNORE
    manual = torch.nn.functional.cross_entropy(logits[keep], tgt[keep])
    torch.testing.assert_close(la, manual)
    assert keep.sum() == len(causal_tokenizer(" William Shakespeare", add_special_tokens=False)["input_ids"]) + 1
    assert la != lb  # same target, different context: the prompt conditions but is not learned


def test_clicked_pairs_keep_only_positive_labels():
    g = Group("q", "query", ("a", "b", "c"), ({"text": "A"}, {"text": "B"}, {"text": "C"}), (1, 0, None))
    assert clicked_pairs([g]) == [("query", {"text": "A"})]


def test_train_cpt_saves_a_causal_lm_that_learned(tiny_llama_dir, tmp_path):
    log = tmp_path / "clicks.jsonl"
    log.write_text(
        "".join(
            json.dumps({"query": f"q{i}", "title": "T", "summary": "the same clicked answer", "label": 1}) + "\n"
            for i in range(6)
        ),
        encoding="utf-8",
    )
    cfg = CPTConfig(
        model=str(tiny_llama_dir),
        data=(DataSource(str(log)),),
        max_length=48,
        query_max_tokens=8,
        train=TrainConfig(lr=1e-2, batch_size=3, max_steps=12, warmup_ratio=0.0, log_every=0),
    )
    out = train_cpt(cfg, tmp_path / "cpt")
    state = json.loads((out / "train_state.json").read_text())
    assert state["done"] and state["losses"][-1] < state["losses"][0]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not any(p.suffix in (".bin", ".pt") for p in out.iterdir())
