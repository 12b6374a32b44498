"""model/* through the daemon (issue #12), against references no one here wrote.

Every request goes through the Python client to the release daemon, and every reply is validated
against Protocol/schemas (`CheckedClient`). The references:

- tiny random models of every family (make_tiny_models.py: GPT-2, Llama tied and untied, Qwen2,
  Mistral), F32 and one of F16/BF16, scored by transformers in float32 (eager attention), the
  logits log-softmaxed in float64: log-probabilities within 1e-4, identical argmax, entropy and
  top-k computed with numpy on that reference;
- a byte-level BPE tokenizer trained here with `tokenizers` (300 ids, so it fits every tiny
  model), given as `options.tokenizer`: tokens, pieces and decodings equal `tokenizers`' exactly;
- SmolLM2-135M-Instruct (Q4_1 GGUF, `make models`): its info, tokenizer and log-probabilities
  against transformers on the same file (identical argmax, within 1e-3 wherever p > 1e-6), greedy
  generation equal to transformers' `generate(do_sample=False)`, a completion's log-probability
  equal to transformers' scoring of it, and seeded sampling reproducible;
- n-gram models: committed ARPA files against kenlm (log10 converted to nats), and a model built
  from a loaded dataset against the float64 Kneser–Ney of ngram_reference.py;
- bad input: each failure has its documented code and `data`, and changes nothing.
"""

import json
import math
import os
import shutil
import struct
import tempfile
import time

import numpy as np
import pytest

from conftest import ROOT
from distilld import Client, RPCError, decode_array
from schema import CheckedClient, validate_envelope, validate_result

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
kenlm = pytest.importorskip("kenlm")
tokenizers = pytest.importorskip("tokenizers")

import make_tiny_models  # noqa: E402
import make_tokenizer_fixtures  # noqa: E402
from ngram_reference import BOS, EOS, UNK, KneserNey, read_arpa  # noqa: E402

LN10 = math.log(10)
ARCHITECTURE = {"gpt2": "gpt2", "gpt2-untied": "gpt2", "llama-tied": "llama", "llama-llama3": "llama",
                "qwen2": "qwen2", "mistral": "mistral"}
FAMILIES = sorted(ARCHITECTURE)
# Each family in F32 and in one of the half types, so both half types are covered three times.
HALF = {"gpt2": "f16", "gpt2-untied": "bf16", "llama-tied": "bf16", "llama-llama3": "f16", "qwen2": "bf16",
        "mistral": "f16"}
SOURCE_DTYPE = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
TINY_TOLERANCE = 1e-4

NGRAM_FIXTURES = os.path.join(ROOT, "Tests", "python", "fixtures", "ngram")
SMOLLM2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(
    ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

# English, code, numbers, whitespace runs, accents (composed and combining), emoji, CJK, specials.
MIXED_TEXTS = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog. It's what they'd said.",
    "def forward(self, x):\n    return self.linear(x) + 1\n",
    "for (int i = 0; i < n; i++) {\n\ttotal += values[i];\n}",
    "Version 3.14.159 on 2024-05-01, costs $1,299.99 (12345678 units).",
    "a  b   c    d\t\te\n\nf \n g\r\nh   ",
    "   leading and trailing   ",
    "Café naïve résumé Zürich Straße Ångström, and Cafe\u0301 with a combining accent",
    "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "日本語のテキストです。中文文本：机器学习。한국어 문장입니다.",
    "Ελληνικά: καλημέρα. Русский: привет, мир!",
    "<|im_start|>user\nHi there<|im_end|>\n<|endoftext|>",
]


# ---------------------------------------------------------------- helpers


def rpc_error(client, method, params, code):
    """The error reply of a request that must fail with `code`; its envelope and data are validated."""
    with pytest.raises(RPCError) as caught:
        client.call(method, params, timeout=120)
    e = caught.value
    assert e.code == code, f"{method} {str(params)[:200]}: expected {code}, got {e.code} {e.message} {e.data}"
    error = {"code": e.code, "message": e.message}
    if e.data is not None:
        error["data"] = e.data
    validate_envelope({"jsonrpc": "2.0", "id": 1, "error": error})
    return e


def assert_unknown_model(client, method, params, name):
    e = rpc_error(client, method, params, 1007)
    assert e.data == {"reason": "unknownName", "name": name}, (method, e.data)
    assert name in e.message
    return e


def invalid_params(client, method, params, field_prefix, *phrases):
    """-32602 whose data.field starts with `field_prefix` and whose message has every phrase."""
    e = rpc_error(client, method, params, -32602)
    assert e.data["field"].startswith(field_prefix), (method, e.data, e.message)
    for phrase in phrases:
        assert phrase in e.message, (phrase, e.message)
    return e


def load_failure(client, params, reason):
    """A model/load that must fail with 1004 `reason`, leaving model/list as it was."""
    before = client.call("model/list", {})
    e = rpc_error(client, "model/load", params, 1004)
    assert e.data["reason"] == reason, (e.data, e.message)
    assert client.call("model/list", {}) == before, "a failed load changed model/list"
    return e


def log_softmax64(logits):
    return torch.log_softmax(logits.double(), dim=-1).numpy()


def entropy(row):
    """Entropy in nats of a distribution given by its log-probabilities (float64)."""
    p = np.exp(row)
    return float(-(p * np.where(p > 0, row, 0.0)).sum())


def check_sequence(seq, tokens, ref, tol, piece_of=None, k=0, likely=None, what=""):
    """One sequence of model/logprobs against the reference log-softmax `ref` [T, V] (float64).

    `likely(t, ids)` says which reference entries the tolerance applies to (SmolLM2's bar is set
    where p > 1e-6); the argmax must be identical at every position."""
    T = len(tokens)
    likely = likely or (lambda t, ids: np.ones(len(ids), dtype=bool))
    assert seq["tokens"] == list(tokens), what
    assert len(seq["pieces"]) == len(seq["logprobs"]) == len(seq["entropy"]) == T, what
    if piece_of is not None:
        for t, (i, piece) in enumerate(zip(tokens, seq["pieces"])):
            expected = piece_of(i)
            if expected is not None:
                assert piece == expected, (what, t, i, piece, expected)
    assert seq["logprobs"][-1] is None, what
    got = np.array(seq["logprobs"][:-1], dtype=np.float64)
    want = np.array([ref[t, tokens[t + 1]] for t in range(T - 1)])
    mask = np.array([likely(t, [tokens[t + 1]])[0] for t in range(T - 1)], dtype=bool)
    if T > 1:
        worst = np.abs(got - want)[mask].max(initial=0.0)
        assert worst <= tol, f"{what}: max |Δ log p(next token)| = {worst:.3g}"
    assert math.isclose(seq["sum"], math.fsum(got), rel_tol=1e-6, abs_tol=1e-6 * T), (what, seq["sum"], math.fsum(got))
    if mask.all():
        assert abs(seq["sum"] - math.fsum(want)) <= tol * T, (what, seq["sum"], math.fsum(want))
    for t in range(T):
        h = entropy(ref[t])
        assert abs(seq["entropy"][t] - h) <= tol * (2 + h), (what, t, seq["entropy"][t], h)
    if k:
        assert len(seq["top"]) == T, what
        for t, top in enumerate(seq["top"]):
            ids, lps = top["ids"], np.array(top["logprobs"], dtype=np.float64)
            assert len(ids) == len(lps) == len(top["pieces"]) == min(k, ref.shape[1]), (what, t)
            assert len(set(ids)) == len(ids), (what, t, ids)
            assert (np.diff(lps) <= 0).all(), f"{what}: top-{k} at {t} not best first: {lps}"
            assert ids[0] == int(ref[t].argmax()), f"{what}: argmax at {t}: {ids[0]} vs {int(ref[t].argmax())}"
            near = likely(t, ids)
            assert np.abs(lps - ref[t, ids])[near].max(initial=0.0) <= tol, (what, t, lps, ref[t, ids])
            best = np.sort(ref[t])[::-1][:len(ids)]
            assert np.abs(lps - best)[near].max(initial=0.0) <= tol, f"{what}: at {t} these are not the top {k}"
            if piece_of is not None:
                for i, piece in zip(ids, top["pieces"]):
                    if piece_of(i) is not None:
                        assert piece == piece_of(i), (what, t, i, piece)
    else:
        assert "top" not in seq, what


