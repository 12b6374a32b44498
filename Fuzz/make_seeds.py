"""Writes the committed seed corpora of the fuzz targets (Fuzz/Corpus/<Target>/).

Each seed is a valid (or nearly valid) input, so that libFuzzer starts deep in the
reader instead of at its first check. The first byte of most seeds is the target's
control byte (which reader, which options): see each target's source.
Run: python3 Fuzz/make_seeds.py   (needs numpy; the files are committed).
Files named finding-* are inputs that crashed a target (README, "Fuzzing"); they are
kept by hand, not written here, so that fuzz-smoke replays them.
"""
import base64
import io
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def npy(array, version=(1, 0)):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version)
    return buf.getvalue()


def rpc(id, method, params=None):
    m = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        m["params"] = params
    return json.dumps(m, separators=(",", ":"))


def main():
    f32 = lambda a: np.asarray(a, dtype="<f4").tobytes()

    # Framing: control byte (framing, limit, piece size) + stream.
    body = rpc(1, "distilld/ping", {"payload": "hi"})
    framed = "Content-Length: %d\r\n\r\n%s" % (len(body), body)
    put("FuzzFraming", "content-length", b"\x7c" + framed.encode() * 2)
    put("FuzzFraming", "content-type", b"\x5d" + ("Content-Length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}"
                                                 "Content-Length: 2\r\nContent-Type: text/x; charset=latin1\r\n\r\n[]").encode())
    put("FuzzFraming", "junk-header", b"\x3d" + b"Bogus\r\nContent-Length: 2\r\n\r\n{}\n\nContent-Length: x\r\n\r\nContent-Length: 1\n\n1")
    put("FuzzFraming", "lines", b"\x7e" + ("%s\n\r\n  %s  \r\n" % (body, body)).encode())
    put("FuzzFraming", "lines-too-long", b"\x12" + b'{"a":"0123456789"}\n{}\n[1]')

    # Dispatch: one client's stream (lines or Content-Length), paths relative to the fixtures.
    ids = iter(range(1, 1000))
    requests = [
        ("initialize", {"initializationOptions": {"logMessages": "off"}}),
        ("distilld/ping", {"payload": [1, "x", None]}),
        ("distilld/status", None),
        ("distilld/stop", None),
        ("teacher/load", {"name": "t", "path": "t.safetensors", "options": {"vocabulary": "vocab.json"}}),
        ("teacher/load", {"name": "u", "data": {"probs": [[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]}}),
        ("teacher/list", None),
        ("teacher/info", {"name": "t"}),
        ("dataset/load", {"name": "d", "path": "p.jsonl"}),
        ("dataset/load", {"name": "c", "path": "p.csv", "format": "csv", "replace": True}),
        ("dataset/load", {"name": "i", "path": "in.txt", "kind": "inputs"}),
        ("dataset/list", None),
        ("dataset/info", {"name": "d"}),
        ("dataset/examples", {"name": "d", "offset": 0, "limit": 1}),
        ("distill/score", {"teacher": {"probs": [[0.7, 0.2, 0.1]]},
                           "students": {"A": {"probs": [[0.6, 0.3, 0.1]]}, "B": {"logits": [[1, 0, -1]]}},
                           "loss": {"name": "forward_kl", "temperature": 2}, "worst": 1, "perExample": True}),
        ("distill/score", {"teacher": "t", "students": {"s": {"logits": [[1, 2, 3], [0, 0, 1]]}}, "dataset": "d"}),
        ("distill/score", {"teacher": {"topk": {"indices": [[0, 2]], "values": [[-0.1, -2.5]], "vocab": 3}},
                           "students": {"s": {"logprobs": [[-1.2, -1.0, -1.1]]}}}),
        ("distill/score", {"teacher": {"logits": {"dtype": "float32", "shape": [1, 3],
                                                  "data": base64.b64encode(f32([1, 2, 3])).decode()}},
                           "students": {"s": {"logits": [[3, 2, 1]]}}, "loss": {"name": "js"}}),
        ("distill/sequence", {"labels": ["A", "B", "C"], "teacher": [0.8, 0.15, 0.05],
                              "students": {"S1": [0.6, 0.3, 0.1], "S2": [0.6, 0.1, 0.3]}}),
        ("distill/diagnose", {"dataset": "d", "inputs": ["The cat sat.", "It rained all day long.", "?"]}),
        ("distill/diagnose", {"dataset": "d", "inputs": {"path": "in.txt", "format": "txt"}, "nearThreshold": 0.5}),
        ("distill/explain", {"teacher": {"probs": [[0.7, 0.2, 0.1]]},
                             "students": {"A": {"probs": [[0.6, 0.3, 0.1]]}}, "labels": ["a", "b", "c"],
                             "temperatures": [0.5, 1, 2], "topK": 2}),
        ("teacher/unload", {"name": "t"}),
        ("dataset/unload", {"name": "d"}),
        ("shutdown", None),
    ]
    lines = [rpc(next(ids), m, p) for m, p in requests]
    notes = [
        json.dumps({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
        json.dumps({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 3}}),
        json.dumps({"jsonrpc": "2.0", "method": "$/setTrace", "params": {"value": "verbose"}}),
        json.dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                    "params": {"textDocument": {"uri": "file:p.jsonl", "version": 1, "text": '{"id":"a","full":"x","simplified":"x"}\n'}}}),
        json.dumps({"jsonrpc": "2.0", "method": "exit"}),
    ]
    for i, line in enumerate(lines):
        put("FuzzDispatch", "req-%02d" % i, lines[0] + "\n" + line + "\n")
    put("FuzzDispatch", "session", "\n".join(lines[:4] + notes[:3] + [lines[8], notes[3]] + lines[20:] + notes[4:]) + "\n")
    batch = "[" + ",".join(lines[1:3] + [notes[0], '{"jsonrpc":"2.0","id":9}', "1"]) + "]"
    put("FuzzDispatch", "batch", batch + "\n[]\n{\n")
    put("FuzzDispatch", "framed", "".join("Content-Length: %d\r\n\r\n%s" % (len(l), l) for l in lines[:2] + [lines[14]]))

    # MCP sessions (Protocol/README.md, MCP): the handshake, and the stateless revision's _meta.
    call = lambda name, arguments: ("tools/call", {"name": name, "arguments": arguments})
    mcp = [
        call("teacher_load", {"name": "t", "path": "t.safetensors"}),
        call("distill_explain", {"teacher": "t", "students": {"A": {"logits": [[1, 2, 3], [0, 0, 1]]}}, "example": 0}),
        call("distill_score", {"teacher": "nobody", "students": {}}),
        ("resources/list", {}),
        ("resources/read", {"uri": "distilld://teacher/t"}),
        ("resources/read", {"uri": "distilld://charts/1/temperature.svg"}),
        ("resources/templates/list", {}),
        ("ping", {}),
    ]
    cancelled = json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}})
    hello = rpc(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "f", "version": "1"}})
    put("FuzzDispatch", "mcp-handshake", "\n".join(
        [hello, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), rpc(2, "tools/list", {})]
        + [rpc(3 + i, m, p) for i, (m, p) in enumerate(mcp)] + [cancelled]) + "\n")
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
            "progressToken": "p"}
    put("FuzzDispatch", "mcp-stateless", "\n".join(
        [rpc(1, "server/discover", {"_meta": meta}), rpc(2, "tools/list", {"_meta": meta})]
        + [rpc(3 + i, m, {**p, "_meta": meta}) for i, (m, p) in enumerate(mcp)] + [cancelled]) + "\n")

    # Binary arrays: control byte (mode, rank, integers) + JSON or base64.
    def arr(dtype, shape, raw):
        return json.dumps({"dtype": dtype, "shape": shape, "data": base64.b64encode(raw).decode()})
    put("FuzzArrays", "f32", b"\x06" + arr("float32", [2, 2], f32([1, 2, 3, 4])).encode())
    put("FuzzArrays", "f16", b"\x04" + arr("float16", [3], np.asarray([1, 2, 3], "<f2").tobytes()).encode())
    put("FuzzArrays", "i64", b"\x0c" + arr("int64", [1, 2], np.asarray([5, 7], "<i8").tobytes()).encode())
    put("FuzzArrays", "bf16", b"\x02" + arr("bfloat16", [1, 1, 1], b"\x80\x3f").encode())
    put("FuzzArrays", "nested", b"\x04[[1,2.5,-3e2],[0,1,2]]")
    put("FuzzArrays", "nested-int", b"\x0c[[[1,2],[3,4]]]")
    put("FuzzArrays", "base64", b"\x01" + base64.b64encode(b"distilld!!"))

    # safetensors: control byte (teacher options) + file.
    logits = np.arange(12, dtype="<f4").reshape(2, 2, 3) / 4
    put("FuzzSafetensors", "dense", b"\x00" + safetensors(
        {"logits": ("F32", [2, 2, 3], logits.tobytes()), "mask": ("U8", [2, 2], bytes([1, 1, 1, 0]))},
        {"ids": '["a","b"]', "vocab": '["x","y","z"]'}))
    put("FuzzSafetensors", "f16-lengths", b"\x03" + safetensors(
        {"logprobs": ("F16", [2, 3], np.log(np.full((2, 3), 1 / 3)).astype("<f2").tobytes()),
         "lengths": ("I64", [2], np.asarray([1, 0], "<i8").tobytes())}))
    put("FuzzSafetensors", "topk", b"\x08" + safetensors(
        {"topk_indices": ("I32", [2, 2], np.asarray([[0, 3], [1, 2]], "<i4").tobytes()),
         "topk_probs": ("F32", [2, 2], f32([[0.6, 0.3], [0.5, 0.4]]))}, {"vocab_size": "4"}))
    put("FuzzSafetensors", "bf16-bool", b"\x05" + safetensors(
        {"probs": ("BF16", [1, 2], b"\x00\x3f\x00\x3f"), "mask": ("BOOL", [1, 1], b"\x01"), "extra": ("F8_E4M3", [1], b"\x00")}))

    # npy: control byte + file.
    put("FuzzNpy", "v1-f4", b"\x01" + npy(np.arange(6, dtype="<f4").reshape(2, 3)))
    put("FuzzNpy", "v2-f2", b"\x02" + npy(np.ones((1, 2, 2), "<f2") / 4, (2, 0)))
    put("FuzzNpy", "v3-f8", b"\x03" + npy(np.zeros((2, 2), "<f8"), (3, 0)))
    put("FuzzNpy", "i8", b"\x00" + npy(np.arange(4, dtype="<i8")))
    put("FuzzNpy", "b1", b"\x00" + npy(np.asarray([[True, False]])))

    # Datasets: control byte (reader, options) + file.
    paired = '{"id":"a","full":"The cat sat on the mat.","simplified":"The cat sat.","target":"t","label":"x"}\n' \
             '{"full":"It rained.","simplified":"Rain.","label":3}\r\n\n'
    put("FuzzDatasets", "paired-jsonl", b"\x00" + paired.encode())
    put("FuzzDatasets", "paired-csv", b"\x01" + b'id,full,simplified,target,label\r\na,"One, ""two""",One,,1\nb,"multi\nline",x,y,z\n')
    put("FuzzDatasets", "paired-tsv", b"\x81" + b"full\tsimplified\nA\tB\n")
    put("FuzzDatasets", "renamed-jsonl", b"\x40" + b'{"k":1,"f":"x","s":"y"}\n')
    put("FuzzDatasets", "inputs-jsonl", b"\x02" + b'{"input":"one"}\n{"input":"two"}\n')
    put("FuzzDatasets", "inputs-csv", b"\x03" + b'input\n"a,b"\nc\n')
    put("FuzzDatasets", "inputs-json", b"\x04" + b'[\n "one",\n "two \\" ] ,"\n]')
    put("FuzzDatasets", "lenient", b"\x05" + (paired + '{"id":"a","full":"x","simplified":"y"}\nnot json\n').encode())
    put("FuzzDatasets", "teacher-jsonl", b"\x06" + b'{"id":"a","logits":[[1,2,3]]}\n{"id":"b","logits":[[0,0,1]]}\n')
    put("FuzzDatasets", "teacher-topk", b"\x0e" + b'{"id":"a","topk":{"indices":[[0,2]],"values":[[-0.1,-2.5]],"vocab":3}}\n')
    put("FuzzDatasets", "inputs-txt", b"\x07" + b"one\n\n  \ntwo\r\n")

    # Vocabulary: control byte (file name .json or .txt) + file.
    put("FuzzVocabulary", "list", b"\x00" + b'["<pad>","the",["cat",-1.5]]')
    put("FuzzVocabulary", "tokenizer", b"\x00" + json.dumps({"model": {"vocab": {"a": 0, "b": 2}},
                                                              "added_tokens": [{"id": 5, "content": "<eos>"}]}).encode())
    put("FuzzVocabulary", "unigram", b"\x00" + json.dumps({"model": {"vocab": [["a", -1.0], ["b", -2.0]]}}).encode())
    put("FuzzVocabulary", "map", b"\x00" + b'{"x":1,"y":0}')
    put("FuzzVocabulary", "text", b"\x01" + b"[PAD]\nthe\ncat\n")

    gguf_seeds()
    template_seeds()
    tokenizer_seeds()


