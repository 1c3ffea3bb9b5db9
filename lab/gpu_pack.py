"""Pack a BERT checkpoint folder small enough to travel to and from a lent GPU machine.

The device tool moves at most 64 MiB a call and 16 MiB a returned file. ``pack`` writes the
folder's ``model.safetensors`` with the word-embedding table as int8 rows plus one fp16 scale a
row (what the INT8 package stores anyway) and every other float tensor as fp16, into parts of at
most 15 MiB; the small files (config, tokenizer, head, student metadata) go into one tar.
``unpack`` rebuilds an fp32 folder. Only safetensors and JSON/text: no pickle.

    python -m lab.gpu_pack pack   CKPT_DIR  OUT_DIR PREFIX
    python -m lab.gpu_pack unpack IN_DIR PREFIX  CKPT_DIR
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

PART = 15 * 1024 * 1024
EMB = "embeddings.word_embeddings.weight"


def pack(src: Path, out: Path, prefix: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(src / "model.safetensors"))
    packed = {}
    for k, v in tensors.items():
        if k.endswith(EMB):
            amax = np.abs(v).max(axis=1, keepdims=True)
            scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
            packed[k + ".int8"] = np.clip(np.rint(v / scale), -127, 127).astype(np.int8)
            packed[k + ".scale"] = scale.astype(np.float16)
        elif v.dtype == np.float32:
            packed[k] = v.astype(np.float16)
        else:
            packed[k] = v
    tmp = out / f"{prefix}.safetensors"
    save_file(packed, str(tmp))
    data = tmp.read_bytes()
    tmp.unlink()
    for i in range(0, len(data), PART):
        (out / f"{prefix}.part{i // PART}").write_bytes(data[i : i + PART])
    with tarfile.open(out / f"{prefix}.files.tar", "w") as t:
        for f in sorted(src.iterdir()):
            if f.is_file() and f.name != "model.safetensors" and f.suffix in (".json", ".txt", ".safetensors", ".yaml"):
                t.add(f, arcname=f.name)


def unpack(src: Path, prefix: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    parts = sorted(src.glob(f"{prefix}.part*"), key=lambda p: int(p.suffix[5:]))
    tmp = out / "packed.safetensors"
    tmp.write_bytes(b"".join(p.read_bytes() for p in parts))
    packed = load_file(str(tmp))
    tmp.unlink()
    tensors = {}
    for k, v in packed.items():
        if k.endswith(EMB + ".int8"):
            base = k[: -len(".int8")]
            tensors[base] = v.astype(np.float32) * packed[base + ".scale"].astype(np.float32)
        elif k.endswith(EMB + ".scale"):
            continue
        else:
            tensors[k] = v.astype(np.float32) if v.dtype == np.float16 else v
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    with tarfile.open(src / f"{prefix}.files.tar") as t:
        t.extractall(out, filter="data")


if __name__ == "__main__":
    cmd, a, b, c = sys.argv[1:5]
    if cmd == "pack":
        pack(Path(a), Path(b), c)
    else:
        unpack(Path(a), b, Path(c))