def check_full(seq, ref, tol, likely_only=False, what=""):
    full = seq["full"]
    assert full["dtype"] == "float32" and full["shape"] == list(ref.shape), (what, full["dtype"], full["shape"])
    got = decode_array(full).astype(np.float64)
    diff = np.abs(got - ref)
    if likely_only:
        diff = np.where(np.exp(ref) > 1e-6, diff, 0.0)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    assert diff.max() <= tol, f"{what}: full: max |Δ log p| = {diff.max():.3g} at {worst}"
    assert (got.argmax(-1) == ref.argmax(-1)).all(), f"{what}: full: argmax differs"


def model_params(model):
    """Distinct parameters, a tied head counted once (transformers' parameters() deduplicates)."""
    return sum(p.numel() for p in model.parameters())


def score_completion(ref_model, prompt, completion):
    """transformers' log-probability of `completion` after `prompt` (float64 sum)."""
    ids = list(prompt) + list(completion)
    with torch.no_grad():
        ref = log_softmax64(ref_model(torch.tensor([ids])).logits[0])
    return math.fsum(ref[len(prompt) - 1 + j, tok] for j, tok in enumerate(completion)), ref


def greedy_reference(ref_model, prompt, max_new):
    ids = torch.tensor([list(prompt)])
    with torch.no_grad():
        out = ref_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new)
    return out[0][len(prompt):].tolist()


# ---------------------------------------------------------------- tiny models and their tokenizer