def gguf_seeds():
    """GGUF: control byte (bit 0: load as a model too) + file, written with the gguf package."""
    import tempfile

    import gguf
    from gguf import GGMLQuantizationType as Q

    rng = np.random.default_rng(0)

    def write(build, arch="llama"):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "f.gguf")
            w = gguf.GGUFWriter(path, arch)
            build(w)
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
            return open(path, "rb").read()

    def types(w):
        w.add_uint8("u8", 7)
        w.add_int64("i64", -3)
        w.add_float64("f64", 0.5)
        w.add_bool("flag", True)
        w.add_array("strings", ["a", "ü"])
        w.add_array("nested", [[1, 2], [3]])
        for qtype in [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q4_K, Q.Q6_K, Q.Q2_K]:
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            n = 32 if block == 1 else block
            raw = rng.integers(0, 256, size=(1, n // block * size), dtype=np.uint8)
            w.add_tensor(qtype.name, raw, raw_shape=raw.shape, raw_dtype=qtype)

    def model(arch, H, ffn, bias=False, tied=True):
        def build(w):
            V, L = 4, 1
            w.add_block_count(L)
            w.add_context_length(4)
            w.add_embedding_length(H)
            w.add_feed_forward_length(ffn)
            w.add_head_count(2)
            if arch == "gpt2":
                w.add_layer_norm_eps(1e-5)
            else:
                w.add_head_count_kv(1)
                w.add_rope_freq_base(10000.0)
                w.add_layer_norm_rms_eps(1e-6)
            w.add_tokenizer_model("gpt2")
            w.add_token_list(["a", "b", "ab", "<s>"])
            w.add_token_types([1, 1, 1, 3])
            w.add_token_merges(["a b"])
            w.add_bos_token_id(3)
            f = lambda *shape: (rng.standard_normal(shape) * 0.1).astype(np.float32)  # noqa: E731
            w.add_tensor("token_embd.weight", f(V, H))
            if arch == "gpt2":
                w.add_tensor("position_embd.weight", f(4, H))
                parts = [("attn_norm", [H]), ("attn_qkv", [3 * H, H]), ("attn_output", [H, H]), ("ffn_norm", [H]),
                         ("ffn_up", [ffn, H]), ("ffn_down", [H, ffn])]
                for role, shape in parts:
                    w.add_tensor(f"blk.0.{role}.weight", f(*shape))
                    w.add_tensor(f"blk.0.{role}.bias", f(shape[0]))
                w.add_tensor("output_norm.bias", f(H))
            else:
                D = H // 2
                parts = [("attn_norm", [H]), ("attn_q", [2 * D, H]), ("attn_k", [D, H]), ("attn_v", [D, H]),
                         ("attn_output", [H, 2 * D]), ("ffn_norm", [H]), ("ffn_gate", [ffn, H]), ("ffn_up", [ffn, H]),
                         ("ffn_down", [H, ffn])]
                for role, shape in parts:
                    w.add_tensor(f"blk.0.{role}.weight", f(*shape))
                if bias:
                    for role, n in [("attn_q", 2 * D), ("attn_k", D), ("attn_v", D)]:
                        w.add_tensor(f"blk.0.{role}.bias", f(n))
            w.add_tensor("output_norm.weight", f(H))
            if not tied:
                w.add_tensor("output.weight", f(V, H))
        return write(build, arch)

    put("FuzzGGUF", "types", b"\x00" + write(types))
    put("FuzzGGUF", "llama", b"\x01" + model("llama", 8, 8))
    put("FuzzGGUF", "qwen2-bias-untied", b"\x01" + model("qwen2", 8, 4, bias=True, tied=False))
    put("FuzzGGUF", "gpt2", b"\x01" + model("gpt2", 4, 8, tied=False))


def template_seeds():
    """Chat templates: control byte (bit 0: a system turn; bit 1: no generation prompt) + the
    template: every template the Python tests render (Tests/python/chat_templates.py)."""
    sys.path.insert(0, os.path.join(os.path.dirname(ROOT), "..", "Tests", "python"))
    import chat_templates as ct
    for i, (name, template) in enumerate(sorted(ct.TEMPLATES.items()) + [("constructs", ct.CONSTRUCTS)]):
        put("FuzzTemplate", name, bytes([i % 4]) + template.encode()[:4095])


def tokenizer_seeds():
    """tokenizer.json: control byte (which text; bit 2: decode keeping specials) + the file: each
    family of Tests/python/make_tokenizer_fixtures.py (needs `tokenizers`), its vocabulary cut
    to the tokens of up to 40 ids and the merges among them, so that it fits a 4 KiB input."""
    import tempfile
    sys.path.insert(0, os.path.join(os.path.dirname(ROOT), "..", "Tests", "python"))
    import make_tokenizer_fixtures
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_tokenizer_fixtures.build(tmp)
        for i, (name, path) in enumerate(sorted(paths.items())):
            if not path.endswith(".json"):
                continue
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            for keep in (40, 24, 12):
                model = dict(data["model"])
                vocab = {t: k for t, k in model["vocab"].items() if k < keep}
                pairs = [m if isinstance(m, list) else m.split(" ", 1) for m in model.get("merges", [])]
                model["vocab"] = vocab
                model["merges"] = [p for p in pairs if p[0] in vocab and p[1] in vocab and p[0] + p[1] in vocab]
                small = dict(data, model=model)
                small["added_tokens"] = [t for t in data.get("added_tokens", []) if t["id"] < keep + 8]
                text = json.dumps(small, ensure_ascii=False).encode()
                if len(text) < 4095:
                    put("FuzzTokenizer", name, bytes([i % 8]) + text)
                    break


if __name__ == "__main__":
    sys.exit(main())
