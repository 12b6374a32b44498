#!/usr/bin/env python3
"""Writes fixture files for the DistillStore tests with the reference tools.

Usage: make_store_fixtures.py OUTDIR

Uses numpy (np.save, numpy.lib.format.write_array) and safetensors
(safetensors.numpy.save_file). numpy has no bfloat16 and safetensors' numpy API
cannot write BF16, so the BF16 file is written by hand in the safetensors
layout (8-byte little-endian header length, JSON header, bytes): the float32
values are chosen to be exact in bfloat16 and encoded as their top 16 bits.

Also writes OUTDIR/values.json with the expected numbers, so the Swift tests
compare what they read with what was written.
"""
import json
import os
import struct
import sys

import numpy as np
from numpy.lib import format as npformat
from safetensors.numpy import save_file


def main(out):
    os.makedirs(out, exist_ok=True)
    expected = {}
    rng = np.random.default_rng(7)

    def p(name):
        return os.path.join(out, name)

    # --- safetensors, dense float32 [N=3, T=2, V=5] with mask and metadata ---
    ids = ["ex-a", "ex-b", "ex-c"]
    vocab = ["<pad>", "the", "cat", "sat", "."]
    logits = rng.standard_normal((3, 2, 5)).astype(np.float32)
    logits[1, 1, 3] = -np.inf  # a masked vocabulary entry: allowed
    mask = np.array([[1, 1], [1, 0], [1, 1]], dtype=np.uint8)
    save_file({"logits": logits, "mask": mask}, p("dense_f32.safetensors"),
              metadata={"ids": json.dumps(ids), "vocab": json.dumps(vocab)})
    expected["dense_f32"] = {"shape": [3, 2, 5], "values": [None if np.isneginf(v) else float(v) for v in logits.ravel()],
                             "mask": mask.ravel().tolist(), "ids": ids, "vocab": vocab, "negInf": 1}

    # --- safetensors, dense float16 logprobs [3, 2, 5] with lengths (I64) ---
    lp = np.log(rng.dirichlet(np.ones(5), size=(3, 2))).astype(np.float16)
    lengths = np.array([2, 1, 0], dtype=np.int64)
    save_file({"logprobs": lp, "lengths": lengths}, p("dense_f16.safetensors"))
    expected["dense_f16"] = {"shape": [3, 2, 5], "values": [float(v) for v in lp.astype(np.float32).ravel()],
                             "mask": [1, 1, 1, 0, 0, 0]}

    # --- safetensors, dense float16 probs [N=4, V=3] (T = 1) ---
    pr = rng.dirichlet(np.ones(3), size=4).astype(np.float16)
    save_file({"probs": pr}, p("dense_nv_f16.safetensors"))
    expected["dense_nv_f16"] = {"shape": [4, 1, 3], "values": [float(v) for v in pr.astype(np.float32).ravel()]}

    # --- safetensors, dense bfloat16 logits [2, 3, 4], written by hand, BOOL mask ---
    bf = (rng.integers(-64, 64, size=(2, 3, 4)) / 8.0).astype(np.float32)  # exact in bf16
    bf_bits = (bf.view(np.uint32) >> 16).astype("<u2")
    bmask = np.array([[True, True, False], [True, False, False]])
    data_bf = bf_bits.tobytes()
    data_mask = bmask.astype(np.uint8).tobytes()
    header = {
        "logits": {"dtype": "BF16", "shape": [2, 3, 4], "data_offsets": [0, len(data_bf)]},
        "mask": {"dtype": "BOOL", "shape": [2, 3], "data_offsets": [len(data_bf), len(data_bf) + len(data_mask)]},
        "__metadata__": {"ids": json.dumps(["b0", "b1"])},
    }
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(p("dense_bf16.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + data_bf + data_mask)
    expected["dense_bf16"] = {"shape": [2, 3, 4], "values": bf.ravel().tolist(), "mask": bmask.astype(int).ravel().tolist(),
                              "ids": ["b0", "b1"]}

    # --- safetensors, top-k I32 [3, 2, 4] logprobs, vocab_size 10 ---
    V = 10
    idx32 = np.stack([[rng.permutation(V)[:4] for _ in range(2)] for _ in range(3)]).astype(np.int32)
    tv = np.sort(rng.standard_normal((3, 2, 4)).astype(np.float32), axis=-1)[..., ::-1].copy()
    save_file({"topk_indices": idx32, "topk_logprobs": tv}, p("topk_i32.safetensors"),
              metadata={"vocab_size": str(V), "ids": json.dumps(["t0", "t1", "t2"])})
    expected["topk_i32"] = {"shape": [3, 2, 4], "indices": idx32.ravel().tolist(), "values": tv.ravel().tolist(),
                            "vocab": V, "ids": ["t0", "t1", "t2"]}

    # --- safetensors, top-k I64 [N=3, K=2] probs, vocab_size 7 ---
    idx64 = np.array([[0, 6], [3, 2], [5, 1]], dtype=np.int64)
    tp = np.array([[0.5, 0.25], [0.75, 0.125], [0.5, 0.5]], dtype=np.float32)
    save_file({"topk_indices": idx64, "topk_probs": tp}, p("topk_i64.safetensors"), metadata={"vocab_size": "7"})
    expected["topk_i64"] = {"shape": [3, 1, 2], "indices": idx64.ravel().tolist(), "values": tp.ravel().tolist(), "vocab": 7}

    # --- .npy v1 (np.save) f4, v2 f2, v3 f8; top-k indices; mask; Fortran order ---
    a1 = rng.standard_normal((3, 2, 5)).astype(np.float32)
    np.save(p("v1_f4.npy"), a1)
    expected["v1_f4"] = {"shape": [3, 2, 5], "values": a1.ravel().tolist()}
    a2 = rng.standard_normal((2, 4)).astype(np.float16)
    with open(p("v2_f2.npy"), "wb") as f:
        npformat.write_array(f, a2, version=(2, 0))
    expected["v2_f2"] = {"shape": [2, 1, 4], "values": [float(v) for v in a2.astype(np.float32).ravel()]}
    a3 = rng.standard_normal((2, 3, 4)).astype(np.float64)
    with open(p("v3_f8.npy"), "wb") as f:
        npformat.write_array(f, a3, version=(3, 0))
    expected["v3_f8"] = {"shape": [2, 3, 4], "values": a3.astype(np.float32).ravel().tolist()}
    ti = np.array([[[1, 4], [0, 2]], [[3, 0], [2, 1]]], dtype=np.int32)
    tvals = np.array([[[0.5, -1.0], [2.0, 0.0]], [[1.5, 1.5], [-0.5, -2.0]]], dtype=np.float32)
    np.save(p("topk_values.npy"), tvals)
    np.save(p("topk_indices_i4.npy"), ti)
    np.save(p("topk_indices_i8.npy"), ti.astype(np.int64))
    np.save(p("mask_b1.npy"), np.array([[True, False], [True, True]]))
    np.save(p("mask_u1.npy"), np.array([[1, 0], [1, 1]], dtype=np.uint8))
    expected["npy_topk"] = {"shape": [2, 2, 2], "indices": ti.ravel().tolist(), "values": tvals.ravel().tolist(),
                            "mask": [1, 0, 1, 1]}
    np.save(p("fortran.npy"), np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32)))
    np.save(p("bigendian.npy"), rng.standard_normal((2, 3)).astype(">f4"))

    # --- teacher JSON Lines (dense, ragged positions) and top-k ---
    with open(p("teacher_dense.jsonl"), "w") as f:
        f.write(json.dumps({"id": "j0", "logits": [[0.5, 1.0, -1.0], [2.0, 0.0, "-Infinity"]]}) + "\n")
        f.write("\n")
        f.write(json.dumps({"id": "j1", "logits": [[1.5, -0.5, 0.25]]}) + "\n")
    expected["teacher_dense_jsonl"] = {"shape": [2, 2, 3], "values": [0.5, 1.0, -1.0, 2.0, 0.0, None, 1.5, -0.5, 0.25, 0, 0, 0],
                                       "mask": [1, 1, 1, 0], "ids": ["j0", "j1"]}
    with open(p("teacher_topk.jsonl"), "w") as f:
        f.write(json.dumps({"id": "k0", "topk_indices": [[3, 1]], "topk_values": [[-0.1, -2.5]], "kind": "logprobs"}) + "\n")
        f.write(json.dumps({"id": "k1", "topk_indices": [[0, 4]], "topk_values": [[-0.5, -1.0]], "kind": "logprobs"}) + "\n")
    expected["teacher_topk_jsonl"] = {"shape": [2, 1, 2], "indices": [3, 1, 0, 4], "values": [-0.1, -2.5, -0.5, -1.0]}

    # --- vocabularies ---
    bpe = {
        "version": "1.0",
        "added_tokens": [{"id": 5, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "he": 4, "hell": 7}, "merges": ["h e", "l l"]},
    }
    with open(p("tokenizer_bpe.json"), "w") as f:
        json.dump(bpe, f, indent=2)
    expected["tokenizer_bpe"] = ["h", "e", "l", "o", "he", "<|endoftext|>", "<id 6>", "hell"]
    uni = {"version": "1.0", "added_tokens": [],
           "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["▁the", -1.5], ["▁cat", -3.25]]}}
    with open(p("tokenizer_unigram.json"), "w") as f:
        json.dump(uni, f, ensure_ascii=False)
    expected["tokenizer_unigram"] = ["<unk>", "▁the", "▁cat"]
    with open(p("vocab.txt"), "w") as f:
        f.write("[PAD]\n[UNK]\nhello\nworld\n")
    expected["vocab_txt"] = ["[PAD]", "[UNK]", "hello", "world"]
    with open(p("vocab_list.json"), "w") as f:
        json.dump(["a", "b", "c"], f)
    expected["vocab_list"] = ["a", "b", "c"]

    # --- paired datasets ---
    rows = [
        {"id": "q1", "full": "Context: Paris is in France.\nQ: Where is Paris?", "simplified": "Where is Paris?",
         "target": "France", "label": 1},
        {"id": "q2", "full": "He said \"hi\", then left.", "simplified": "Did he leave?", "label": "yes"},
        {"id": "q3", "full": "Plain", "simplified": "plain"},
    ]
    with open(p("paired.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    import csv
    with open(p("paired.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "full", "simplified", "target", "label"])
        for r in rows:
            w.writerow([r["id"], r["full"], r["simplified"], r.get("target", ""), r.get("label", "")])
    expected["paired"] = {"ids": ["q1", "q2", "q3"], "full": [r["full"] for r in rows],
                          "simplified": [r["simplified"] for r in rows], "target": ["France", None, None],
                          "label": [1, "yes", None], "jsonl_lines": [1, 2, 3], "csv_lines": [2, 4, 5]}
    with open(p("paired_fields.jsonl"), "w") as f:
        f.write(json.dumps({"context": "long context one", "query": "q one"}) + "\n")
        f.write(json.dumps({"context": "long context two", "query": "q two"}) + "\n")

    # --- input lists ---
    with open(p("inputs.txt"), "w") as f:
        f.write("first input\n\nsecond input\n")
    with open(p("inputs.jsonl"), "w") as f:
        f.write(json.dumps({"prompt": "p1"}) + "\n" + json.dumps({"prompt": "p2"}) + "\n")
    with open(p("inputs.json"), "w") as f:
        f.write('[\n  "alpha",\n  "beta, with comma",\n\n  "gamma [x]"\n]\n')
    expected["inputs"] = {"txt": ["first input", "second input"], "txt_lines": [1, 3], "jsonl": ["p1", "p2"],
                          "json": ["alpha", "beta, with comma", "gamma [x]"], "json_lines": [2, 3, 5]}

    with open(p("values.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_store_fixtures.py OUTDIR")
    main(sys.argv[1])