@pytest.fixture(scope="module")
def tiny():
    """{"models": {dir name: path}, "tokenizer": path, "backend": tokenizers.Tokenizer, "root": dir}."""
    root = tempfile.mkdtemp(prefix="distill-model-methods-")
    try:
        made = make_tiny_models.make(os.path.join(root, "models"))
        path = train_tiny_tokenizer(os.path.join(root, "tokenizer"))
        yield {"models": made, "tokenizer": path, "backend": tokenizers.Tokenizer.from_file(path), "root": root}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def train_tiny_tokenizer(directory):
    """A byte-level BPE of 300 ids (256 bytes, <s> 0, </s> 1, <pad> 2, 41 merges): it fits every
    tiny model, exactly so Mistral's 300. <s> and </s> are the models' bos and eos (config 0 and 1)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(make_tokenizer_fixtures.corpus(lines=300), trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 1)])
    assert tok.get_vocab_size(with_added_tokens=True) == 300
    assert (tok.token_to_id("<s>"), tok.token_to_id("</s>")) == (0, 1)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tokenizer.json")
    tok.save(path)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>"}, f)
    return path


_references = {}


def tiny_reference(directory):
    model = _references.get(directory)
    if model is None:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            directory, dtype=torch.float32, attn_implementation="eager").eval()
        _references[directory] = model
    return model


def tiny_logsoftmax(directory, tokens):
    with torch.no_grad():
        return log_softmax64(tiny_reference(directory)(torch.tensor([list(tokens)])).logits[0])


def tiny_config(directory):
    with open(os.path.join(directory, "config.json")) as f:
        return json.load(f)


def piece_getter(backend):
    return lambda i: backend.id_to_token(i) if i < backend.get_vocab_size(with_added_tokens=True) else None


def load_tiny(checked, tiny, name, directory_name, tokenizer=True, **extra):
    params = {"name": name, "path": tiny["models"][directory_name], **extra}
    if tokenizer:
        params["options"] = {"tokenizer": tiny["tokenizer"]}
    return checked.call("model/load", params)


def random_tokens(vocab, length, seed, high=None):
    rng = np.random.default_rng(seed)
    return rng.integers(0, high or vocab, size=length).tolist()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", ["f32", "half"])
def test_load_info_of_every_family(client, checked, tiny, family, dtype):
    dtype = HALF[family] if dtype == "half" else dtype
    directory = tiny["models"][f"{family}-{dtype}"]
    started = time.time()
    info = load_tiny(checked, tiny, "m", f"{family}-{dtype}")
    config = tiny_config(directory)
    backend = tiny["backend"]
    reference = tiny_reference(directory)
    assert info["type"] == "model" and info["name"] == "m" and info["kind"] == "transformer"
    assert info["architecture"] == ARCHITECTURE[family]
    assert info["layers"] == config.get("num_hidden_layers", config.get("n_layer"))
    assert info["order"] is None
    assert info["vocab"] == config["vocab_size"] == make_tiny_models.VOCAB_SIZES[family]
    assert info["contextLength"] == config.get("max_position_embeddings", config.get("n_positions"))
    assert info["parameters"] == model_params(reference), (info["parameters"], model_params(reference))
    assert info["dtype"] == "float32" and info["sourceDtype"] == SOURCE_DTYPE[dtype]
    assert info["tokenizer"] == {"kind": "byteLevelBPE", "vocab": 300, "bos": backend.token_to_id("<s>"),
                                 "eos": backend.token_to_id("</s>")}
    assert info["source"] == {"path": directory, "format": "huggingface", "tokenizer": tiny["tokenizer"]}
    assert started - 5 <= info["loadedAt"] <= time.time() + 5
    # The float32 weights are held somewhere: mapped from the file or resident.
    assert info["residentBytes"] + info["mappedBytes"] >= 4 * info["parameters"]
    assert checked.call("model/info", {"name": "m"}) == info
    listed = checked.call("model/list", {})["models"]
    assert listed == [{"name": "m", "kind": "transformer", "architecture": ARCHITECTURE[family],
                       "parameters": info["parameters"], "residentBytes": info["residentBytes"],
                       "mappedBytes": info["mappedBytes"], "path": directory}]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", ["f32", "half"])
def test_logprobs_batched_match_transformers(checked, tiny, family, dtype):
    """Several sequences in one request (1 token, past Mistral's window of 16 and Llama-3's
    original context of 32, a middle one), top-5 and the full log-softmax, each against transformers."""
    dtype = HALF[family] if dtype == "half" else dtype
    directory = tiny["models"][f"{family}-{dtype}"]
    load_tiny(checked, tiny, "m", f"{family}-{dtype}")
    vocab = make_tiny_models.VOCAB_SIZES[family]
    sequences = [random_tokens(vocab, n, seed) for n, seed in ((1, 1), (40, 2), (17, 3))]
    reply = checked.call("model/logprobs", {"model": "m", "tokens": sequences, "topk": 5, "full": True})
    assert reply["model"] == "m" and len(reply["sequences"]) == len(sequences)
    for tokens, seq in zip(sequences, reply["sequences"]):
        ref = tiny_logsoftmax(directory, tokens)
        # Sharp distributions: a wrong answer cannot hide in near-uniform ones.
        assert ref.max(-1).mean() > math.log(8 / vocab)
        what = f"{family}-{dtype} length {len(tokens)}"
        check_sequence(seq, tokens, ref, TINY_TOLERANCE, piece_getter(tiny["backend"]), k=5, what=what)
        check_full(seq, ref, TINY_TOLERANCE, what=what)


def test_logprobs_defaults_and_single_sequence(checked, tiny):
    """One id array is one sequence; without topk and full there is no `top` and no `full`; the
    same sequence alone and in a batch gives the same numbers."""
    directory = tiny["models"]["llama-tied-f32"]
    load_tiny(checked, tiny, "m", "llama-tied-f32")
    tokens = random_tokens(384, 25, 9)
    alone = checked.call("model/logprobs", {"model": "m", "tokens": tokens})
    assert len(alone["sequences"]) == 1
    seq = alone["sequences"][0]
    assert "top" not in seq and "full" not in seq
    check_sequence(seq, tokens, tiny_logsoftmax(directory, tokens), TINY_TOLERANCE, piece_getter(tiny["backend"]))
    batch = checked.call("model/logprobs", {"model": "m", "tokens": [random_tokens(384, 60, 1), tokens]})
    for key in ("logprobs", "entropy"):
        assert np.allclose(np.array(batch["sequences"][1][key], dtype=float), np.array(seq[key], dtype=float),
                           atol=TINY_TOLERANCE, equal_nan=True)


# The tiny models take at most 96 positions (llama-llama3): the texts stay short.
TINY_TEXTS = ["Hello world!", "def f(x):\n    return x + 1", "3.14 and 1,299.99", "a  b\t\tc\n\n d",
              "Café naïve e\u0301", "😀 東京", "<s>inner</s> specials", ""]


@pytest.mark.parametrize("family", ["gpt2", "mistral"])
def test_tokenize_and_detokenize_equal_tokenizers(checked, tiny, family):
    load_tiny(checked, tiny, "m", f"{family}-f32")
    backend = tiny["backend"]
    for text in TINY_TEXTS:
        for add_special in (True, False):
            reference = backend.encode(text, add_special_tokens=add_special)
            got = checked.call("model/tokenize", {"model": "m", "text": text, "addSpecial": add_special})
            assert got == {"tokens": reference.ids, "pieces": reference.tokens}, (text, add_special)
            for skip in (False, True):
                decoded = checked.call("model/detokenize", {"model": "m", "tokens": reference.ids, "skipSpecial": skip})
                assert decoded["text"] == backend.decode(reference.ids, skip_special_tokens=skip), (text, skip)
        default = checked.call("model/tokenize", {"model": "m", "text": text})
        assert default["tokens"] == backend.encode(text).ids, "addSpecial defaults to true"
    ids = backend.encode(TINY_TEXTS[0]).ids
    assert checked.call("model/detokenize", {"model": "m", "tokens": ids})["text"] == backend.decode(
        ids, skip_special_tokens=False), "skipSpecial defaults to false"


def test_text_input_equals_the_token_route(checked, tiny):
    directory = tiny["models"]["qwen2-bf16"]
    load_tiny(checked, tiny, "m", "qwen2-bf16")
    backend = tiny["backend"]
    texts = [t for t in TINY_TEXTS if t]
    by_text = checked.call("model/logprobs", {"model": "m", "texts": texts, "topk": 3})
    by_tokens = checked.call("model/logprobs", {"model": "m", "tokens": [backend.encode(t).ids for t in texts],
                                                "topk": 3})
    assert by_text == by_tokens
    for text, seq in zip(texts, by_text["sequences"]):
        ids = backend.encode(text).ids
        check_sequence(seq, ids, tiny_logsoftmax(directory, ids), TINY_TOLERANCE, piece_getter(backend), k=3,
                       what=repr(text))
        assert seq["pieces"] == backend.encode(text).tokens
    # Alone, the same sequence runs unpadded: equal to float32 rounding, not bit for bit.
    alone = checked.call("model/logprobs", {"model": "m", "text": texts[1]})["sequences"][0]
    batched = by_text["sequences"][1]
    assert alone["tokens"] == batched["tokens"] and alone["pieces"] == batched["pieces"] and "top" not in alone
    for key in ("logprobs", "entropy"):
        assert np.allclose(np.array(alone[key][:-1], dtype=float), np.array(batched[key][:-1], dtype=float), atol=1e-5)
    bare = checked.call("model/logprobs", {"model": "m", "text": texts[1], "addSpecial": False})
    assert bare["sequences"][0]["tokens"] == backend.encode(texts[1], add_special_tokens=False).ids


def test_model_without_a_tokenizer_takes_tokens(client, checked, tiny):
    directory = tiny["models"]["gpt2-untied-f32"]
    info = load_tiny(checked, tiny, "m", "gpt2-untied-f32", tokenizer=False)
    assert info["tokenizer"] is None
    tokens = random_tokens(320, 12, 4)
    seq = checked.call("model/logprobs", {"model": "m", "tokens": tokens, "topk": 2})["sequences"][0]
    check_sequence(seq, tokens, tiny_logsoftmax(directory, tokens), TINY_TOLERANCE, k=2, what="no tokenizer")
    invalid_params(client, "model/tokenize", {"model": "m", "text": "hello"}, "params.text", "tokenizer")
    invalid_params(client, "model/logprobs", {"model": "m", "texts": ["hello"]}, "params.texts[0]", "tokenizer")
    invalid_params(client, "model/generate", {"model": "m", "prompt": "hello"}, "params.prompt", "tokenizer")
    assert checked.call("model/info", {"name": "m"}) == info


@pytest.mark.parametrize("family", ["gpt2", "llama-llama3", "qwen2", "mistral"])
def test_greedy_generation_equals_transformers(checked, tiny, family):
    directory = tiny["models"][f"{family}-f32"]
    load_tiny(checked, tiny, "m", f"{family}-f32")
    reference = tiny_reference(directory)
    vocab = make_tiny_models.VOCAB_SIZES[family]
    for seed in (5, 6, 7):
        prompt = random_tokens(vocab, 6, seed)
        reply = checked.call("model/generate", {"model": "m", "tokens": prompt, "maxTokens": 12, "temperature": 0})
        assert reply["model"] == "m" and reply["promptTokens"] == prompt
        (completion,) = reply["completions"]
        expected = greedy_reference(reference, prompt, 12)
        assert completion["tokens"] == expected, (family, prompt)
        eos = tiny["backend"].token_to_id("</s>")
        if expected and expected[-1] == eos:
            assert completion["finishReason"] == "eos"
        else:
            assert completion["finishReason"] == "length" and len(expected) == 12
        want, _ = score_completion(reference, prompt, expected)
        assert abs(completion["logprob"] - want) <= TINY_TOLERANCE * len(expected), (completion["logprob"], want)
        decoded = {tiny["backend"].decode(expected, skip_special_tokens=s) for s in (False, True)}
        assert completion["text"] in decoded


def test_sampling_is_seeded_and_stays_in_top_k_and_top_p(checked, tiny):
    directory = tiny["models"]["gpt2-f32"]
    load_tiny(checked, tiny, "m", "gpt2-f32")
    reference = tiny_reference(directory)
    prompt = random_tokens(500, 5, 21)
    base = {"model": "m", "tokens": prompt, "maxTokens": 16, "temperature": 1.5}

    def sample(**kw):
        return checked.call("model/generate", {**base, **kw})["completions"]

    first = sample(seed=11, n=3)
    assert len(first) == 3
    assert sample(seed=11, n=3) == first, "the same seed gives the same completions"
    for i in range(3):
        assert sample(seed=11 + i) == [first[i]], f"completion {i} uses seed + {i}"
    others = [sample(seed=s)[0]["tokens"] for s in (100, 200, 300)]
    assert len({tuple(t) for t in others + [first[0]["tokens"]]}) > 1, "different seeds gave the same completion"
    greedy = checked.call("model/generate", {**base, "temperature": 0})["completions"]
    assert sample(seed=3, topK=1) == greedy, "topK 1 is greedy"
    # Every sampled token is among the reference's top 3 / inside its nucleus at that step.
    for completion in sample(seed=4, n=4, topK=3):
        want, ref = score_completion(reference, prompt, completion["tokens"])
        assert abs(completion["logprob"] - want) <= TINY_TOLERANCE * len(completion["tokens"])
        for j, tok in enumerate(completion["tokens"]):
            row = ref[len(prompt) - 1 + j]
            assert row[tok] >= np.sort(row)[::-1][2] - TINY_TOLERANCE, (j, tok)
    for completion in sample(seed=8, n=4, temperature=0.7, topP=0.5):
        _, ref = score_completion(reference, prompt, completion["tokens"])
        for j, tok in enumerate(completion["tokens"]):
            row = ref[len(prompt) - 1 + j] / 0.7
            p = np.exp(row - row.max())
            p /= p.sum()
            above = p[p > p[tok] + 1e-6].sum()
            assert above < 0.5 + 1e-4, f"step {j}: token {tok} outside the 0.5 nucleus (mass above it {above:.4f})"


@pytest.mark.parametrize("name", ["gpt2-sharded", "gpt2-unprefixed"])
def test_sharded_and_unprefixed_directories(checked, tiny, name):
    info = load_tiny(checked, tiny, "m", name)
    assert info["architecture"] == "gpt2" and info["sourceDtype"] == "F32"
    tokens = random_tokens(500, 30, 3)
    seq = checked.call("model/logprobs", {"model": "m", "tokens": tokens, "topk": 3})["sequences"][0]
    ref = tiny_logsoftmax(tiny["models"]["gpt2-f32"], tokens)
    check_sequence(seq, tokens, ref, TINY_TOLERANCE, piece_getter(tiny["backend"]), k=3, what=name)


def test_directory_with_its_own_tokenizer(checked, tiny, tmp_path):
    """A tokenizer.json inside the directory is the model's own: no option needed."""
    d = tmp_path / "with-tokenizer"
    shutil.copytree(tiny["models"]["mistral-bf16"], d)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(os.path.dirname(tiny["tokenizer"]), name), d)
    info = checked.call("model/load", {"name": "m", "path": str(d)})
    assert info["tokenizer"] == {"kind": "byteLevelBPE", "vocab": 300, "bos": 0, "eos": 1}
    assert info["source"] == {"path": str(d), "format": "huggingface", "tokenizer": None}
    text = "Zürich 😀 x=1"
    assert checked.call("model/tokenize", {"model": "m", "text": text})["tokens"] == tiny["backend"].encode(text).ids


