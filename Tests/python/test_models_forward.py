"""distilld's transformer forward pass against transformers, on tiny random models of every family.

The models are built at test time by make_tiny_models.py (transformers, fixed seeds, `.eval()`)
and saved as safetensors in F32, F16 and BF16. `distill-model-check` (built next to distilld)
runs each directory on token ids and writes the log-softmax as .npy; the reference is transformers
on the same directory loaded in float32 (so F16/BF16 weights are upcast, as distilld does), eager
attention, its float32 logits log-softmaxed in float64.

Checked: log-probabilities within 1e-4 and identical argmax at every position; several sequences
in one batched pass equal to one at a time; KV-cache decoding equal to the full pass; and the
documented error for each kind of bad input. And a real model: SmolLM2-135M-Instruct from its
Q4_1 GGUF file (`make models`, read by DistillModels' GGUF reader) against transformers on the same
file, identical argmax and within 1e-3 wherever p > 1e-6.
"""
import json
import os
import shutil
import stat
import struct
import subprocess
import tempfile

import numpy as np
import pytest

from conftest import ROOT

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import make_tiny_models  # noqa: E402

FAMILIES = ["gpt2", "gpt2-untied", "llama-tied", "llama-llama3", "qwen2", "mistral"]
DTYPES = ["f32", "f16", "bf16"]
TOLERANCE = 1e-4


def checker_path():
    path = os.environ.get("DISTILL_MODEL_CHECK")
    if not path:
        daemon = os.environ.get("DISTILLD")
        base = os.path.dirname(daemon) if daemon else os.path.join(ROOT, ".build", "release")
        path = os.path.join(base, "distill-model-check")
    if not os.path.exists(path):
        pytest.fail(f"distill-model-check not found at {path}; run `make release` first")
    return path


@pytest.fixture(scope="session")
def checker():
    return checker_path()


