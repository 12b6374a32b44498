"""DistillTokenize against the references: the `tokenizers` package for tokenizer.json files, transformers
for GGUF files (the tokenizer `from_pretrained(dir, gguf_file=...)` builds).

The tokenizers are trained here, offline, by make_tokenizer_fixtures.py, one per family shape (GPT-2,
RoBERTa, Llama-3, Qwen2, SmolLM, Llama-2 SentencePiece, Mistral-style Metaspace, <unk> without byte
fallback, a llama GGUF), and the four Unicode normalizers before a vocabulary of byte tokens alone. The
real model is SmolLM2-135M-Instruct's Q4_1 GGUF file (`make models`, or DISTILLD_SMOLLM2_GGUF).

distill-tokenize (Sources/distill-tokenize) runs our side: token ids and pieces must equal the
reference's `ids` and `tokens` exactly, and decoding (with and without special tokens) its `decode`.
"""

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dump_gguf_tokenizer  # noqa: E402
import make_tokenizer_fixtures  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

JSON_FIXTURES = ["gpt2", "roberta", "llama3", "qwen2", "smollm", "spm", "spm-metaspace", "spm-unk", "nfc", "nfd", "nfkc",
                 "nfkd"]

TEXTS = [
    "",
    "Hello world!",
    "The quick brown fox jumps over the lazy dog. It's what they'd said; we're sure you've seen it.",
    "IT'S THEY'D WE'RE I'LL YOU'VE I'M 'S 'T it'ſ",
    "def forward(self, x):\n    return self.linear(x) + 1\n",
    "for (int i = 0; i < n; i++) {\n\ttotal += values[i];\n}\n",
    "x=1;y=22;z=333;w=4444;v=55555 3.14159 -0.5e10 1,299.99 2024-05-01 #42",
    "0 12 345 6789 00000 ١٢٣ ½ Ⅻ ①②",
    "a  b   c    d\t\te\n\nf \n g\r\nh \t \n  i   ",
    "   leading and trailing   ",
    "\n\n\n",
    " ",
    "  1  22   333",
    "Café naïve résumé façade crème brûlée Zürich Straße Ångström",
    "Cafe\u0301 nai\u0308ve re\u0301sume\u0301 e\u0301\u0301 a\u0300\u0301\u0302 \u0301leading mark",
    "x\u030d\u0f73 a\u1df8\u0347 \u0344 \u212b\u2126 \ufb01 \uff76\uff9e \u1100\u1161\u11a8 \u00bd \u2460 \ufdfa",
    "Tiếng Việt: người, được, những, trường",
    "Ελληνικά: καλημέρα κόσμε. Русский: привет, мир!",
    "日本語のテキストです。東京は大きな都市です。中文文本：机器学习。한국어 문장입니다.",
    "العربية: مرحبا بالعالم. كيف حالك؟ हिन्दी: नमस्ते दुनिया।",
    "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ 🎉 🏳️‍🌈 ✌🏿",
    "Mixed: naïve café 東京 😀 123 x = y + 1; ▁already▁metaspace",
    "Zero\u200bwidth\u200djoiner\u00a0nbsp\u3000ideographic\u2028line\u2029para\u0085nel",
    "Control \x00 \x01 \x7f and private \ue000 and noncharacter \ufdd0 and astral \U0001f600\U0002a6d6",
    "<s>Hello</s> <s> a </s>",
    "<|endoftext|>Hello<|endoftext|> world <|im_start|>user\nHi there<|im_end|>\n",
    "<|begin_of_text|>Hi<|eot_id|><|end_of_text|>",
    "Hello <mask> world<mask>  <mask>",
    "hello world, hello worlds, Hello world",
    "[NEW] x[NEW] [NEW]y ([NEW])",
    "a<tab>   b <tab>",
    "[INST] What is 2+2? [/INST] Four.",
    "foo bar foobar foo  bar <extra> x<extra>y",
    "<unk> <0x41> <|tool|> <|user|> ▁",
]


def binary():
    path = os.environ.get("DISTILL_TOKENIZE") or os.path.join(ROOT, ".build", "release", "distill-tokenize")
    if not os.path.exists(path):
        pytest.fail(f"distill-tokenize not found at {path}; run `make release` first")
    return path


class Driver:
    """One distill-tokenize process holding one tokenizer."""

    def __init__(self, load):
        self.proc = subprocess.Popen([binary()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     encoding="utf-8")
        self.info = self.request(load)

    def request(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "distill-tokenize exited"
        reply = json.loads(line)
        if "error" in reply:
            raise AssertionError(reply["error"])
        return reply

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class HFReference:
    """A `tokenizers` Tokenizer (ids, tokens, decode)."""

    def __init__(self, backend):
        self.backend = backend

    def run(self, text, add_special):
        encoding = self.backend.encode(text, add_special_tokens=add_special)
        return {"ids": encoding.ids, "pieces": encoding.tokens,
                "decoded": self.backend.decode(encoding.ids, skip_special_tokens=False),
                "decodedSkippingSpecial": self.backend.decode(encoding.ids, skip_special_tokens=True)}

    def decode(self, ids, skip_special):
        return self.backend.decode(ids, skip_special_tokens=skip_special)


class TransformersReference(HFReference):
    """transformers' tokenizer for a GGUF file; its own `input_ids` must agree with its backend's."""

    def __init__(self, tokenizer):
        super().__init__(tokenizer.backend_tokenizer)
        self.tokenizer = tokenizer

    def run(self, text, add_special):
        result = super().run(text, add_special)
        assert self.tokenizer(text, add_special_tokens=add_special)["input_ids"] == result["ids"]
        return result


def transformers_gguf(path):
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))