def test_a_sentencepiece_style_tokenizer(checked, tiny, tmp_path):
    """make_tokenizer_fixtures' NFKC byte vocabulary (byte fallback, no byte-level alphabet): 256 ids,
    the UTF-8 bytes of the normalized text, for any of the tiny models."""
    path = make_tokenizer_fixtures.byte_vocabulary(str(tmp_path), "nfkc", "NFKC")
    backend = tokenizers.Tokenizer.from_file(path)
    info = checked.call("model/load", {"name": "m", "path": tiny["models"]["llama-tied-f32"],
                                       "options": {"tokenizer": path}})
    assert info["tokenizer"]["kind"] == "sentencePieceBPE" and info["tokenizer"]["vocab"] == 256
    for text in ["ﬁ ① Ⅻ", "Cafe\u0301", "東京 😀", "a  b\t\n"]:
        reference = backend.encode(text)
        got = checked.call("model/tokenize", {"model": "m", "text": text})
        assert got == {"tokens": reference.ids, "pieces": reference.tokens}, text
        assert checked.call("model/detokenize", {"model": "m", "tokens": reference.ids})["text"] == backend.decode(
            reference.ids, skip_special_tokens=False)
        seq = checked.call("model/logprobs", {"model": "m", "text": text})["sequences"][0]
        ids = reference.ids
        check_sequence(seq, ids, tiny_logsoftmax(tiny["models"]["llama-tied-f32"], ids), TINY_TOLERANCE, what=text)


def test_models_are_restored_from_the_workspace(distilld, tiny, tmp_path):
    import subprocess

    workspace = tmp_path / "ws.json"
    arpa = os.path.join(NGRAM_FIXTURES, "kn3.arpa")
    with Client.start(distilld, args=["--workspace", str(workspace)], stderr=subprocess.DEVNULL) as c:
        loaded = CheckedClient(c).call("model/load", {"name": "m", "path": tiny["models"]["qwen2-f16"],
                                                      "options": {"tokenizer": tiny["tokenizer"]}})
        CheckedClient(c).call("model/load", {"name": "lm", "path": arpa})
        before = c.call("model/logprobs", {"model": "m", "text": "hello"})
    with Client.start(distilld, args=["--workspace", str(workspace)], stderr=subprocess.DEVNULL) as c:
        checked = CheckedClient(c)
        assert [m["name"] for m in checked.call("model/list", {})["models"]] == ["lm", "m"]
        info = checked.call("model/info", {"name": "m"})
        assert {k: v for k, v in info.items() if k != "loadedAt"} == {k: v for k, v in loaded.items() if k != "loadedAt"}
        assert checked.call("model/logprobs", {"model": "m", "text": "hello"}) == before
        checked.call("model/unload", {"name": "lm"})
    with Client.start(distilld, args=["--workspace", str(workspace)], stderr=subprocess.DEVNULL) as c:
        assert [m["name"] for m in c.call("model/list", {})["models"]] == ["m"]


def test_memory_budget_refuses_a_model_that_does_not_fit(distilld, tiny):
    import subprocess

    with Client.start(distilld, args=["--memory-budget", "16K"], stderr=subprocess.DEVNULL) as c:
        e = rpc_error(c, "model/load", {"name": "m", "path": tiny["models"]["gpt2-f32"]}, 1005)
        assert e.data["reason"] == "budgetExceeded" and e.data["budget"] == 16 * 1024, e.data
        assert c.call("model/list", {}) == {"models": []}
        c.call("model/load", {"name": "lm", "path": os.path.join(NGRAM_FIXTURES, "handwritten.arpa")})


# ---------------------------------------------------------------- bad input


