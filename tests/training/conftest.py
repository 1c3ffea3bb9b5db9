"""Fixtures of the training tests: a tiny causal-LM tokenizer and tiny random Llama / Qwen2 checkpoints.

Everything is built here from real passages (no hub): a byte-level BPE trained on a few
hundred wikiqa/trec sentences, wrapped with an explicit pad and end token, and random 2-layer
decoder LMs saved as local HF folders (safetensors), built once per session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ranker_sdk.encoding import TITLE_SEPARATOR

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

END = "<|im_end|>"


def _passages(data_dir: Path, n: int = 400) -> list[str]:
    out = []
    for name in ("wikiqa", "trec-rag24"):
        with open(data_dir / name / "corpus.jsonl", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                out.append((d.get("title") or "") + TITLE_SEPARATOR + d["text"])
                if len(out) >= n * (1 + (name == "trec-rag24")):
                    break
    with open(data_dir / "wikiqa" / "queries.jsonl", encoding="utf-8") as fh:
        out += [json.loads(line)["text"] for line in fh][:500]
    return out


@pytest.fixture(scope="session")
def causal_tokenizer(data_dir):
    """A byte-level BPE (vocab 600) with ``<pad>`` and the end token ``<|im_end|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<pad>", END], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_passages(data_dir), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token=END, model_max_length=512)


def _save_lm(out: Path, config, tokenizer) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def _tiny_causal(tokenizer) -> dict:
    """The size of every tiny causal LM here: 2 layers, 32 wide, grouped-query attention."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "pad_token_id": tokenizer.pad_token_id,
    }


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, causal_tokenizer) -> Path:
    from transformers import LlamaConfig

    cfg = LlamaConfig(**_tiny_causal(causal_tokenizer), tie_word_embeddings=False)
    return _save_lm(tmp_path_factory.mktemp("tiny_llama"), cfg, causal_tokenizer)


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory, causal_tokenizer) -> Path:
    from transformers import Qwen2Config

    cfg = Qwen2Config(**_tiny_causal(causal_tokenizer), tie_word_embeddings=True)
    return _save_lm(tmp_path_factory.mktemp("tiny_qwen2"), cfg, causal_tokenizer)


@pytest.fixture(scope="session")
def wikiqa(data_dir) -> Path:
    return data_dir / "wikiqa"
