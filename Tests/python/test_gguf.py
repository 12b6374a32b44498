"""GGUF files as distilld reads them (Sources/DistillModels/GGUF), against code no one here wrote.

`distill-gguf-dump` prints what distilld reads from a file and writes the converted tensors as
.npy files. The references: the `gguf` Python package (GGUFReader for the header and metadata,
`gguf.quants.dequantize` for every block type, bit for bit) and transformers (the model's
configuration and its state dict after transformers' own name mapping and un-permutation). The
real file is SmolLM2-135M-Instruct as Q4_1 (`make models`); the synthetic ones are written here
with `GGUFWriter`, and the hostile ones byte by byte.
"""

import json
import os
import struct
import subprocess

import numpy as np
import pytest

import gguf  # noqa: E402  (installed by make deps; a missing reference must fail, not skip)
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import GGUFWriter  # noqa: E402

from conftest import ROOT  # noqa: E402

SMOLLM2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(
    ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
CONVERTIBLE = [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q4_K, Q.Q6_K]


@pytest.fixture(scope="session")
def dump_binary():
    path = os.environ.get("DISTILL_GGUF_DUMP") or os.path.join(ROOT, ".build", "release", "distill-gguf-dump")
    if not os.path.exists(path):
        pytest.fail(f"{path} not found; run `swift build -c release --product distill-gguf-dump`")
    return path


@pytest.fixture(scope="session")
def smollm2():
    if not os.path.exists(SMOLLM2):
        pytest.fail(f"{SMOLLM2} not found; run `make models`")
    return SMOLLM2


def dump(binary, path, *args, ok=True):
    proc = subprocess.run([binary, path, *args], capture_output=True, timeout=600)
    out = json.loads(proc.stdout)
    if ok:
        assert proc.returncode == 0, out
    else:
        assert proc.returncode == 1 and "error" in out, out
        return out["error"]
    return out


def bits_equal(ours, reference):
    """Equal bit patterns, except that any NaN equals any NaN (arithmetic may quiet a payload)."""
    ours = np.asarray(ours, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    assert ours.shape == reference.shape
    both_nan = np.isnan(ours) & np.isnan(reference)
    same = (ours.view(np.uint32) == reference.view(np.uint32)) | both_nan
    return bool(same.all()), int((~same).sum())


def reverse_permute(w, n_head):
    """transformers' LlamaTensorProcessor._reverse_permute_weights, called as transformers calls it."""
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    return LlamaTensorProcessor()._reverse_permute_weights(w, n_head, n_head)


def llama_cpp_permute(w, n_head):
    """What llama.cpp's converter does to Llama q/k rows: each head's two halves interleaved."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# ---------------------------------------------------------------------------------------------
# The real file


def as_printed(entry):
    v = entry["value"]
    if entry["type"] == "array":
        if v["elementType"].startswith("float"):
            return [float(x) for x in v["values"]]  # "nan" and "inf" are printed as strings
        return v["values"]
    return v


@pytest.fixture(scope="module")
def smollm2_raw(dump_binary, smollm2, tmp_path_factory):
    """distill-gguf-dump's reading of SmolLM2 as stored, every tensor converted into a folder."""
    directory = tmp_path_factory.mktemp("smollm2-raw")
    return dump(dump_binary, smollm2, "--npy-dir", str(directory)), directory


@pytest.fixture(scope="module")
def smollm2_model(dump_binary, smollm2, tmp_path_factory):
    """SmolLM2 loaded as a model by distilld, every weight written under its Hugging Face name."""
    directory = tmp_path_factory.mktemp("smollm2-model")
    return dump(dump_binary, smollm2, "--model", "--npy-dir", str(directory)), directory


def test_smollm2_header_and_metadata_match_gguf_reader(smollm2, smollm2_raw):
    ours = smollm2_raw[0]
    reader = gguf.GGUFReader(smollm2)
    assert ours["version"] == 3
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    assert ours["keys"] == keys
    for key in keys:
        field = reader.fields[key]
        expected = field.contents()
        got = as_printed(ours["metadata"][key])
        if isinstance(expected, float):
            assert np.float32(got) == np.float32(expected), key
        elif isinstance(expected, list) and expected and isinstance(expected[0], float):
            assert np.array_equal(np.float32(got), np.float32(expected)), key
        else:
            assert got == expected, key
        expected_type = gguf.GGUFValueType(field.types[0]).name.lower()
        assert ours["metadata"][key]["type"] == expected_type, key
    assert ours["dataOffset"] == reader.data_offset
    assert len(ours["tensors"]) == len(reader.tensors) == 272
    for t, r in zip(ours["tensors"], reader.tensors):
        assert t["name"] == r.name
        assert t["type"] == r.tensor_type.name
        assert t["shape"] == [int(x) for x in reversed(r.shape)]
        assert ours["dataOffset"] + t["offset"] == r.data_offset
        assert t["byteCount"] == r.n_bytes


def test_smollm2_every_tensor_converts_as_gguf_dequantize(smollm2, smollm2_raw):
    ours, tmp_path = smollm2_raw
    reader = gguf.GGUFReader(smollm2)
    types = set()
    for t, r in zip(ours["tensors"], reader.tensors):
        expected = gguf.quants.dequantize(r.data, r.tensor_type).reshape(t["shape"])
        got = np.load(tmp_path / f"{t['name']}.npy", mmap_mode="r")
        same, differing = bits_equal(got, expected)
        assert same, f"{t['name']} ({t['type']}): {differing} values differ"
        types.add(t["type"])
    assert types == {"F32", "Q4_1", "Q8_0"}


@pytest.fixture(scope="module")
def smollm2_transformers(smollm2, smollm2_reference):
    """SmolLM2 as transformers loads the same file: its config and float32 state dict (the
    session's shared model, conftest.py, so its arrays are read-only here)."""
    assert smollm2 == SMOLLM2
    model = smollm2_reference[1]
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    for a in state.values():
        a.flags.writeable = False
    return model.config, state


def rope_theta(config):
    params = getattr(config, "rope_parameters", None) or {}
    return params.get("rope_theta", getattr(config, "rope_theta", None))


def check_config(ours, config):
    assert ours["vocabSize"] == config.vocab_size
    assert ours["tiedEmbeddings"] == config.tie_word_embeddings
    if config.model_type == "gpt2":
        assert ours["hiddenSize"] == config.n_embd
        assert ours["layers"] == config.n_layer
        assert ours["heads"] == ours["kvHeads"] == config.n_head
        assert ours["maxPositions"] == config.n_ctx
        assert np.float32(ours["normEpsilon"]) == np.float32(config.layer_norm_epsilon)
        return
    assert ours["architecture"] == config.model_type
    assert ours["hiddenSize"] == config.hidden_size
    assert ours["layers"] == config.num_hidden_layers
    assert ours["heads"] == config.num_attention_heads
    assert ours["kvHeads"] == config.num_key_value_heads
    assert ours["headDim"] == (getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    assert ours["intermediateSize"] == config.intermediate_size
    assert ours["maxPositions"] == config.max_position_embeddings
    assert np.float32(ours["normEpsilon"]) == np.float32(config.rms_norm_eps)
    assert np.float32(ours["ropeTheta"]) == np.float32(rope_theta(config))


def is_conv1d(name):
    return name.startswith("transformer.h.") and name.endswith(".weight") and any(
        m in name for m in (".c_attn.", ".c_proj.", ".c_fc."))


def check_weights(ours, directory, state):
    """Every weight distilld gives equals transformers' (to 1e-6), and nothing is left over."""
    names = set()
    for w in ours["weights"]:
        got = np.load(directory / f"{w['name']}.npy")
        expected = state[w["name"]]
        if is_conv1d(w["name"]) and not w["transposed"]:
            expected = expected.T  # GPT-2's Conv1D: transformers holds [in, out], GGUF [out, in]
        assert got.shape == expected.shape, w["name"]
        assert list(got.shape) == w["shape"], w["name"]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=w["name"])
        names.add(w["name"])
    left = set(state) - names
    if ours["config"]["tiedEmbeddings"]:
        embedding = "transformer.wte.weight" if "transformer.wte.weight" in names else "model.embed_tokens.weight"
        assert np.array_equal(state["lm_head.weight"], state[embedding])
        left.discard("lm_head.weight")
    assert not {n for n in left if not n.endswith(".attn.bias") and not n.endswith("masked_bias")}, left
    return names


def test_smollm2_model_matches_transformers(smollm2, smollm2_model, smollm2_transformers):
    config, state = smollm2_transformers
    ours, tmp_path = smollm2_model
    check_config(ours["config"], config)
    assert ours["config"]["ropeScaling"] is None
    assert ours["config"]["attentionBias"] is False
    names = check_weights(ours, tmp_path, state)
    assert len(names) == 272
    # Memory: every Q4_1 and Q8_0 tensor converted (4 bytes a parameter), every F32 one borrowed.
    reader = gguf.GGUFReader(smollm2)
    converted = sum(int(np.prod(t.shape)) for t in reader.tensors if t.tensor_type != Q.F32)
    assert ours["residentBytes"] == 4 * converted
    assert ours["parameters"] == sum(int(np.prod(t.shape)) for t in reader.tensors)
    assert ours["sourceType"] == "Q4_1"
    assert ours["mappedBytes"] == os.path.getsize(smollm2)


def test_smollm2_tokenizer_metadata(smollm2, smollm2_model):
    ours = smollm2_model[0]["tokenizer"]
    reader = gguf.GGUFReader(smollm2)

    def field(key):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    assert ours["model"] == field("tokenizer.ggml.model") == "gpt2"
    assert ours["pre"] == field("tokenizer.ggml.pre")
    assert ours["tokens"] == field("tokenizer.ggml.tokens")
    assert ours["tokenTypes"] == field("tokenizer.ggml.token_type")
    assert ours["merges"] == field("tokenizer.ggml.merges")
    assert ours["scores"] is None
    for ours_key, key in [("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unknown", "unknown_token_id"),
                          ("padding", "padding_token_id"), ("addBos", "add_bos_token")]:
        assert ours[ours_key] == field("tokenizer.ggml." + key), key
    assert ours["addEos"] is None
    assert ours["chatTemplate"] == field("tokenizer.chat_template")
    assert len(ours["tokens"]) == 49152


# ---------------------------------------------------------------------------------------------
# Synthetic files written with GGUFWriter


def random_raw(rng, qtype, rows, row_length):
    """Random bytes as `rows` rows of `qtype` blocks: every scale, NaN and subnormal included."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    return rng.integers(0, 256, size=(rows, row_length // block * size), dtype=np.uint8)


def k_blocks(rng, qtype, shape):
    """Random super-blocks of a K type with small finite half-precision scales where the type keeps them."""
    raw = random_raw(rng, qtype, int(np.prod(shape[:-1])), shape[-1])
    blocks = raw.reshape(-1, gguf.GGML_QUANT_SIZES[qtype][1])
    scale_at = {Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208], Q.Q2_K: [80, 82]}[qtype]
    for at in scale_at:
        halves = rng.uniform(1e-3, 1e-2, size=len(blocks)).astype("<f2")
        blocks[:, at:at + 2] = halves.view(np.uint8).reshape(-1, 2)
    return raw.reshape(*shape[:-1], -1)


def test_every_block_type_converts_bit_for_bit(dump_binary, tmp_path):
    rng = np.random.default_rng(12)
    path = str(tmp_path / "types.gguf")
    w = GGUFWriter(path, "llama")
    shapes = {}
    for i, qtype in enumerate(CONVERTIBLE):
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        for j, shape in enumerate([(3, 2 * 256), (2, 3, 256), (256 * 5,)]):
            rows, length = int(np.prod(shape[:-1])), shape[-1]
            raw = random_raw(rng, qtype, rows, length).reshape(*shape[:-1], -1)
            name = f"{qtype.name}.{j}"
            w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=qtype)
            shapes[name] = (qtype, raw, shape)
        assert 256 % block == 0
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ours = dump(dump_binary, path, "--npy-dir", str(tmp_path))
    assert len(ours["tensors"]) == len(shapes)
    for t in ours["tensors"]:
        qtype, raw, shape = shapes[t["name"]]
        assert t["type"] == qtype.name and t["shape"] == list(shape)
        with np.errstate(all="ignore"):  # random bytes hold infinities and NaNs
            expected = gguf.quants.dequantize(raw, qtype)
        got = np.load(tmp_path / f"{t['name']}.npy")
        same, differing = bits_equal(got, expected)
        assert same, f"{t['name']}: {differing} of {got.size} values differ"


def test_values_typical_of_a_model_convert_bit_for_bit(dump_binary, tmp_path):
    """Quantised from normal weights (finite scales) rather than random bytes."""
    rng = np.random.default_rng(5)
    path = str(tmp_path / "normal.gguf")
    w = GGUFWriter(path, "llama")
    originals = {}
    for qtype in CONVERTIBLE:
        x = (rng.standard_normal((8, 512)) * 0.05).astype(np.float32)
        if qtype == Q.F32:
            w.add_tensor(qtype.name, x)
        elif qtype == Q.F16:
            w.add_tensor(qtype.name, x.astype(np.float16))
        elif qtype in (Q.Q4_K, Q.Q6_K):  # the package only dequantises these: blocks with realistic scales
            raw = k_blocks(rng, qtype, x.shape)
            w.add_tensor(qtype.name, raw, raw_shape=raw.shape, raw_dtype=qtype)
            continue
        else:
            raw = gguf.quants.quantize(x, qtype)
            w.add_tensor(qtype.name, raw, raw_shape=raw.shape, raw_dtype=qtype)
        originals[qtype.name] = x
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    dump(dump_binary, path, "--npy-dir", str(tmp_path))
    reader = gguf.GGUFReader(path)
    for r in reader.tensors:
        got = np.load(tmp_path / f"{r.name}.npy")
        same, differing = bits_equal(got, gguf.quants.dequantize(r.data, r.tensor_type).reshape(got.shape))
        assert same, f"{r.name}: {differing} values differ"
        assert np.isfinite(got).all()
        if r.name in originals:  # the quantisation error is what the block type allows
            assert np.abs(got - originals[r.name]).max() < 0.05


def test_nested_arrays_and_every_scalar_type(dump_binary, tmp_path):
    path = str(tmp_path / "meta.gguf")
    w = GGUFWriter(path, "llama")
    V = gguf.GGUFValueType
    values = [("u8", 200, V.UINT8), ("i8", -100, V.INT8), ("u16", 60000, V.UINT16), ("i16", -30000, V.INT16),
              ("u32", 4000000000, V.UINT32), ("i32", -2000000000, V.INT32), ("u64", 2**64 - 1, V.UINT64),
              ("i64", -(2**62), V.INT64), ("f32", 0.1, V.FLOAT32), ("f64", 0.1, V.FLOAT64), ("b", True, V.BOOL),
              ("s", "héllo ✓ 😀", V.STRING)]
    for key, value, vtype in values:
        w.add_key_value(key, value, vtype)
    w.add_array("strings", ["a", "", "ü"])
    w.add_array("nested", [[1, 2, 3], [4], [5, 6]])
    w.add_array("nested_strings", [["x", "y"], ["z"]])
    w.add_array("deep", [[[1.5], [2.5, 3.5]]])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ours = dump(dump_binary, path)["metadata"]
    for key, value, vtype in values:
        entry = ours[key]
        assert entry["type"] == vtype.name.lower(), key
        got = int(entry["value"]) if vtype == V.UINT64 else entry["value"]
        if vtype == V.FLOAT32:
            assert np.float32(got) == np.float32(value)
        else:
            assert got == value, key
    assert ours["strings"]["value"] == {"elementType": "string", "values": ["a", "", "ü"]}
    nested = ours["nested"]["value"]
    assert nested["elementType"] == "array"
    assert [a["values"] for a in nested["values"]] == [[1, 2, 3], [4], [5, 6]]
    assert [a["values"] for a in ours["nested_strings"]["value"]["values"]] == [["x", "y"], ["z"]]
    deep = ours["deep"]["value"]["values"][0]["values"]
    assert [a["values"] for a in deep] == [[1.5], [2.5, 3.5]]


# Tiny models: written from known Hugging Face weights in llama.cpp's layout, then loaded by distilld
# and by transformers from the same file.

def write_model(path, arch, hf, config, types, tokens=40, extra=None, rope_freqs=None, permute=True):
    """Writes `hf` (Hugging Face name → float32 array) as llama.cpp's converter would lay it out."""
    V, H, L = config["vocab"], config["hidden"], config["layers"]
    w = GGUFWriter(path, arch)
    w.add_block_count(L)
    w.add_context_length(config["context"])
    w.add_embedding_length(H)
    w.add_feed_forward_length(config["ffn"])
    w.add_head_count(config["heads"])
    if arch == "gpt2":
        w.add_layer_norm_eps(1e-5)
    else:
        w.add_head_count_kv(config["kv"])
        w.add_rope_freq_base(config.get("theta", 10000.0))
        w.add_layer_norm_rms_eps(1e-6)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(tokens)])
    w.add_token_types([1] * tokens)
    w.add_token_merges(["t 1", "t1 0"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    for key, (value, vtype) in (extra or {}).items():
        w.add_key_value(key, value, vtype)
    names = gguf_names(arch, L)
    for hf_name, gguf_name in names.items():
        if hf_name not in hf:
            continue
        x = hf[hf_name]
        if arch == "gpt2" and x.ndim == 2 and any(s in hf_name for s in ("c_attn", "c_proj", "c_fc")):
            x = x.T  # Conv1D [in, out] → [out, in], as llama.cpp's converter writes it
        if permute and arch == "llama" and ".q_proj." in hf_name:
            x = llama_cpp_permute(x, config["heads"])
        if permute and arch == "llama" and ".k_proj." in hf_name:
            x = llama_cpp_permute(x, config["kv"])
        qtype = types.get(hf_name.split(".")[-2], Q.F32) if x.ndim == 2 else Q.F32
        x = np.ascontiguousarray(x, dtype=np.float32)
        if qtype == Q.F32:
            w.add_tensor(gguf_name, x)
        elif qtype == Q.F16:
            w.add_tensor(gguf_name, x.astype(np.float16))
        else:
            try:
                raw = gguf.quants.quantize(x, qtype)
            except NotImplementedError:  # the K types: the package only dequantises them
                raw = k_blocks(np.random.default_rng(len(gguf_name)), qtype, x.shape)
            w.add_tensor(gguf_name, raw, raw_shape=raw.shape, raw_dtype=qtype)
    if rope_freqs is not None:
        w.add_tensor("rope_freqs.weight", rope_freqs.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_names(arch, layers):
    if arch == "gpt2":
        names = {"transformer.wte.weight": "token_embd.weight", "transformer.wpe.weight": "position_embd.weight",
                 "transformer.ln_f.weight": "output_norm.weight", "transformer.ln_f.bias": "output_norm.bias",
                 "lm_head.weight": "output.weight"}
        roles = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm",
                 "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}
        for l in range(layers):
            for module, role in roles.items():
                for s in ("weight", "bias"):
                    names[f"transformer.h.{l}.{module}.{s}"] = f"blk.{l}.{role}.{s}"
        return names
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    roles = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for l in range(layers):
        for module, role in roles.items():
            for s in ("weight", "bias"):
                names[f"model.layers.{l}.{module}.{s}"] = f"blk.{l}.{role}.{s}"
    return names


def random_weights(arch, c, rng, tied, bias=False):
    V, H, L, I = c["vocab"], c["hidden"], c["layers"], c["ffn"]
    n = lambda *shape: (rng.standard_normal(shape) * 0.1).astype(np.float32)  # noqa: E731
    hf = {}
    if arch == "gpt2":
        hf["transformer.wte.weight"] = n(V, H)
        hf["transformer.wpe.weight"] = n(c["context"], H)
        for l in range(L):
            p = f"transformer.h.{l}."
            hf.update({p + "ln_1.weight": n(H), p + "ln_1.bias": n(H), p + "attn.c_attn.weight": n(H, 3 * H),
                       p + "attn.c_attn.bias": n(3 * H), p + "attn.c_proj.weight": n(H, H), p + "attn.c_proj.bias": n(H),
                       p + "ln_2.weight": n(H), p + "ln_2.bias": n(H), p + "mlp.c_fc.weight": n(H, I),
                       p + "mlp.c_fc.bias": n(I), p + "mlp.c_proj.weight": n(I, H), p + "mlp.c_proj.bias": n(H)})
        hf["transformer.ln_f.weight"] = n(H)
        hf["transformer.ln_f.bias"] = n(H)
    else:
        D = H // c["heads"]
        hf["model.embed_tokens.weight"] = n(V, H)
        for l in range(L):
            p = f"model.layers.{l}."
            hf.update({p + "input_layernorm.weight": n(H), p + "self_attn.q_proj.weight": n(c["heads"] * D, H),
                       p + "self_attn.k_proj.weight": n(c["kv"] * D, H), p + "self_attn.v_proj.weight": n(c["kv"] * D, H),
                       p + "self_attn.o_proj.weight": n(H, c["heads"] * D), p + "post_attention_layernorm.weight": n(H),
                       p + "mlp.gate_proj.weight": n(I, H), p + "mlp.up_proj.weight": n(I, H), p + "mlp.down_proj.weight": n(H, I)})
            if bias:
                hf.update({p + "self_attn.q_proj.bias": n(c["heads"] * D), p + "self_attn.k_proj.bias": n(c["kv"] * D),
                           p + "self_attn.v_proj.bias": n(c["kv"] * D)})
        hf["model.norm.weight"] = n(H)
    if not tied:
        hf["lm_head.weight"] = n(V, H)
    return hf


SMALL = {"vocab": 40, "hidden": 64, "layers": 2, "heads": 4, "kv": 2, "ffn": 96, "context": 128, "theta": 5000.0}
MIXED = {"embed_tokens": Q.Q8_0, "q_proj": Q.Q4_1, "k_proj": Q.Q4_0, "v_proj": Q.F16, "o_proj": Q.Q5_0,
         "gate_proj": Q.Q5_1, "up_proj": Q.BF16, "down_proj": Q.Q8_0, "lm_head": Q.Q4_1}
K_TYPES = {"q_proj": Q.Q4_K, "k_proj": Q.Q6_K, "down_proj": Q.Q4_K, "lm_head": Q.Q6_K}
GPT2_TYPES = {"wte": Q.Q8_0, "c_attn": Q.Q4_1, "c_proj": Q.F16, "c_fc": Q.Q4_0, "lm_head": Q.Q8_0}

MODELS = {
    "llama-untied-mixed": ("llama", dict(SMALL, ffn=256), MIXED, False, False),
    "llama-tied-f32": ("llama", SMALL, {}, True, False),
    "llama-k-quants": ("llama", dict(SMALL, hidden=256, heads=8, kv=4, ffn=256), K_TYPES, False, False),
    "qwen2-bias": ("qwen2", SMALL, {"q_proj": Q.Q8_0, "k_proj": Q.Q4_1}, False, True),
    "gpt2": ("gpt2", dict(SMALL, context=1024, ffn=256), GPT2_TYPES, False, False),
}


def transformers_state(path):
    import torch
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32)
    return model.config, {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("case", sorted(MODELS))
def test_tiny_models_match_transformers(dump_binary, tmp_path, case):
    arch, c, types, tied, bias = MODELS[case]
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    hf = random_weights(arch, c, rng, tied, bias)
    path = str(tmp_path / f"{case}.gguf")
    write_model(path, arch, hf, c, types, tokens=c["vocab"])
    out = tmp_path / "npy"
    out.mkdir()
    ours = dump(dump_binary, path, "--model", "--npy-dir", str(out))
    config, state = transformers_state(path)
    check_config(ours["config"], config)
    assert ours["config"]["tiedEmbeddings"] == tied
    assert ours["config"]["attentionBias"] == bias
    check_weights(ours, out, state)
    # Independently of transformers: every F32 tensor is the Hugging Face array written, whatever
    # llama.cpp's layout did to it on the way (q/k rows interleaved, GPT-2 transposed).
    for w in ours["weights"]:
        if w["stored"] == "F32":
            got = np.load(out / f"{w['name']}.npy")
            expected = hf[w["name"]]
            if is_conv1d(w["name"]):
                expected = expected.T
            assert np.array_equal(got, expected), w["name"]
    stored = {w["name"].split(".")[-2]: w["stored"] for w in ours["weights"] if len(w["shape"]) == 2}
    for module, qtype in types.items():
        assert stored.get(module) == qtype.name, module


def test_permutation_is_undone_on_quantised_rows(dump_binary, tmp_path):
    """q/k rows interleaved by llama.cpp come back in Hugging Face order even when quantised, and
    a Qwen2 file (whose converter does not interleave) is read as stored."""
    c = SMALL
    rng = np.random.default_rng(3)
    for arch in ("llama", "qwen2"):
        hf = random_weights(arch, c, rng, tied=True)
        path = str(tmp_path / f"{arch}.gguf")
        write_model(path, arch, hf, c, {"q_proj": Q.Q8_0, "k_proj": Q.F16}, permute=(arch == "llama"))
        out = tmp_path / arch
        out.mkdir()
        dump(dump_binary, path, "--model", "--npy-dir", str(out), "--tensors",
             "model.layers.1.self_attn.q_proj.weight,model.layers.1.self_attn.k_proj.weight")
        q = np.load(out / "model.layers.1.self_attn.q_proj.weight.npy")
        k = np.load(out / "model.layers.1.self_attn.k_proj.weight.npy")
        expected_q = gguf.quants.dequantize(gguf.quants.quantize(hf["model.layers.1.self_attn.q_proj.weight"], Q.Q8_0), Q.Q8_0)
        assert np.array_equal(q, expected_q)
        assert np.array_equal(k, hf["model.layers.1.self_attn.k_proj.weight"].astype(np.float16).astype(np.float32))
        if arch == "llama":
            raw = dump(dump_binary, path, "--npy-dir", str(out), "--tensors", "blk.1.attn_q.weight")
            assert raw["tensors"]
            stored = np.load(out / "blk.1.attn_q.weight.npy")
            assert not np.array_equal(stored, q)
            assert np.array_equal(reverse_permute(stored, c["heads"]), q)


def llama3_divisors(theta, head_dim, factor, low, high, original):
    """llama.cpp's converter: the per-frequency divisors it writes as rope_freqs.weight for Llama 3."""
    freqs = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    out = []
    for f in freqs:
        wavelength = 2 * np.pi / f
        if wavelength < original / high:
            out.append(1.0)
        elif wavelength > original / low:
            out.append(factor)
        else:
            smooth = (original / wavelength - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


@pytest.mark.parametrize("factor,low,high,theta,head_dim", [(8.0, 1.0, 4.0, 500000.0, 64), (32.0, 1.0, 4.0, 500000.0, 128),
                                                          (4.0, 2.0, 8.0, 10000.0, 64)])
def test_llama3_rope_scaling_is_recovered_from_rope_freqs(dump_binary, tmp_path, factor, low, high, theta, head_dim):
    c = dict(SMALL, hidden=head_dim * 2, heads=2, kv=1, theta=theta)
    hf = random_weights("llama", c, np.random.default_rng(1), tied=True)
    path = str(tmp_path / "llama3.gguf")
    divisors = llama3_divisors(theta, head_dim, factor, low, high, 8192)
    write_model(path, "llama", hf, c, {}, rope_freqs=divisors)
    scaling = dump(dump_binary, path, "--model")["config"]["ropeScaling"]
    assert scaling["type"] == "llama3"
    assert scaling["factor"] == pytest.approx(factor, rel=1e-6)
    assert scaling["lowFrequencyFactor"] == pytest.approx(low, rel=1e-3)
    assert scaling["highFrequencyFactor"] == pytest.approx(high, rel=1e-3)
    assert scaling["originalMaxPositions"] == 8192
    # Divisors no Llama 3 scheme produces are refused.
    bad = divisors.copy()
    bad[1] = 3.0
    write_model(path, "llama", hf, c, {}, rope_freqs=bad)
    err = dump(dump_binary, path, "--model", ok=False)
    assert err["tensor"] == "rope_freqs.weight" and "Llama 3" in err["message"]


def test_linear_rope_scaling_and_refused_schemes(dump_binary, tmp_path):
    V = gguf.GGUFValueType
    hf = random_weights("llama", SMALL, np.random.default_rng(2), tied=True)
    path = str(tmp_path / "linear.gguf")
    write_model(path, "llama", hf, SMALL, {}, extra={"llama.rope.scaling.type": ("linear", V.STRING),
                                                     "llama.rope.scaling.factor": (2.5, V.FLOAT32)})
    assert dump(dump_binary, path, "--model")["config"]["ropeScaling"] == {"type": "linear", "factor": 2.5}
    write_model(path, "llama", hf, SMALL, {}, extra={"llama.rope.scaling.type": ("yarn", V.STRING),
                                                     "llama.rope.scaling.factor": (4.0, V.FLOAT32)})
    err = dump(dump_binary, path, "--model", ok=False)
    assert "rope.scaling.type is 'yarn'" in err["message"]


# ---------------------------------------------------------------------------------------------
# Refusals: files that are not what they claim


def gguf_string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def raw_gguf(kvs=(), tensors=(), version=3, tensor_count=None, kv_count=None, alignment=32, data=b""):
    """A GGUF file byte by byte: kvs are (key, type number, packed value); tensors are (name, dims,
    type number, offset)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if tensor_count is None else tensor_count,
                                len(kvs) if kv_count is None else kv_count)
    for key, vtype, packed in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + packed
    for name, dims, ttype, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
    out += b"\0" * (-len(out) % alignment)
    return out + data


def f32(*values):
    return np.asarray(values, dtype="<f4").tobytes()


VALID = raw_gguf(kvs=[("general.architecture", 8, gguf_string("llama")), ("answer", 4, struct.pack("<I", 42))],
                 tensors=[("a", [4], 0, 0), ("b", [2, 2], 0, 32)], data=f32(1, 2, 3, 4) + b"\0" * 16 + f32(5, 6, 7, 8))


def refused(binary, tmp_path, data, *args):
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    return dump(binary, str(path), *args, ok=False)


def test_the_valid_base_file_reads(dump_binary, tmp_path):
    path = tmp_path / "ok.gguf"
    path.write_bytes(VALID)
    ours = dump(dump_binary, str(path), "--npy-dir", str(tmp_path))
    assert [t["name"] for t in ours["tensors"]] == ["a", "b"]
    assert np.array_equal(np.load(tmp_path / "b.npy"), np.float32([[5, 6], [7, 8]]))
    reader = gguf.GGUFReader(str(path))
    assert [t.name for t in reader.tensors] == ["a", "b"]


@pytest.mark.parametrize("cut", [0, 3, 10, 20, 30, 45, 60, 90, 120, len(VALID) - 20, len(VALID) - 1])
def test_truncated_files_name_the_field_and_byte(dump_binary, tmp_path, cut):
    err = refused(dump_binary, tmp_path, VALID[:cut])
    assert err["code"] == "truncated", err
    assert "truncated" in err["message"]
    if cut >= 4:
        assert "byte" in err["message"]


def test_lying_counts_and_lengths_are_refused_before_allocating(dump_binary, tmp_path):
    err = refused(dump_binary, tmp_path, raw_gguf(tensor_count=2**60))
    assert err["code"] == "truncated" and "the tensor count at byte 8 is 1152921504606846976" in err["message"]
    err = refused(dump_binary, tmp_path, raw_gguf(kv_count=2**63 + 5))
    assert err["code"] == "truncated" and "the metadata count at byte 16" in err["message"]
    huge_string = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**63) + b"key" + b"\0" * 20
    err = refused(dump_binary, tmp_path, huge_string)
    assert err["code"] == "truncated"
    assert "metadata key #0 at byte 24 claims 9223372036854775808 bytes" in err["message"]
    huge_array = raw_gguf(kvs=[("tokens", 9, struct.pack("<IQ", 8, 2**62))])
    err = refused(dump_binary, tmp_path, huge_array)
    assert err["code"] == "truncated" and "the length of metadata 'tokens'" in err["message"]
    huge_dims = raw_gguf(tensors=[("big", [2**40, 2**40], 0, 0)])
    err = refused(dump_binary, tmp_path, huge_dims)
    assert err["tensor"] == "big" and err["code"] == "malformedHeader"
    past_end = raw_gguf(tensors=[("far", [4], 0, 2**40)])
    err = refused(dump_binary, tmp_path, past_end)
    assert err["tensor"] == "far" and err["code"] == "truncated"


def test_unknown_tensor_types_are_named(dump_binary, tmp_path):
    err = refused(dump_binary, tmp_path, raw_gguf(tensors=[("w", [32], 99, 0)], data=b"\0" * 64))
    assert err["code"] == "unsupportedDtype" and err["tensor"] == "w" and "number 99" in err["message"]
    assert err["numbers"]["type"] == 99
    err = refused(dump_binary, tmp_path, raw_gguf(tensors=[("w", [32], 4, 0)], data=b"\0" * 64))
    assert "Q4_2" in err["message"] and "removed" in err["message"]
    # A type llama.cpp defines but distilld cannot convert reads as a header, and is refused on conversion.
    q2k = raw_gguf(tensors=[("w", [256], int(Q.Q2_K), 0)], data=b"\0" * 96)
    path = tmp_path / "q2k.gguf"
    path.write_bytes(q2k)
    assert dump(dump_binary, str(path))["tensors"][0]["type"] == "Q2_K"
    err = dump(dump_binary, str(path), "--npy-dir", str(tmp_path), ok=False)
    assert err["code"] == "unsupportedDtype" and err["tensor"] == "w" and "Q2_K (number 10)" in err["message"]


@pytest.mark.parametrize("data,code,words", [
    (b"GGML" + VALID[4:], "malformedHeader", "not the GGUF magic"),
    (b"GGUF" + struct.pack("<I", 1) + VALID[8:], "malformedHeader", "version 1"),
    (b"GGUF" + struct.pack(">I", 3) + VALID[8:], "malformedHeader", "big-endian"),
    (raw_gguf(kvs=[("k", 7, b"\x02")]), "malformedHeader", "bool holding 2"),
    (raw_gguf(kvs=[("k", 13, b"\0")]), "malformedHeader", "value type 13"),
    (raw_gguf(kvs=[("k", 8, gguf_string(b"\xff\xfe"))]), "malformedHeader", "not valid UTF-8"),
    (raw_gguf(kvs=[("k", 4, b"\0" * 4), ("k", 4, b"\0" * 4)]), "malformedHeader", "appears twice"),
    (raw_gguf(kvs=[("deep", 9, struct.pack("<IQ", 9, 1) * 12 + struct.pack("<IQ", 4, 0))]), "malformedHeader", "nests arrays"),
    (raw_gguf(kvs=[("general.alignment", 4, struct.pack("<I", 24))]), "malformedHeader", "power of two"),
    (raw_gguf(kvs=[("general.alignment", 10, struct.pack("<Q", 64))]), "malformedHeader", "uint32"),
    (raw_gguf(tensors=[("w", [1, 1, 1, 1, 1], 0, 0)], data=b"\0" * 32), "malformedHeader", "5 dimensions"),
    (raw_gguf(tensors=[("w", [33], 8, 0)], data=b"\0" * 64), "malformedHeader", "blocks of 32"),
    (raw_gguf(tensors=[("w", [4], 0, 0), ("w", [4], 0, 32)], data=b"\0" * 64), "malformedHeader", "repeats the name"),
    (raw_gguf(tensors=[("a", [16], 0, 0), ("b", [4], 0, 32)], data=b"\0" * 64), "badOffsets", "overlaps tensor 'a'"),
    (raw_gguf(tensors=[("a", [4], 0, 8)], data=b"\0" * 64), "badOffsets", "not a multiple of the alignment 32"),
])
def test_malformed_headers_are_refused_with_a_reason(dump_binary, tmp_path, data, code, words):
    err = refused(dump_binary, tmp_path, data)
    assert err["code"] == code, err
    assert words in err["message"], err["message"]


def write_small_llama(path, **changes):
    c = dict(SMALL, **changes.pop("config", {}))
    hf = random_weights("llama", c, np.random.default_rng(4), tied=True)
    for name in changes.pop("drop", []):
        del hf[name]
    for name, shape in changes.pop("reshape", {}).items():
        hf[name] = np.zeros(shape, dtype=np.float32)
    write_model(path, changes.pop("arch", "llama"), hf, c, changes.pop("types", {}), **changes)


def test_model_level_refusals_name_what_is_wrong(dump_binary, tmp_path):
    path = str(tmp_path / "m.gguf")
    write_small_llama(path, arch="falcon")
    err = dump(dump_binary, path, "--model", ok=False)
    assert "'falcon'" in err["message"] and "gpt2, llama, qwen2, mistral" in err["message"]

    write_small_llama(path, drop=["model.layers.1.mlp.up_proj.weight"])
    err = dump(dump_binary, path, "--model", ok=False)
    assert err["tensor"] == "blk.1.ffn_up.weight" and "model.layers.1.mlp.up_proj.weight" in err["message"]
    assert "missing" in err["message"]

    write_small_llama(path, reshape={"model.layers.0.self_attn.o_proj.weight": (64, 32)})
    err = dump(dump_binary, path, "--model", ok=False)
    assert err["code"] == "shapeMismatch" and err["tensor"] == "blk.0.attn_output.weight"
    assert "[64, 32]" in err["message"] and "[64, 64]" in err["message"]

    write_small_llama(path, tokens=41)
    err = dump(dump_binary, path, "--model", ok=False)
    assert err["code"] == "shapeMismatch" and err["tensor"] == "token_embd.weight"

    V = gguf.GGUFValueType
    write_small_llama(path, extra={"llama.vocab_size": (50, V.UINT32)})
    err = dump(dump_binary, path, "--model", ok=False)
    assert "vocab_size is 50" in err["message"] and "40 tokens" in err["message"]

    write_small_llama(path, config={"hidden": 256, "heads": 4, "kv": 2, "ffn": 256}, types={"gate_proj": Q.Q2_K})
    err = dump(dump_binary, path, "--model", ok=False)
    assert err["code"] == "unsupportedDtype" and err["tensor"] == "blk.0.ffn_gate.weight"
    assert "Q2_K" in err["message"]

    write_small_llama(path, extra={"llama.block_count": (2**40, V.UINT64)})
    err = dump(dump_binary, path, "--model", ok=False)
    assert "block_count" in err["message"]
