#!/usr/bin/env python3
"""Model benchmark: distilld's transformer forward pass next to PyTorch CPU, in one run.

On a GPT-2-small-shaped model with random weights (768 hidden, 12 layers, 12 heads, vocab 50257,
built with transformers and saved as F32 safetensors in a temporary directory), and on
SmolLM2-135M-Instruct (the Q4_1 GGUF of `make models`, which both sides dequantise to float32):

  - teacher-forced forward pass over 512 tokens, log-softmax included (the pass every
    distillation analysis needs): tokens per second, best of --repeat;
  - generation with the KV cache: a 16-token prompt, then --generate greedy steps, tokens per
    second of the steps, best of --repeat;
  - the machine's sgemm rate (a 2048² OpenBLAS sgemm, same thread count) and the share of it the
    forward pass reaches (2 × multiply–adds of the linear layers, the head and causal attention).

distilld runs through `distill-model-check bench` (path from DISTILL_MODEL_CHECK, or next to
DISTILLD, or .build/release); PyTorch runs in this process with torch.set_num_threads equal to
distilld's OpenBLAS thread count, transformers' default (SDPA) attention, torch.inference_mode,
the same token ids. Each thread count is measured (default 1 and the core count), and distilld
and PyTorch alternate --rounds times so that a busy machine slows both alike. Generation in PyTorch is a plain loop over model(...) with past_key_values
(no `generate()` overhead), so the comparison is against PyTorch's fastest ordinary path.

Targets from issue #12: forward ≥ 1.2× PyTorch, generation ≥ 1.5×. Nothing is asserted.

usage: bench_models.py [--threads 1,2] [--length 512] [--generate 64] [--repeat 2] [--rounds 2] [--json out.jsonl]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SMOLLM2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(
    ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def checker_path():
    path = os.environ.get("DISTILL_MODEL_CHECK")
    if path:
        return path
    daemon = os.environ.get("DISTILLD")
    base = os.path.dirname(daemon) if daemon else os.path.join(ROOT, ".build", "release")
    return os.path.join(base, "distill-model-check")


def build_gpt2_small(directory):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(directory, safe_serialization=True)
    return model


def torch_forward(model, tokens, repeat):
    import torch

    ids = torch.tensor([tokens])
    best = float("inf")
    with torch.inference_mode():
        torch.log_softmax(model(ids[:, :16]).logits, -1)
        for _ in range(repeat):
            t0 = time.perf_counter()
            torch.log_softmax(model(ids).logits, -1)
            best = min(best, time.perf_counter() - t0)
    return best


def step(model, ids, cache):
    """One cached forward call, under the keyword this transformers version takes (`cache` in 5.x,
    `past_key_values` before)."""
    if cache is None:
        out = model(ids, use_cache=True)
    else:
        try:
            out = model(input_ids=ids, cache=cache, use_cache=True)
        except TypeError:
            out = model(input_ids=ids, past_key_values=cache, use_cache=True)
    return out, getattr(out, "cache", None) or getattr(out, "past_key_values", None)


def torch_generate(model, prompt, steps, repeat):
    import torch

    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeat):
            out, cache = step(model, torch.tensor([prompt]), None)
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for _ in range(steps):
                out, cache = step(model, nxt, cache)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            best = min(best, time.perf_counter() - t0)
    return best


def compare(checker, label, path, model, vocab, threads, args):
    """Alternating rounds of distilld (a subprocess on `path`) and PyTorch (`model`) at `threads`."""
    import torch

    tokens = [(i * 7919 + 13) % vocab for i in range(args.length)]
    ours, theirs = None, {"forwardTokensPerSecond": 0.0, "generateTokensPerSecond": 0.0}
    pairs = {"forwardTokensPerSecond": [], "generateTokensPerSecond": []}
    for _ in range(args.rounds):
        p = subprocess.run([checker, "bench", path, "--length", str(args.length), "--generate", str(args.generate),
                            "--repeat", str(args.repeat), "--threads", str(threads)], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"distill-model-check failed: {p.stderr}")
        run = json.loads(p.stdout.strip().splitlines()[-1])
        if ours is None:
            ours = run
        else:
            for key in ("forwardTokensPerSecond", "forwardGflops", "generateTokensPerSecond", "sgemmGflops"):
                ours[key] = max(ours[key], run[key])
        torch.set_num_threads(ours["blasThreads"])
        f = torch_forward(model, tokens, args.repeat)
        g = torch_generate(model, tokens[:16], args.generate, args.repeat)
        theirs["forwardTokensPerSecond"] = max(theirs["forwardTokensPerSecond"], args.length / f)
        theirs["generateTokensPerSecond"] = max(theirs["generateTokensPerSecond"], args.generate / g)
        pairs["forwardTokensPerSecond"].append(run["forwardTokensPerSecond"] / (args.length / f))
        pairs["generateTokensPerSecond"].append(run["generateTokensPerSecond"] / (args.generate / g))

    def row(what, key, target):
        a, b = ours[key], theirs[key]
        ratios = sorted(pairs[key])
        median = ratios[len(ratios) // 2]
        verdict = ("meets" if a / b >= target else "below") + f" the {target}× target"
        print(f"    {what:<42} {a:9.1f} {b:9.1f}   {a / b:5.2f}×   {median:5.2f}×   {verdict}")

    print(f"  {label}, {threads} thread(s) (OpenBLAS {ours['blasCore']}; torch.set_num_threads({ours['blasThreads']}))")
    print(f"    {'tokens/s (best of the rounds)':<42} {'distilld':>9} {'PyTorch':>9}   ratio   median ratio of the rounds")
    row(f"forward pass, {args.length} tokens (+log-softmax)", "forwardTokensPerSecond", 1.2)
    row(f"generation, KV cache ({args.generate} steps)", "generateTokensPerSecond", 1.5)
    share = ours["forwardGflops"] / ours["sgemmGflops"]
    print(f"    sgemm 2048²: {ours['sgemmGflops']:.1f} GFLOP/s; the forward pass {ours['forwardGflops']:.1f} GFLOP/s "
          f"= {100 * share:.0f}% of it")
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps({"bench": "models", "model": label, "threads": threads, "distilld": ours,
                                 "torch": theirs, "roundRatios": pairs}) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}", help="thread counts to run, comma-separated")
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--generate", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per round (the best is kept)")
    ap.add_argument("--rounds", type=int, default=5, help="distilld and PyTorch alternate this many times")
    ap.add_argument("--smollm2", default=SMOLLM2, help="SmolLM2 GGUF file (`make models`); skipped when absent")
    ap.add_argument("--json")
    args = ap.parse_args()
    thread_counts = sorted({int(t) for t in args.threads.split(",") if t})

    checker = checker_path()
    if not os.path.exists(checker):
        sys.exit(f"distill-model-check not found at {checker}; run `make release` first")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: the model benchmark needs it (to build the model and to compare)")
        return

    print(f"model benchmark: {args.rounds} alternating rounds of {args.repeat} runs each, best kept")
    tmp = tempfile.mkdtemp(prefix="distill-bench-models-")
    try:
        directory = os.path.join(tmp, "gpt2-small")
        model = build_gpt2_small(directory)
        model.config._attn_implementation = "sdpa"
        for threads in thread_counts:
            compare(checker, "GPT-2-small shape (768 hidden, 12 layers, vocab 50257), random F32", directory, model,
                    50257, threads, args)
        del model
        if os.path.exists(args.smollm2):
            os.environ["HF_HUB_OFFLINE"] = "1"
            from transformers import AutoModelForCausalLM

            smol = AutoModelForCausalLM.from_pretrained(
                os.path.dirname(args.smollm2), gguf_file=os.path.basename(args.smollm2), dtype=torch.float32).eval()
            for threads in thread_counts:
                compare(checker, "SmolLM2-135M (Q4_1 GGUF, dequantised to F32 by both)", args.smollm2, smol,
                        smol.config.vocab_size, threads, args)
        else:
            print(f"  SmolLM2: {args.smollm2} not found (`make models`), skipped")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