@pytest.fixture(scope="session")
def models():
    root = tempfile.mkdtemp(prefix="distill-tiny-models-")
    try:
        yield make_tiny_models.make(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(checker, *args, timeout=120):
    return subprocess.run([checker, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def ours(checker, directory, sequences, batch=False):
    with tempfile.TemporaryDirectory() as tmp:
        args = ["logprobs", directory]
        outs = []
        for i, tokens in enumerate(sequences):
            out = os.path.join(tmp, f"{i}.npy")
            args += ["--tokens", ",".join(map(str, tokens)), "--out", out]
            outs.append(out)
        if batch:
            args.append("--batch")
        p = run(checker, *args)
        assert p.returncode == 0, p.stderr
        return [np.load(o) for o in outs]


_reference_models = {}


def reference(directory, tokens):
    """transformers' log-softmax [T, V] in float64 from its float32 logits."""
    model = _reference_models.get(directory)
    if model is None:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            directory, dtype=torch.float32, attn_implementation="eager").eval()
        _reference_models[directory] = model
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0]
    return torch.log_softmax(logits.double(), dim=-1).numpy()


def sequence(family, length, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, make_tiny_models.VOCAB_SIZES[family], size=length).tolist()


def assert_close(got, want, what):
    assert got.shape == want.shape, (what, got.shape, want.shape)
    diff = np.abs(got.astype(np.float64) - want)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    assert diff.max() <= TOLERANCE, f"{what}: max |Δ log p| = {diff.max():.3g} at {worst}"
    assert (got.argmax(-1) == want.argmax(-1)).all(), f"{what}: argmax differs at positions {np.nonzero(got.argmax(-1) != want.argmax(-1))[0]}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_logprobs_match_transformers(checker, models, family, dtype):
    directory = models[f"{family}-{dtype}"]
    # 40 tokens: past Mistral's sliding window (16), and past llama3's original context (32).
    tokens = sequence(family, 40, seed=7)
    got = ours(checker, directory, [tokens])[0]
    want = reference(directory, tokens)
    # The distributions are far from uniform, so the comparison can fail.
    assert want.max(-1).mean() > np.log(8 / want.shape[1])
    assert_close(got, want, f"{family}-{dtype}")


@pytest.mark.parametrize("name", ["gpt2-sharded", "gpt2-unprefixed"])
def test_sharded_and_unprefixed_gpt2(checker, models, name):
    tokens = sequence("gpt2", 30, seed=3)
    got = ours(checker, models[name], [tokens])[0]
    assert_close(got, reference(models["gpt2-f32"], tokens), name)


@pytest.mark.parametrize("family", ["gpt2", "llama-tied", "mistral"])
def test_batched_pass_equals_single_passes(checker, models, family):
    directory = models[f"{family}-f32"]
    sequences = [sequence(family, n, seed=n) for n in (1, 23, 70, 5)]
    batched = ours(checker, directory, sequences, batch=True)
    single = ours(checker, directory, sequences)
    for tokens, b, s in zip(sequences, batched, single):
        assert_close(b, s.astype(np.float64), f"{family} batch vs single, length {len(tokens)}")
        assert_close(b, reference(directory, tokens), f"{family} batch vs transformers, length {len(tokens)}")


@pytest.mark.parametrize("split", [0, 1, 9])
@pytest.mark.parametrize("family", FAMILIES)
def test_kv_cache_decoding_equals_full_pass(checker, models, family, split):
    directory = models[f"{family}-f32"]
    tokens = sequence(family, 36, seed=11)
    full = ours(checker, directory, [tokens])[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "inc.npy")
        p = run(checker, "incremental", directory, "--tokens", ",".join(map(str, tokens)), "--split", split, "--out", out)
        assert p.returncode == 0, p.stderr
        incremental = np.load(out)
    assert_close(incremental, full.astype(np.float64), f"{family} KV cache from {split}")
    assert_close(incremental, reference(directory, tokens), f"{family} KV cache vs transformers")


# ---------------------------------------------------------------- bad input


def copy_model(models, name, tmp):
    dst = os.path.join(tmp, name)
    shutil.copytree(models[name], dst)
    return dst


def error_of(checker, *args):
    p = run(checker, *args, timeout=20)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    return p.stderr


def test_pickled_checkpoint_is_refused_without_opening(checker, models, tmp_path):
    # A FIFO named like a checkpoint: opening it would block until the timeout.
    d = tmp_path / "pickled"
    d.mkdir()
    shutil.copy(os.path.join(models["gpt2-f32"], "config.json"), d)
    os.mkfifo(d / "pytorch_model.bin")
    err = error_of(checker, "info", d)
    assert "pickledCheckpoint" in err and "pytorch_model.bin" in err
    assert "safetensors" in err and "GGUF" in err
    for name in ("model.pt", "weights.ckpt"):
        os.mkfifo(tmp_path / name)
        err = error_of(checker, "info", tmp_path / name)
        assert "pickledCheckpoint" in err and name in err and "GGUF" in err


def test_unknown_model_type_is_named_with_the_supported_ones(checker, models, tmp_path):
    d = copy_model(models, "llama-tied-f32", str(tmp_path))
    path = os.path.join(d, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["model_type"] = "bert"
    with open(path, "w") as f:
        json.dump(config, f)
    err = error_of(checker, "info", d)
    assert "unknownArchitecture" in err and "'bert'" in err
    for supported in ("gpt2", "llama", "qwen2", "mistral"):
        assert supported in err


def rewrite_safetensors(path, edit):
    """Rewrites a safetensors file after `edit(header) -> header` (with offsets recomputed)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None)
    chunks = {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items()}
    header = edit(header)
    out, offset, blobs = {}, 0, []
    for k, v in header.items():
        blob = v.pop("bytes", None) or chunks[k]
        out[k] = {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if meta is not None:
        out["__metadata__"] = meta
    raw = json.dumps(out).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def test_missing_tensor_is_named(checker, models, tmp_path):
    d = copy_model(models, "qwen2-f32", str(tmp_path))
    name = "model.layers.1.self_attn.k_proj.bias"
    rewrite_safetensors(os.path.join(d, "model.safetensors"), lambda h: {k: v for k, v in h.items() if k != name})
    err = error_of(checker, "info", d)
    assert "missingTensor" in err and f"'{name}'" in err
    assert "[num_key_value_heads×head_dim 32]" in err


def test_shape_disagreeing_with_config_names_both(checker, models, tmp_path):
    d = copy_model(models, "llama-tied-f32", str(tmp_path))
    path = os.path.join(d, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["intermediate_size"] = 128  # the weights hold 160
    with open(path, "w") as f:
        json.dump(config, f)
    err = error_of(checker, "info", d)
    assert "shapeMismatch" in err and "model.layers.0.mlp.gate_proj.weight" in err
    assert "[160, 64]" in err and "[128, 64]" in err and "intermediate_size 128" in err


def test_shape_of_a_tensor_names_both(checker, models, tmp_path):
    d = copy_model(models, "gpt2-f32", str(tmp_path))

    def shrink(h):
        v = h["transformer.h.1.mlp.c_fc.bias"]
        v["shape"] = [255]
        v["bytes"] = b"\0" * (255 * 4)
        return h

    rewrite_safetensors(os.path.join(d, "model.safetensors"), shrink)
    err = error_of(checker, "info", d)
    assert "shapeMismatch" in err and "transformer.h.1.mlp.c_fc.bias" in err and "[255]" in err and "[256]" in err


def test_context_longer_than_the_model_is_refused_with_both_lengths(checker, models, tmp_path):
    directory = models["gpt2-f32"]  # n_positions 128
    tokens = ",".join(["5"] * 129)
    err = error_of(checker, "logprobs", directory, "--tokens", tokens, "--out", tmp_path / "x.npy")
    assert "contextTooLong" in err and "129" in err and "128" in err
    assert not (tmp_path / "x.npy").exists()
    err = error_of(checker, "incremental", directory, "--tokens", tokens, "--split", 100, "--out", tmp_path / "y.npy")
    assert "contextTooLong" in err and "129" in err and "128" in err


def test_token_outside_the_vocabulary_is_named(checker, models, tmp_path):
    err = error_of(checker, "logprobs", models["mistral-f32"], "--tokens", "1,2,300", "--out", tmp_path / "x.npy")
    assert "tokenOutOfRange" in err and "300" in err and "tokens[2]" in err


def test_missing_weights_and_config(checker, models, tmp_path):
    d = copy_model(models, "gpt2-f32", str(tmp_path))
    os.remove(os.path.join(d, "config.json"))
    assert "config.json" in error_of(checker, "info", d)
    os.remove(os.path.join(d, "model.safetensors"))
    assert "model.safetensors" in error_of(checker, "info", d)


# ---------------------------------------------------------------- a real model

SMOLLM2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(
    ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
PROMPTS = [
    "The capital of France is Paris, and the capital of Germany is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "Ünïcödé, 東京タワー and 🙂: 12345 + 678 = 13023.   Spaces   and\ttabs.",
    "<|im_start|>user\nWhat is a transformer?<|im_end|>\n<|im_start|>assistant\n",
]


@pytest.fixture(scope="module")
def smollm2(smollm2_reference):
    """SmolLM2-135M-Instruct (Q4_1 GGUF, from `make models`) and transformers on the same file,
    dequantised to float32: its tokenizer and model (conftest.py: loaded once a session)."""
    return smollm2_reference


def test_smollm2_logprobs_match_transformers(checker, smollm2):
    """The issue's bar for the real model: identical argmax, and at most 1e-3 absolute difference
    in log-probability wherever p > 1e-6 (the tokens come from transformers' own tokenizer)."""
    tokenizer, model = smollm2
    sequences = [tokenizer(p)["input_ids"] for p in PROMPTS]
    got = ours(checker, SMOLLM2, sequences, batch=True)
    for prompt, tokens, g in zip(PROMPTS, sequences, got):
        with torch.no_grad():
            want = torch.log_softmax(model(torch.tensor([tokens])).logits[0].double(), -1).numpy()
        likely = np.exp(want) > 1e-6
        worst = np.abs(g - want)[likely].max()
        assert worst <= 1e-3, f"{prompt!r}: max |Δ log p| = {worst:.3g} where p > 1e-6"
        assert (g.argmax(-1) == want.argmax(-1)).all(), prompt


def test_smollm2_kv_cache_decoding_equals_full_pass(checker, smollm2, tmp_path):
    tokenizer, _ = smollm2
    tokens = tokenizer(PROMPTS[1])["input_ids"]
    full = ours(checker, SMOLLM2, [tokens])[0]
    out = tmp_path / "inc.npy"
    p = run(checker, "incremental", SMOLLM2, "--tokens", ",".join(map(str, tokens)), "--split", 7, "--out", out)
    assert p.returncode == 0, p.stderr
    assert_close(np.load(out), full.astype(np.float64), "SmolLM2 KV cache")
