#!/usr/bin/env python3
"""Teacher-forced scoring of a dataset of text pairs (issue #13), distilld next to PyTorch.

SmolLM2-135M-Instruct (the Q4_1 GGUF of `make models`, dequantised to float32 by both sides) is
the teacher and the student. A generated dataset of --pairs examples (seeded): a full context of
about 160 tokens, a simplified one of about 20 (its last sentence), and a target of about 40, so
that the teacher reads about 200 tokens a pair (the issue's size; the figures printed say how many
exactly). The teacher reads full + "\\n" + target, the student simplified + "\\n" + target, and
the forward KL is taken at every target token, averaged over all of them.

  - distilld: `distill/score` with {"model": "smol"} on both sides and the dataset, through the
    daemon (DISTILLD, or .build/release/distilld), DISTILLD_BLAS_THREADS = --threads;
  - PyTorch: the script a user would otherwise write: transformers on the same GGUF file,
    torch.set_num_threads(--threads), inference_mode, batches of --batch examples padded on the
    right with an attention mask, log_softmax in float32 at the target rows, the KL summed.

Both compute the same number (printed side by side); the figure is examples per second, best of
--repeat, the two alternating so that a busy machine slows both alike. The issue's target: at
least 1.2× PyTorch's examples per second on 256 pairs (`make bench` runs that size).

Then export throughput: `teacher/export` of the teacher's top-20 at every target token of the same
pairs (the teacher reading the full contexts) to a safetensors file in a temporary directory,
in target tokens per second (wall clock through the client, and as the daemon reports it).
Nothing is asserted.

usage: bench_text_scoring.py [--pairs 256] [--threads N] [--batch 8] [--repeat 2] [--k 20]
"""
import argparse
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
SMOLLM2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(
    ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

WORDS = ("the a of to and in that it was for on are as with his they at be this from have or by one had not "
         "but what all were when we there can an your which their said if do will each about how up out them "
         "then she many some so these would other into has more her two like him see time could no make than "
         "first been its who now people my made over did down only way find use may water long little very "
         "after words called just where most know get through back much before go good new write our used me "
         "man too any day same right look think also around another came come work three word must because "
         "does part even place well such here take why things help put years different away again off went "
         "old number great tell men say small every found still between name should home big give air line "
         "set own under read last never us left end along while might next sound below saw something thought "
         "both few those always looked show large often together asked house world going want school important "
         "until form food keep children feet land side without boy once animals life enough took sometimes four "
         "head above kind began almost live page got earth need far hand high year mother light parts country "
         "father let night following picture being study second eyes soon times story boys since white days "
         "ever paper hard near sentence better best across during today others sure means knew its try told "
         "young miles sun ways thing whole hear example heard several change answer room sea against top turned "
         "learn point city play toward five using himself usually").split()


def sentence(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def make_pairs(count, seed=13):
    rng = random.Random(seed)
    pairs = []
    for i in range(count):
        sentences = [sentence(rng, rng.randint(12, 20)) for _ in range(9)]
        full = " ".join(sentences)
        pairs.append({"id": f"p{i}", "full": full, "simplified": sentences[-1],
                      "target": " ".join(sentence(rng, rng.randint(16, 22)) for _ in range(2))})
    return pairs


def run_distilld(client, repeat):
    best, loss = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.call("distill/score", {
            "teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}, "dataset": "bench",
            "loss": {"name": "forward_kl"}, "perExample": False, "worst": 0})
        best = min(best, time.perf_counter() - t0)
        loss, read = r["students"][0]["loss"], r["prompt"]
    return best, loss, read


def run_export(client, k, directory):
    """teacher/export of the same pairs at top-k: wall seconds and the daemon's reply."""
    path = os.path.join(directory, "bench-targets.safetensors")
    t0 = time.perf_counter()
    r = client.call("teacher/export", {"model": "smol", "dataset": "bench", "path": path, "k": k, "overwrite": True})
    return time.perf_counter() - t0, r


def run_pytorch(torch, tokenizer, model, pairs, batch, repeat):
    def encode(context, target):
        ctx = tokenizer(context + "\n")["input_ids"]
        tgt = tokenizer(target, add_special_tokens=False)["input_ids"]
        return ctx, tgt

    teacher = [encode(p["full"], p["target"]) for p in pairs]
    student = [encode(p["simplified"], p["target"]) for p in pairs]

    def target_logprobs(encoded):
        out = []
        for b in range(0, len(encoded), batch):
            chunk = encoded[b:b + batch]
            seqs = [ctx + tgt[:-1] for ctx, tgt in chunk]
            width = max(len(s) for s in seqs)
            ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs])
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
            logits = model(input_ids=ids, attention_mask=mask).logits
            for k, (ctx, tgt) in enumerate(chunk):
                rows = logits[k, len(ctx) - 1:len(ctx) - 1 + len(tgt)]
                out.append(torch.log_softmax(rows.float(), dim=-1))
        return out

    best, loss = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        with torch.inference_mode():
            lp_t = target_logprobs(teacher)
            lp_s = target_logprobs(student)
            total, count = 0.0, 0
            for a, b in zip(lp_t, lp_s):
                total += float((a.exp() * (a - b)).sum())
                count += a.shape[0]
        best = min(best, time.perf_counter() - t0)
        loss = total / count
    return best, loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--k", type=int, default=20, help="top-k of the export")
    args = ap.parse_args()
    if not os.path.exists(SMOLLM2):
        sys.exit(f"{SMOLLM2} not found; run `make models`")

    import torch
    import transformers
    from distilld import Client

    torch.set_num_threads(args.threads)
    directory, name = os.path.dirname(SMOLLM2), os.path.basename(SMOLLM2)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32).eval()

    daemon = os.environ.get("DISTILLD") or os.path.join(ROOT, ".build", "release", "distilld")
    os.environ["DISTILLD_BLAS_THREADS"] = str(args.threads)  # the daemon inherits it
    pairs = make_pairs(args.pairs)
    with Client.start(daemon) as client:
        client.call("model/load", {"name": "smol", "path": SMOLLM2})
        client.call("dataset/load", {"name": "bench", "examples": pairs})
        d_best = p_best = float("inf")
        for _ in range(2):
            d, d_loss, read = run_distilld(client, args.repeat)
            p, p_loss = run_pytorch(torch, tokenizer, model, pairs, args.batch, args.repeat)
            d_best, p_best = min(d_best, d), min(p_best, p)
        with tempfile.TemporaryDirectory(prefix="distilld-bench-export-") as directory:
            e_wall, export = run_export(client, args.k, directory)
    tokens = read["targetTokens"]
    teacher_read = (read["contextTokens"]["teacher"] + tokens) / args.pairs
    student_read = (read["contextTokens"]["students"]["S"] + tokens) / args.pairs
    print(f"teacher-forced scoring, SmolLM2-135M as teacher and student, {args.pairs} pairs, "
          f"{tokens} target tokens, {args.threads} thread(s)")
    print(f"  tokens a pair: the teacher reads {teacher_read:.0f} (full context and target), "
          f"the student {student_read:.0f}")
    print(f"  forward KL: distilld {d_loss:.6f}, PyTorch {p_loss:.6f}")
    print(f"  distilld  {args.pairs / d_best:8.2f} examples/s  ({d_best:.2f} s)")
    print(f"  PyTorch   {args.pairs / p_best:8.2f} examples/s  ({p_best:.2f} s, batches of {args.batch})")
    print(f"  ratio     {p_best / d_best:8.2f}×  (target ≥ 1.2×)")
    print(f"teacher/export, top-{export['k']} at every target token of the same pairs (teacher on the full contexts)")
    print(f"  {export['targetTokens'] / e_wall:8.0f} target tokens/s  ({e_wall:.2f} s wall; the daemon reports "
          f"{export['tokensPerSecond']:.0f}/s over {export['seconds']:.2f} s), {export['bytes'] / 1e6:.1f} MB written")


if __name__ == "__main__":
    main()