def copy_dir(tiny, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(tiny["models"][name], dst)
    return dst


def test_unknown_names_are_1007(client, checked, tiny):
    client.call("teacher/load", {"name": "t", "path": "builtin:demo"})
    client.call("dataset/load", {"name": "d", "path": "builtin:demo"})
    for name in ("nope", "t", "d"):
        assert_unknown_model(client, "model/info", {"name": name}, name)
        assert_unknown_model(client, "model/unload", {"name": name}, name)
        assert_unknown_model(client, "model/tokenize", {"model": name, "text": "a"}, name)
        assert_unknown_model(client, "model/detokenize", {"model": name, "tokens": [1]}, name)
        assert_unknown_model(client, "model/logprobs", {"model": name, "tokens": [1, 2]}, name)
        assert_unknown_model(client, "model/generate", {"model": name, "tokens": [1]}, name)
    load_tiny(checked, tiny, "m", "gpt2-f32")
    # One namespace: a model is neither a teacher nor a dataset, and its name is taken for both.
    rpc_error(client, "teacher/info", {"name": "m"}, 1001)
    rpc_error(client, "dataset/info", {"name": "m"}, 1002)
    rpc_error(client, "teacher/load", {"name": "m", "path": "builtin:demo"}, 1006)
    rpc_error(client, "model/load", {"name": "t", "path": tiny["models"]["gpt2-f32"]}, 1006)
    rpc_error(client, "model/load", {"name": "d", "path": tiny["models"]["gpt2-f32"]}, 1006)


def test_name_taken_replace_and_unload(client, checked, tiny, tmp_path):
    first = load_tiny(checked, tiny, "m", "gpt2-f32")
    e = rpc_error(client, "model/load", {"name": "m", "path": tiny["models"]["qwen2-f32"]}, 1006)
    assert "m" in e.message
    assert checked.call("model/info", {"name": "m"}) == first
    # A failed replace keeps the old model.
    bad = copy_dir(tiny, "qwen2-f32", tmp_path)
    os.remove(bad / "model.safetensors")
    rpc_error(client, "model/load", {"name": "m", "path": str(bad), "replace": True}, 1004)
    assert checked.call("model/info", {"name": "m"}) == first
    replaced = checked.call("model/load", {"name": "m", "path": tiny["models"]["qwen2-f32"], "replace": True})
    assert replaced["architecture"] == "qwen2" and checked.call("model/info", {"name": "m"}) == replaced
    load_tiny(checked, tiny, "a", "mistral-f16")
    assert [m["name"] for m in checked.call("model/list", {})["models"]] == ["a", "m"], "sorted by name"
    assert checked.call("model/unload", {"name": "m"}) == {"unloaded": "m"}
    assert_unknown_model(client, "model/info", {"name": "m"}, "m")
    assert_unknown_model(client, "model/unload", {"name": "m"}, "m")
    assert [m["name"] for m in checked.call("model/list", {})["models"]] == ["a"]
    client.call("teacher/load", {"name": "m", "path": "builtin:demo"})  # the name is free again


def test_unknown_architecture_names_the_supported_ones(client, tiny, tmp_path):
    d = copy_dir(tiny, "llama-tied-f32", tmp_path)
    config = json.loads((d / "config.json").read_text())
    config["model_type"] = "bert"
    (d / "config.json").write_text(json.dumps(config))
    for params in ({"name": "m", "path": str(d)}, {"name": "m", "path": str(d), "format": "huggingface"}):
        e = load_failure(client, params, "unknownArchitecture")
        assert "bert" in e.message
        for supported in ("gpt2", "llama", "qwen2", "mistral"):
            assert supported in e.message, e.message
    import gguf

    path = tmp_path / "bert.gguf"
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_context_length(16)
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    e = load_failure(client, {"name": "m", "path": str(path)}, "unknownArchitecture")
    assert "bert" in e.message and "llama" in e.message


def test_pickled_checkpoint_is_refused_unopened(client, tiny, tmp_path):
    # FIFOs: opening one would block the load until the timeout.
    d = tmp_path / "pickled"
    d.mkdir()
    shutil.copy(os.path.join(tiny["models"]["gpt2-f32"], "config.json"), d)
    os.mkfifo(d / "pytorch_model.bin")
    e = load_failure(client, {"name": "m", "path": str(d)}, "pickledCheckpoint")
    assert "pytorch_model.bin" in e.message and "safetensors" in e.message and "GGUF" in e.message
    assert "pytorch_model.bin" in (e.data.get("file") or "")
    for name in ("model.pt", "weights.ckpt"):
        os.mkfifo(tmp_path / name)
        e = load_failure(client, {"name": "m", "path": str(tmp_path / name)}, "pickledCheckpoint")
        assert name in e.message


STORE_HEADER_REASONS = {"truncated", "badHeader", "malformedHeader", "badOffsets"}


def test_truncated_safetensors_and_gguf(client, tiny, tmp_path):
    d = copy_dir(tiny, "gpt2-f32", tmp_path)
    weights = d / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    before = client.call("model/list", {})
    e = rpc_error(client, "model/load", {"name": "m", "path": str(d)}, 1004)
    assert e.data["reason"] in STORE_HEADER_REASONS and e.data["file"].endswith("model.safetensors"), e.data
    # A header that claims more than the file holds.
    with open(os.path.join(tiny["models"]["gpt2-f32"], "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        rest = f.read()
    lying = tmp_path / "lying"
    shutil.copytree(tiny["models"]["gpt2-f32"], lying)
    (lying / "model.safetensors").write_bytes(struct.pack("<Q", n + 10**6) + rest)
    e = rpc_error(client, "model/load", {"name": "m", "path": str(lying)}, 1004)
    assert e.data["reason"] in STORE_HEADER_REASONS, e.data
    if not os.path.exists(SMOLLM2):
        pytest.fail(f"{SMOLLM2} not found; run `make models`")
    size = os.path.getsize(SMOLLM2)
    with open(SMOLLM2, "rb") as f:
        head = f.read(1 << 20)  # inside the tokenizer's metadata
        f.seek(0)
        half = f.read(size // 2)  # metadata whole, tensor data cut
    for name, blob in (("metadata.gguf", head), ("tensors.gguf", half),
                       ("lying.gguf", head[:8] + struct.pack("<Q", 1 << 60) + head[16:])):
        path = tmp_path / name
        path.write_bytes(blob)
        for params in ({"name": "m", "path": str(path)}, {"name": "m", "path": str(path), "format": "gguf"}):
            e = rpc_error(client, "model/load", params, 1004)
            assert e.data.get("file") == str(path), (name, e.data)
            if name != "lying.gguf":
                assert e.data["reason"] in STORE_HEADER_REASONS, (name, e.data, e.message)
    assert client.call("model/list", {}) == before


def test_missing_files_and_tokenizer_that_does_not_fit(client, tiny, tmp_path):
    before = client.call("model/list", {})
    e = rpc_error(client, "model/load", {"name": "m", "path": str(tmp_path / "absent.gguf")}, 1004)
    assert e.data["reason"] in ("missingFile", "notFound") and "absent.gguf" in e.message, e.data
    assert client.call("model/list", {}) == before
    big = make_tokenizer_fixtures.gpt2(str(tmp_path / "tok"))  # about 1200 ids
    ids = tokenizers.Tokenizer.from_file(big).get_vocab_size(with_added_tokens=True)
    e = load_failure(client, {"name": "m", "path": tiny["models"]["gpt2-f32"], "options": {"tokenizer": big}},
                     "vocabMismatch")
    assert str(ids) in e.message and "500" in e.message, e.message
    e = rpc_error(client, "model/load", {"name": "m", "path": tiny["models"]["gpt2-f32"],
                                         "options": {"tokenizer": str(tmp_path / "none.json")}}, 1004)
    assert "none.json" in e.message
    assert client.call("model/list", {}) == {"models": []}


def test_context_and_token_ids_out_of_range(client, checked, tiny):
    load_tiny(checked, tiny, "m", "gpt2-f32")  # n_positions 128, vocab 500
    backend = tiny["backend"]
    invalid_params(client, "model/logprobs", {"model": "m", "tokens": [5] * 129}, "params.tokens", "129", "128")
    invalid_params(client, "model/logprobs", {"model": "m", "tokens": [[5] * 3, [5] * 130]}, "params.tokens[1]",
                       "130", "128")
    long_text = "x" * 300
    n = len(backend.encode(long_text).ids)
    assert n > 128
    invalid_params(client, "model/logprobs", {"model": "m", "texts": ["short", long_text]}, "params.texts[1]",
                   str(n), "128")
    invalid_params(client, "model/logprobs", {"model": "m", "text": long_text}, "params.text", str(n), "128")
    invalid_params(client, "model/generate", {"model": "m", "tokens": [5] * 129}, "params.tokens", "129", "128")
    invalid_params(client, "model/logprobs", {"model": "m", "tokens": [1, 2, 500]}, "params.tokens", "500")
    invalid_params(client, "model/logprobs", {"model": "m", "tokens": [[1], [2, -1]]}, "params.tokens[1]")
    invalid_params(client, "model/detokenize", {"model": "m", "tokens": [1, 9999]}, "params.tokens", "9999")
    invalid_params(client, "model/generate", {"model": "m", "tokens": [600]}, "params.tokens", "600")
    invalid_params(client, "model/logprobs", {"model": "m", "tokens": []}, "params.tokens")
    invalid_params(client, "model/logprobs", {"model": "m", "tokens": [[1, 2], []]}, "params.tokens[1]")
    invalid_params(client, "model/logprobs", {"model": "m", "texts": ["a", ""], "addSpecial": False}, "params.texts[1]")
    invalid_params(client, "model/logprobs", {"model": "m", "tokens": [1, 2], "topk": 101}, "params.topk")
    invalid_params(client, "model/logprobs", {"model": "m", "tokens": [1, 2], "colour": 1}, "params.colour")
    invalid_params(client, "model/logprobs", {"model": "m", "text": "a", "tokens": [1]}, "params")
    invalid_params(client, "model/generate", {"model": "m", "tokens": [1], "n": 17}, "params.n")
    invalid_params(client, "model/load", {"name": "x", "build": {"dataset": "d", "order": 7}}, "params.build.order")
    # Nothing of the above changed the model.
    seq = checked.call("model/logprobs", {"model": "m", "tokens": [1, 2, 3]})["sequences"][0]
    check_sequence(seq, [1, 2, 3], tiny_logsoftmax(tiny["models"]["gpt2-f32"], [1, 2, 3]), TINY_TOLERANCE)


# ---------------------------------------------------------------- n-gram models


def ngram_vocabulary(arpa):
    return [gram[0] for gram in read_arpa(arpa)[1]]


def ngram_ids(checked, words):
    """{word: id} by tokenizing the whole vocabulary at once."""
    reply = checked.call("model/tokenize", {"model": "lm", "text": " ".join(words), "addSpecial": False})
    assert reply["pieces"] == words
    return dict(zip(words, reply["tokens"]))


def kenlm_next(model, context, vocabulary):
    """log10 p(w | <s> context) for every w of the vocabulary (kenlm's BaseScore)."""
    state, out = kenlm.State(), kenlm.State()
    model.BeginSentenceWrite(state)
    for w in context:
        model.BaseScore(state, w, out)
        state, out = out, state
    return np.array([model.BaseScore(state, w, out) for w in vocabulary])


def read_lines(name):
    with open(os.path.join(NGRAM_FIXTURES, name)) as f:
        return f.read().splitlines()


@pytest.mark.parametrize("name,sentences", [("kn2.arpa", "sentences.txt"), ("kn3.arpa", "sentences.txt"),
                                            ("kn5.arpa", "sentences.txt"),
                                            ("handwritten.arpa", "handwritten-sentences.txt"),
                                            ("handwritten4.arpa", "handwritten4-sentences.txt")])
def test_arpa_logprobs_equal_kenlm(checked, name, sentences):
    arpa = os.path.join(NGRAM_FIXTURES, name)
    started = time.time()
    info = checked.call("model/load", {"name": "lm", "path": arpa})
    vocabulary = ngram_vocabulary(arpa)
    reference = kenlm.Model(arpa)
    assert info["kind"] == "ngram" and info["architecture"] == "ngram" and info["order"] == reference.order
    assert info["layers"] is None and info["contextLength"] is None
    assert info["vocab"] == len(vocabulary) and info["sourceDtype"] == "arpa" and info["dtype"] == "float32"
    assert info["source"] == {"path": arpa, "format": "arpa", "tokenizer": None}
    assert started - 5 <= info["loadedAt"] <= time.time() + 5
    ids = ngram_ids(checked, vocabulary)
    assert sorted(ids.values()) == list(range(len(vocabulary)))
    assert info["tokenizer"] == {"kind": "words", "vocab": len(vocabulary), "bos": ids[BOS], "eos": ids[EOS]}
    assert checked.call("model/list", {})["models"] == [
        {"name": "lm", "kind": "ngram", "architecture": "ngram", "parameters": info["parameters"],
         "residentBytes": info["residentBytes"], "mappedBytes": info["mappedBytes"], "path": arpa}]
    lines = read_lines(sentences)
    reply = checked.call("model/logprobs", {"model": "lm", "texts": lines})
    assert len(reply["sequences"]) == len(lines)
    for line, seq in zip(lines, reply["sequences"]):
        words = line.split()
        assert seq["tokens"] == [ids[BOS]] + [ids.get(w, ids.get(UNK)) for w in words] + [ids[EOS]], line
        expected = [p * LN10 for p, _, _ in reference.full_scores(line)]
        assert seq["logprobs"][-1] is None
        assert seq["logprobs"][:-1] == pytest.approx(expected, abs=1e-4 * LN10), line
        assert seq["sum"] == pytest.approx(reference.score(line) * LN10, abs=1e-4 * LN10), line
    # Pieces last: an unknown word's piece is the word itself, as model/tokenize gives it.
    for line, seq in zip(lines, reply["sequences"]):
        assert seq["pieces"] == [BOS] + line.split() + [EOS], line
        tokenized = checked.call("model/tokenize", {"model": "lm", "text": line})
        assert tokenized == {"tokens": seq["tokens"], "pieces": seq["pieces"]}, line
    # The token route gives the same numbers; its pieces are the vocabulary's spellings, so an
    # unknown word (which the text route shows as written) is <unk> there. Without specials the
    # first word has no <s> before it.
    tokens = [s["tokens"] for s in reply["sequences"]]
    by_tokens = checked.call("model/logprobs", {"model": "lm", "tokens": tokens})
    for got, want in zip(by_tokens["sequences"], reply["sequences"]):
        assert {k: v for k, v in got.items() if k != "pieces"} == {k: v for k, v in want.items() if k != "pieces"}
        assert got["pieces"] == [vocabulary[t] for t in got["tokens"]]
    for line in lines:
        if len(line.split()) < 2:
            continue
        seq = checked.call("model/logprobs", {"model": "lm", "text": line, "addSpecial": False})["sequences"][0]
        assert seq["pieces"] == line.split()
        expected = [p * LN10 for p, _, _ in reference.full_scores(line, bos=False, eos=False)][1:]
        assert seq["logprobs"][:-1] == pytest.approx(expected, abs=1e-4 * LN10), line


@pytest.mark.parametrize("name", ["kn3.arpa", "kn4.arpa"])
def test_arpa_distributions_entropy_and_top_k_equal_kenlm(checked, name):
    arpa = os.path.join(NGRAM_FIXTURES, name)
    checked.call("model/load", {"name": "lm", "path": arpa})
    vocabulary = ngram_vocabulary(arpa)
    ids = ngram_ids(checked, vocabulary)
    predicted = [w for w in vocabulary if w != BOS]  # <s> is never predicted
    reference = kenlm.Model(arpa)
    lines = ["it small today old he", "zebra mat on the", "the dog saw the river"]
    reply = checked.call("model/logprobs", {"model": "lm", "texts": lines, "topk": 4, "full": True})
    for line, seq in zip(lines, reply["sequences"]):
        words = line.split()
        full = decode_array(seq["full"]).astype(np.float64)
        assert seq["full"]["shape"] == [len(words) + 2, len(vocabulary)]
        # Every position but the last, whose context ends with </s>.
        for t in range(len(words) + 1):
            row = kenlm_next(reference, words[:t], predicted) * LN10
            assert math.fsum(np.exp(row)) == pytest.approx(1, abs=1e-4), (line, t)
            got = np.array([full[t, ids[w]] for w in predicted])
            assert got == pytest.approx(row, abs=1e-4 * LN10), (line, t)
            assert seq["entropy"][t] == pytest.approx(entropy(row), abs=1e-4), (line, t)
            # n-gram distributions tie often (words seen in no context of this one): the values
            # are the best four, each id's own value is the one given, and a unique best comes first.
            top = seq["top"][t]
            best = np.sort(row)[::-1][:4]
            assert top["logprobs"] == pytest.approx(best.tolist(), abs=1e-4 * LN10), (line, t)
            own = [row[predicted.index(p)] for p in top["pieces"]]
            assert top["logprobs"] == pytest.approx(own, abs=1e-4 * LN10), (line, t)
            if best[0] - best[1] > 1e-3:
                assert top["pieces"][0] == predicted[int(row.argmax())], (line, t)
            assert [ids[p] for p in top["pieces"]] == top["ids"], (line, t)


def test_ngram_tokenize_and_detokenize(checked):
    arpa = os.path.join(NGRAM_FIXTURES, "kn3.arpa")
    checked.call("model/load", {"name": "lm", "path": arpa})
    ids = ngram_ids(checked, ngram_vocabulary(arpa))
    got = checked.call("model/tokenize", {"model": "lm", "text": "  the\tdog  qwerty saw\n"})
    assert got == {"tokens": [ids[BOS], ids["the"], ids["dog"], ids[UNK], ids["saw"], ids[EOS]],
                   "pieces": [BOS, "the", "dog", "qwerty", "saw", EOS]}
    known = [ids["the"], ids["dog"], ids["saw"]]
    assert checked.call("model/detokenize", {"model": "lm", "tokens": known})["text"] == "the dog saw"
    wrapped = [ids[BOS]] + known + [ids[EOS]]
    assert checked.call("model/detokenize", {"model": "lm", "tokens": wrapped, "skipSpecial": True})["text"] == "the dog saw"
    assert checked.call("model/detokenize", {"model": "lm", "tokens": wrapped})["text"] == "<s> the dog saw </s>"


def train_sentences():
    return read_lines("train.txt")


@pytest.mark.parametrize("order,text", [(3, None), (2, "simplified"), (4, "full")])
def test_built_ngram_equals_the_float64_kneser_ney(checked, order, text):
    """A model built from a dataset's texts against ngram_reference.py's interpolation recursion,
    in nats. The simplified texts are the training sentences without their last word, so the two
    texts give different models."""
    lines = train_sentences()
    examples = [{"id": str(i), "full": line, "simplified": " ".join(line.split()[:-1])}
                for i, line in enumerate(lines)]
    checked.call("dataset/load", {"name": "d", "examples": examples})
    build = {"dataset": "d", "order": order}
    if text:
        build["text"] = text
    info = checked.call("model/load", {"name": "lm", "build": build})
    used = [e[text or "simplified"].split() for e in examples]
    reference = KneserNey(used, order)
    assert info["kind"] == "ngram" and info["order"] == order and info["source"] is None
    assert info["sourceDtype"] == "kneser-ney" and info["contextLength"] is None
    assert info["vocab"] == len(reference.vocabulary) + 1  # and <s>
    assert checked.call("model/list", {})["models"][0]["path"] is None
    sentences = read_lines("sentences.txt")
    reply = checked.call("model/logprobs", {"model": "lm", "texts": sentences})
    for line, seq in zip(sentences, reply["sequences"]):
        words = line.split()
        history = [BOS]
        expected = []
        for w in words + [EOS]:
            expected.append(math.log(reference.prob(w, tuple(history))))
            history.append(w)
        assert seq["logprobs"][:-1] == pytest.approx(expected, abs=1e-5), line
        assert seq["sum"] == pytest.approx(reference.sentence_log10(words) * LN10, abs=1e-5 * len(expected)), line


# ---------------------------------------------------------------- SmolLM2


@pytest.fixture(scope="module")
def smol(distilld, request):
    """One daemon with SmolLM2 loaded (once: it is slow on two cores) and transformers on the same
    file (conftest.py's `smollm2_reference`, loaded once a session)."""
    if not os.path.exists(SMOLLM2):
        pytest.fail(f"{SMOLLM2} not found; run `make models`")
    import subprocess

    os.environ["HF_HUB_OFFLINE"] = "1"
    client = Client.start(distilld, stderr=subprocess.DEVNULL)
    progress = []
    started = time.time()
    # The daemon loads while transformers does (when no earlier module has loaded the reference).
    future = client.call_async("model/load", {"name": "smol", "path": SMOLLM2}, progress=progress.append)
    tokenizer, model = request.getfixturevalue("smollm2_reference")
    info = future.result(timeout=900)
    validate_result("model/load", info)
    try:
        yield {"client": CheckedClient(client), "raw": client, "info": info, "tokenizer": tokenizer, "model": model,
               "progress": progress, "started": started}
    finally:
        client.close()


def test_smollm2_info(smol):
    import gguf

    info, tokenizer = smol["info"], smol["tokenizer"]
    fields = gguf.GGUFReader(SMOLLM2).fields
    assert info["name"] == "smol" and info["kind"] == "transformer" and info["architecture"] == "llama"
    assert info["layers"] == 30 and info["vocab"] == 49152 and info["sourceDtype"] == "Q4_1"
    assert info["contextLength"] == int(fields["llama.context_length"].contents()) == 8192
    assert info["parameters"] == model_params(smol["model"])
    assert info["dtype"] == "float32" and info["order"] is None
    assert info["tokenizer"] == {"kind": "byteLevelBPE", "vocab": len(tokenizer),
                                 "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id}
    assert info["source"] == {"path": SMOLLM2, "format": "gguf", "tokenizer": None}
    assert info["mappedBytes"] + info["residentBytes"] > 0
    assert smol["client"].call("model/info", {"name": "smol"}) == info
    # $/progress for a load given a workDoneToken: begin, rising reports, end (when it took long enough).
    kinds = [p["kind"] for p in smol["progress"]]
    if kinds:
        assert kinds[0] == "begin" and kinds[-1] == "end" and set(kinds[1:-1]) <= {"report"}, kinds
        assert smol["progress"][-1].get("message") == "done"


def test_smollm2_tokenize_equals_transformers(smol):
    checked, tokenizer = smol["client"], smol["tokenizer"]
    for text in MIXED_TEXTS:
        for add_special in (True, False):
            ids = tokenizer(text, add_special_tokens=add_special)["input_ids"]
            got = checked.call("model/tokenize", {"model": "smol", "text": text, "addSpecial": add_special})
            assert got["tokens"] == ids, (text, add_special)
            assert got["pieces"] == tokenizer.convert_ids_to_tokens(ids), (text, add_special)
            for skip in (False, True):
                text_back = checked.call("model/detokenize", {"model": "smol", "tokens": ids, "skipSpecial": skip})
                assert text_back["text"] == tokenizer.decode(ids, skip_special_tokens=skip), (text, skip)


PROMPTS = [
    "The capital of France is Paris, and the capital of Germany is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "Ünïcödé, 東京タワー and 🙂: 12345 + 678 = 13023.   Spaces   and\ttabs.",
    "<|im_start|>user\nWhat is a transformer?<|im_end|>\n<|im_start|>assistant\n",
]


def smol_reference(smol, ids):
    with torch.no_grad():
        return log_softmax64(smol["model"](torch.tensor([list(ids)])).logits[0])


def smol_likely(ref):
    return lambda t, ids: np.exp(ref[t, ids]) > 1e-6


def test_smollm2_logprobs_match_transformers(smol):
    """The issue's bar: identical argmax, and within 1e-3 wherever p > 1e-6."""
    checked, tokenizer = smol["client"], smol["tokenizer"]
    reply = checked.call("model/logprobs", {"model": "smol", "texts": PROMPTS, "topk": 5})
    assert len(reply["sequences"]) == len(PROMPTS)
    for prompt, seq in zip(PROMPTS, reply["sequences"]):
        ids = tokenizer(prompt)["input_ids"]
        ref = smol_reference(smol, ids)
        check_sequence(seq, ids, ref, 1e-3, lambda i: tokenizer.convert_ids_to_tokens(i), k=5,
                       likely=smol_likely(ref), what=repr(prompt[:30]))
    by_tokens = checked.call("model/logprobs", {"model": "smol", "tokens": [s["tokens"] for s in reply["sequences"]],
                                                "topk": 5})
    assert by_tokens == reply
    ids = tokenizer(PROMPTS[0])["input_ids"]
    seq = checked.call("model/logprobs", {"model": "smol", "tokens": ids, "full": True})["sequences"][0]
    check_full(seq, smol_reference(smol, ids), 1e-3, likely_only=True, what="SmolLM2 full")


GENERATION_PROMPTS = ["The capital of France is", "def add(a, b):\n",
                      "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n"]


def test_smollm2_greedy_generation_equals_transformers(smol):
    checked, tokenizer, model = smol["client"], smol["tokenizer"], smol["model"]
    for prompt in GENERATION_PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        reply = checked.call("model/generate", {"model": "smol", "prompt": prompt, "maxTokens": 20, "temperature": 0})
        assert reply["promptTokens"] == ids
        (completion,) = reply["completions"]
        expected = greedy_reference(model, ids, 20)
        assert completion["tokens"] == expected, (prompt, tokenizer.decode(completion["tokens"]), tokenizer.decode(expected))
        if expected[-1] == tokenizer.eos_token_id:
            assert completion["finishReason"] == "eos"
        else:
            assert completion["finishReason"] == "length" and len(expected) == 20
        want, _ = score_completion(model, ids, expected)
        assert abs(completion["logprob"] - want) <= 1e-3 * len(expected), (prompt, completion["logprob"], want)
        assert completion["text"] in {tokenizer.decode(expected, skip_special_tokens=s) for s in (False, True)}
        by_tokens = checked.call("model/generate", {"model": "smol", "tokens": ids, "maxTokens": 20, "temperature": 0})
        assert by_tokens == reply


def test_smollm2_stop_strings(smol):
    checked, tokenizer = smol["client"], smol["tokenizer"]
    prompt = GENERATION_PROMPTS[0]
    full = checked.call("model/generate", {"model": "smol", "prompt": prompt, "maxTokens": 20,
                                           "temperature": 0})["completions"][0]
    text = full["text"]
    assert len(text) > 4
    stop = text[2:4]  # a stop string that begins inside the completion
    cut = text.index(stop)
    stopped = checked.call("model/generate", {"model": "smol", "prompt": prompt, "maxTokens": 20, "temperature": 0,
                                              "stop": ["never appears", stop]})["completions"][0]
    assert stopped["finishReason"] == "stop"
    assert stopped["text"] == text[:cut], (stopped["text"], text, stop)
    assert stopped["tokens"] == full["tokens"][:len(stopped["tokens"])]
    assert stop in tokenizer.decode(stopped["tokens"])


def test_smollm2_sampling_is_reproducible(smol):
    checked, model, tokenizer = smol["client"], smol["model"], smol["tokenizer"]
    prompt = "Once upon a time, in a small village,"
    ids = tokenizer(prompt)["input_ids"]
    base = {"model": "smol", "prompt": prompt, "maxTokens": 12, "temperature": 1.0}
    first = checked.call("model/generate", {**base, "seed": 7, "n": 2})["completions"]
    assert checked.call("model/generate", {**base, "seed": 7, "n": 2})["completions"] == first
    assert checked.call("model/generate", {**base, "seed": 8})["completions"] == [first[1]]
    others = [checked.call("model/generate", {**base, "seed": s})["completions"][0]["tokens"] for s in (100, 200)]
    assert len({tuple(t) for t in others + [c["tokens"] for c in first]}) > 1, "different seeds, same completions"
    greedy = checked.call("model/generate", {**base, "temperature": 0})["completions"]
    assert checked.call("model/generate", {**base, "seed": 5, "topK": 1})["completions"] == greedy
    for completion in first:
        want, _ = score_completion(model, ids, completion["tokens"])
        assert abs(completion["logprob"] - want) <= 1e-3 * len(completion["tokens"]), (completion["logprob"], want)


def test_smollm2_context_longer_than_the_model(smol):
    raw = smol["raw"]
    invalid_params(raw, "model/logprobs", {"model": "smol", "tokens": [1] * 8193}, "params.tokens", "8193", "8192")
    invalid_params(raw, "model/logprobs", {"model": "smol", "tokens": [1, 49152]}, "params.tokens", "49152")


def test_explain_on_a_text_shows_each_tokens_loss(checked, tiny):
    """distill/explain with models run on a text (#13): the loss at each token along the sequence
    with the tokens as text, a chart of it, and contributions labelled by the tokenizer; the
    teacher is a tiny Llama in F32, the student the same weights stored as BF16, each against
    transformers on its own directory."""
    load_tiny(checked, tiny, "ex-teacher", "llama-tied-f32")
    load_tiny(checked, tiny, "ex-student", "llama-tied-bf16")
    text = "the cat sat on the mat, and the dog sat on the log"
    r = checked.call("distill/explain", {
        "teacher": {"model": "ex-teacher", "text": text}, "students": {"S": {"model": "ex-student", "text": text}},
        "example": 0, "position": 3})
    ids = tiny["backend"].encode(text).ids
    p = tiny_logsoftmax(tiny["models"]["llama-tied-f32"], ids)
    q = tiny_logsoftmax(tiny["models"]["llama-tied-bf16"], ids)
    kl = (np.exp(p) * (p - q)).sum(axis=1)
    assert [t["position"] for t in r["tokens"]] == list(range(len(ids)))
    assert [t["text"] for t in r["tokens"]] == [tiny["backend"].decode([i], skip_special_tokens=False) for i in ids]
    got = np.array([t["losses"]["S"] for t in r["tokens"]])
    assert np.abs(got - kl).max() < 1e-5 and kl.max() > 1e-6
    assert "<svg" in r["charts"]["tokens"]["S"] and r["position"] == 3
    # Contributions at the chosen position are named as the tokenizer spells the outputs.
    for c in r["students"][0]["contributions"][:5]:
        assert c["label"] == tiny["backend"].decode([c["index"]], skip_special_tokens=False)
        assert c["p"] == pytest.approx(np.exp(p[3, c["index"]]), abs=1e-5)
    for name in ["ex-teacher", "ex-student"]:
        checked.call("model/unload", {"name": name})