@pytest.fixture(scope="session")
def fixture_paths(tmp_path_factory):
    return make_tokenizer_fixtures.build(str(tmp_path_factory.mktemp("tokenizers")))


def gguf_pair(path, tmp_dir, reference=None):
    dump = os.path.join(tmp_dir, os.path.basename(path) + ".tokenizer.json")
    with open(dump, "w", encoding="utf-8") as f:
        json.dump(dump_gguf_tokenizer.tokenizer_metadata(path), f, ensure_ascii=False)
    return Driver({"loadGGUF": dump}), TransformersReference(reference or transformers_gguf(path))


SMOLLM2 = os.environ.get("DISTILLD_SMOLLM2_GGUF") or os.path.join(
    ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def pairs(fixture_paths, tmp_path_factory, smollm2_reference):
    """{name: (driver, reference)} for every fixture and SmolLM2 (whose transformers tokenizer is
    the session's, conftest.smollm2_reference, read from the same GGUF file)."""
    from tokenizers import Tokenizer
    out = {name: (Driver({"load": fixture_paths[name]}), HFReference(Tokenizer.from_file(fixture_paths[name])))
           for name in JSON_FIXTURES}
    tmp = str(tmp_path_factory.mktemp("gguf"))
    out["spm-gguf"] = gguf_pair(fixture_paths["spm-gguf"], tmp)
    out["smollm2"] = gguf_pair(SMOLLM2, tmp, reference=smollm2_reference[0])
    yield out
    for driver, _ in out.values():
        driver.close()


def mismatches(driver, reference, texts):
    """Every (text, addSpecial) whose ids, pieces or decodings differ, with both sides."""
    found = []
    for text in texts:
        for add_special in (False, True):
            ours = driver.request({"text": text, "addSpecial": add_special})
            expected = reference.run(text, add_special)
            for key in ("ids", "pieces", "decoded", "decodedSkippingSpecial"):
                if ours[key] != expected[key]:
                    found.append((text, add_special, key, ours[key], expected[key]))
    return found


def report(found):
    lines = [f"{len(found)} mismatches; first ones:"]
    for text, add_special, key, ours, expected in found[:5]:
        lines.append(f"  text={text!r} addSpecial={add_special} {key}:\n    ours     {ours!r}\n    expected {expected!r}")
    return "\n".join(lines)


@pytest.mark.parametrize("name", JSON_FIXTURES + ["spm-gguf"])
def test_text_set_matches_reference(pairs, name):
    driver, reference = pairs[name]
    found = mismatches(driver, reference, TEXTS)
    assert not found, report(found)


def test_smollm2_gguf_matches_transformers(pairs):
    driver, reference = pairs["smollm2"]
    assert driver.info == {"kind": "byteLevelBPE", "vocabSize": 49152, "bos": 1, "eos": 2}
    found = mismatches(driver, reference, TEXTS)
    assert not found, report(found)


def test_tokenizer_facts(pairs):
    """Kind, vocabulary size, bos and eos as the references state them."""
    for name, (driver, reference) in pairs.items():
        backend = reference.backend
        kind = "byteLevelBPE" if name in ("gpt2", "roberta", "llama3", "qwen2", "smollm", "smollm2") else "sentencePieceBPE"
        assert driver.info["kind"] == kind, name
        assert driver.info["vocabSize"] == max(backend.get_vocab(with_added_tokens=True).values()) + 1, name
    assert pairs["gpt2"][0].info["bos"] == pairs["gpt2"][1].backend.token_to_id("<s>")
    assert pairs["gpt2"][0].info["eos"] == pairs["gpt2"][1].backend.token_to_id("</s>")
    assert pairs["llama3"][0].info["bos"] == pairs["llama3"][1].backend.token_to_id("<|begin_of_text|>")
    assert pairs["spm-gguf"][0].info["bos"] == pairs["spm-gguf"][1].tokenizer.bos_token_id
    assert pairs["spm-gguf"][0].info["eos"] == pairs["spm-gguf"][1].tokenizer.eos_token_id


# Fragments that stress the patterns: contractions in any case, space before digits, marks, line breaks.
FRAGMENTS = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "'s", "'S", "'ll", "'Re", "ſ", "1", "123", "٣",
             "é", "e\u0301", "\u0301", "😀", "👨‍👩‍👧", "🇫🇷", "東京", "مرحبا", "▁", "Ġ", "<s>", "</s>", "<mask>",
             "<|endoftext|>", "<|im_start|>", "[INST]", "<0x41>", "hello world", "foo bar", "a", "The", "x=1;",
             "\u0f73", "\u0344", "\u0347", "\u1df8", "\uff9e", "\u30ab", "\u1100\u1161", "\u00c5", "\u212b", "\ufb01"]

texts = st.lists(st.one_of(st.characters(codec="utf-8"), st.sampled_from(FRAGMENTS), st.text(max_size=5)),
                 max_size=24).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_random_text_matches_reference(pairs, text):
    found = []
    for name, (driver, reference) in pairs.items():
        found += [(name,) + m for m in mismatches(driver, reference, [text])]
    assert not found, report([m[1:] for m in found]) + f"\n  in {[m[0] for m in found]}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_ids_decode_as_reference(pairs, data):
    """Any id sequence, including cut UTF-8 sequences and ids outside the vocabulary."""
    for name, (driver, reference) in pairs.items():
        size = driver.info["vocabSize"]
        ids = data.draw(st.lists(st.integers(min_value=0, max_value=size + 3), max_size=16), label=name)
        for skip in (False, True):
            ours = driver.request({"decode": ids, "skipSpecial": skip})["text"]
            assert ours == reference.decode(ids, skip), (name, ids, skip)
