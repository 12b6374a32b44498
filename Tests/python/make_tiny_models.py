#!/usr/bin/env python3
"""Tiny randomly initialised transformers models, saved as Hugging Face safetensors directories.

Every family distilld runs, built with transformers itself (fixed seeds, `.eval()`), so that
distilld's forward pass is checked against code no one here wrote:

  gpt2            GPT-2: learned positions, LayerNorm, gelu_new, Conv1D, tied head
  gpt2-untied     GPT-2 with its own lm_head
  llama-tied      Llama, grouped-query attention (4 heads, 2 key/value heads), tied head, linear RoPE scaling
  llama-llama3    Llama, untied head, rope_scaling llama3 (with frequencies in all three bands), θ = 10000
  qwen2           Qwen2: query/key/value biases, grouped-query attention, θ = 1e6
  mistral         Mistral: one key/value head, head_dim (24) ≠ hidden/heads, sliding window 16

transformers initialises biases to zero and norms to one, and its std 0.02 makes near-uniform
predictions; here every parameter is drawn afresh (norm weights around one, everything else
normal with a larger std) so that biases, norms and sharp distributions are all exercised.

Each model is saved in F32, F16 and BF16 (`<name>-f32`, `<name>-f16`, `<name>-bf16`); `gpt2` is
also saved sharded (`gpt2-sharded`, several files under model.safetensors.index.json) and with
the old unprefixed names of OpenAI's upload (`gpt2-unprefixed`).

usage: make_tiny_models.py OUTDIR [--only name,...]
"""
import argparse
import copy
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

VOCAB_SIZES = {"gpt2": 500, "gpt2-untied": 320, "llama-tied": 384, "llama-llama3": 640, "qwen2": 1000, "mistral": 300}


def configs():
    from transformers import GPT2Config, LlamaConfig, MistralConfig, Qwen2Config

    return {
        "gpt2": GPT2Config(
            n_embd=64, n_layer=2, n_head=4, vocab_size=VOCAB_SIZES["gpt2"], n_positions=128, bos_token_id=0, eos_token_id=1
        ),
        "gpt2-untied": GPT2Config(
            n_embd=48, n_layer=2, n_head=3, n_inner=80, vocab_size=VOCAB_SIZES["gpt2-untied"], n_positions=96,
            tie_word_embeddings=False, bos_token_id=0, eos_token_id=1,
        ),
        "llama-tied": LlamaConfig(
            hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=VOCAB_SIZES["llama-tied"], max_position_embeddings=128, tie_word_embeddings=True,
            rope_scaling={"rope_type": "linear", "factor": 2.0}, rope_theta=10000.0, rms_norm_eps=1e-5,
            bos_token_id=0, eos_token_id=1,
        ),
        "llama-llama3": LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            vocab_size=VOCAB_SIZES["llama-llama3"], max_position_embeddings=96, tie_word_embeddings=False,
            rope_theta=10000.0,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 32},
            bos_token_id=0, eos_token_id=1,
        ),
        "qwen2": Qwen2Config(
            hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=VOCAB_SIZES["qwen2"], max_position_embeddings=128, tie_word_embeddings=False, rope_theta=1e6,
            bos_token_id=0, eos_token_id=1,
        ),
        "mistral": MistralConfig(
            hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
            head_dim=24, vocab_size=VOCAB_SIZES["mistral"], max_position_embeddings=128, sliding_window=16,
            tie_word_embeddings=False, bos_token_id=0, eos_token_id=1,
        ),
    }


def build(name, config):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1000 + sorted(VOCAB_SIZES).index(name))
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname or ".ln_" in pname:
                if pname.endswith("weight"):
                    p.copy_(1 + 0.2 * torch.randn_like(p))
                else:
                    p.copy_(0.1 * torch.randn_like(p))
            elif "wpe" in pname or "embed" in pname or "wte" in pname:
                p.normal_(0, 0.5)
            elif pname.endswith("bias"):
                p.normal_(0, 0.2)
            else:
                p.normal_(0, 0.25)
    return model.eval()


def save(model, out, dtype, **kwargs):
    os.makedirs(out, exist_ok=True)
    # `Module.to` converts in place: convert a copy, so the float32 original stays exact.
    copy.deepcopy(model).to(dtype).save_pretrained(out, safe_serialization=True, **kwargs)


def unprefix(src, dst):
    """GPT-2 as OpenAI's upload names it: no `transformer.` prefix, no lm_head."""
    os.makedirs(dst, exist_ok=True)
    tensors = load_file(os.path.join(src, "model.safetensors"))
    renamed = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in tensors.items()
               if not k.startswith("lm_head.")}
    save_file(renamed, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def make(outdir, only=None):
    """Builds the models into outdir; returns {directory name: path}."""
    made = {}
    for name, config in configs().items():
        if only and name not in only:
            continue
        model = build(name, config)
        for suffix, dtype in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)):
            path = os.path.join(outdir, f"{name}-{suffix}")
            save(model, path, dtype)
            made[f"{name}-{suffix}"] = path
        if name == "gpt2":
            path = os.path.join(outdir, "gpt2-sharded")
            save(model, path, torch.float32, max_shard_size="60KB")
            made["gpt2-sharded"] = path
            path = os.path.join(outdir, "gpt2-unprefixed")
            unprefix(os.path.join(outdir, "gpt2-f32"), path)
            made["gpt2-unprefixed"] = path
    return made


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    made = make(args.outdir, [s for s in args.only.split(",") if s] or None)
    for k, v in made.items():
        print(k, v)
    sys.exit(0)
