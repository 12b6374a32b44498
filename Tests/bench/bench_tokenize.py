"""Tokenizer throughput (a benchmark, not a test: it prints figures, asserts nothing).

Encodes ~1 MB of mixed text (English, code, numbers, accents, Greek, Cyrillic, CJK, Arabic, Hindi, emoji:
the corpus of Tests/python/make_tokenizer_fixtures.py) with distill-tokenize and with the `tokenizers`
package (one `encode` call on the whole text each, best of 3), for the trained fixture tokenizers and, when
`make models` has fetched it (or DISTILLD_SMOLLM2_GGUF names it), SmolLM2-135M's GGUF tokenizer
(transformers' rebuild of it for the reference).
Token counts are printed side by side: they must agree.

Usage: python3 Tests/bench/bench_tokenize.py   (DISTILL_TOKENIZE=.build/release/distill-tokenize by default)
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import dump_gguf_tokenizer  # noqa: E402
import make_tokenizer_fixtures  # noqa: E402

BIN = os.environ.get("DISTILL_TOKENIZE") or os.path.join(HERE, "..", "..", ".build", "release", "distill-tokenize")


def ours(load, text_path):
    proc = subprocess.Popen([BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def request(obj):
        proc.stdin.write(json.dumps(obj) + "\n")
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    request(load)
    reply = request({"bench": text_path, "runs": 3})
    proc.stdin.close()
    proc.wait()
    return reply["tokens"], reply["seconds"]


def theirs(tokenizer, text):
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        count = len(tokenizer.encode(text, add_special_tokens=False).ids)
        best = min(best, time.perf_counter() - start)
    return count, best


def main():
    from tokenizers import Tokenizer
    work = tempfile.mkdtemp(prefix="bench-tokenize-")
    rng = random.Random(1)
    lines = make_tokenizer_fixtures.corpus(20000, seed=3)
    parts, size = [], 0
    while size < 1_000_000:
        line = rng.choice(lines)
        parts.append(line)
        size += len(line.encode()) + 1
    text = "\n".join(parts)
    text_path = os.path.join(work, "text.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text)
    paths = make_tokenizer_fixtures.build(work)
    cases = [(name, {"load": paths[name]}, Tokenizer.from_file(paths[name])) for name in ("gpt2", "llama3", "qwen2", "spm")]
    smollm2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(
        HERE, "..", "..", ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.exists(smollm2):
        os.environ["HF_HUB_OFFLINE"] = "1"
        from transformers import AutoTokenizer
        dump = os.path.join(work, "smollm2.json")
        with open(dump, "w", encoding="utf-8") as f:
            json.dump(dump_gguf_tokenizer.tokenizer_metadata(smollm2), f, ensure_ascii=False)
        reference = AutoTokenizer.from_pretrained(os.path.dirname(smollm2), gguf_file=os.path.basename(smollm2))
        cases.append(("smollm2", {"loadGGUF": dump}, reference.backend_tokenizer))
    print(f"{len(text.encode()):,} bytes of mixed text; best of 3 single-text encodes")
    print(f"{'tokenizer':10s} {'tokens':>9s} {'distill M tok/s':>16s} {'tokenizers M tok/s':>19s} {'ratio':>6s}")
    for name, load, reference in cases:
        count, seconds = ours(load, text_path)
        ref_count, ref_seconds = theirs(reference, text)
        note = "" if count == ref_count else f"  (tokenizers: {ref_count} tokens)"
        print(f"{name:10s} {count:9d} {count / seconds / 1e6:16.2f} {ref_count / ref_seconds / 1e6:19.2f} "
              f"{ref_seconds / seconds:5.1f}x{note}")


if __name__ == "__main__":
    main()
