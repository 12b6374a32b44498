"""Trains small tokenizers offline with the `tokenizers` package, as the references for DistillTokenize.

Each is a tokenizer.json of the shape a real model family ships, trained on a synthetic multilingual
corpus (English, code, numbers, accented Latin, Greek, Cyrillic, CJK, Arabic, Hindi, emoji) so that its
merges cover what the tests feed it:

  gpt2          byte-level BPE, GPT-2's ByteLevel pre-tokenizer, <s> $A </s>, added tokens with lstrip,
                single_word and normalized flags
  roberta       byte-level BPE with add_prefix_space, RobertaProcessing, merges as "a b" strings
  llama3        Split(Llama-3 pattern) + ByteLevel(use_regex=false), ignore_merges, <|begin_of_text|> $A
  qwen2         NFC, Split(Qwen2 pattern) + ByteLevel, ByteLevel post-processor
  smollm        Digits(individual_digits) + ByteLevel, as SmolLM's tokenizer.json
  spm           SentencePiece-style BPE as Llama-2's tokenizer.json: Prepend("▁") + Replace(" ", "▁"),
                byte fallback <0x00>..<0xFF>, fused <unk>, decoder Replace/ByteFallback/Fuse/Strip, <s> $A
  spm-metaspace the same model behind Metaspace(prepend_scheme="first", split=false), as Mistral's,
                decoder ByteFallback/Fuse/Metaspace, merges as "a b" strings, a normalized added token
  spm-unk       spm without byte fallback: characters outside the vocabulary become <unk>
  nfc, nfd, nfkc, nfkd
                a normalizer before a vocabulary of the 256 byte tokens alone, so that the ids are
                the UTF-8 bytes of the normalized text (Unicode normalization checked exactly)

and a GGUF file (spm-gguf/tiny-llama.gguf) carrying the spm vocabulary as llama.cpp metadata
(`tokenizer.ggml.model = "llama"`, scores instead of merges, token types), for the GGUF path.

Usage: python3 make_tokenizer_fixtures.py OUT_DIR   (prints the paths as JSON)
"""

import json
import os
import random
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SEEDS = [
    "The quick brown fox jumps over the lazy dog.",
    "It's what they'd said: we're here, you've seen it, I'll go, I'm sure.",
    "Knowledge distillation trains a small student to imitate a large teacher.",
    "The teacher reads the full context; the student reads a simplified input.",
    "Hello world! How are you doing today?",
    "def forward(self, x):\n    return self.linear(x) + 1\n",
    "for (int i = 0; i < n; i++) { total += values[i]; }",
    "if __name__ == \"__main__\":\n\tmain()\n",
    "SELECT name, COUNT(*) FROM users WHERE age > 30 GROUP BY name;",
    "Version 3.14.159 released on 2024-05-01 at 12:30, costs $1,299.99 (about 1200 EUR).",
    "Call 555-0123 or +1 (800) 123 4567; order #42 ships in 7 days.",
    "Café, naïve, résumé, façade, crème brûlée, Zürich, Straße, Ångström.",
    "Tiếng Việt có nhiều dấu: người, được, những, trường.",
    "Ελληνικά: καλημέρα κόσμε. Русский: привет, мир!",
    "日本語のテキストです。東京は大きな都市です。",
    "中文文本：机器学习和自然语言处理。",
    "한국어 문장입니다. 안녕하세요!",
    "العربية: مرحبا بالعالم. كيف حالك؟",
    "हिन्दी: नमस्ते दुनिया।",
    "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 🇯🇵 ❤️ 🎉",
    "Whitespace   runs\t\ttabs\n\nnew lines   and    spaces.",
    "Mixed: naïve café 東京 😀 123 x = y + 1;",
]


def corpus(lines=3000, seed=0):
    rng = random.Random(seed)
    words = " ".join(SEEDS).split()
    out = list(SEEDS) * 20
    for _ in range(lines):
        k = rng.randint(3, 14)
        out.append(" ".join(rng.choice(words) for _ in range(k)))
        out.append(rng.choice(SEEDS))
        out.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 6))) for _ in range(rng.randint(1, 4))))
    return out


def train_byte_level(tok, vocab_size, specials):
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    return tok


def rewrite(path, edit):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    edit(data)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)


def merges_as_strings(data):
    data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]


def save(tok, out, name):
    directory = os.path.join(out, name)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tokenizer.json")
    tok.save(path)
    return path


def gpt2(out):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    train_byte_level(tok, 1200, ["<|endoftext|>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.add_tokens([AddedToken("[NEW]", single_word=True), "hello world", AddedToken("<tab>", rstrip=True)])
    return save(tok, out, "gpt2")


def roberta(out):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    train_byte_level(tok, 900, ["<s>", "<pad>", "</s>", "<unk>"])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    path = save(tok, out, "roberta")
    rewrite(path, merges_as_strings)
    return path


def llama3(out):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    train_byte_level(tok, 1500, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])])
    return save(tok, out, "llama3")


def qwen2(out):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    train_byte_level(tok, 1500, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    return save(tok, out, "qwen2")


def smollm(out):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    train_byte_level(tok, 1200, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    return save(tok, out, "smollm")


BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def spm(out):
    """Llama-2's layout: <unk> <s> </s>, the 256 byte tokens, then the trained pieces."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # Trained on words (Metaspace splits at "▁"), then served as Llama-2 serves it: one piece per text.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1400, special_tokens=["<unk>", "<s>", "</s>"] + BYTE_TOKENS,
                                  limit_alphabet=160, show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    path = save(tok, out, "spm")
    # Byte tokens are ordinary vocabulary entries in Llama-2, not added tokens.
    rewrite(path, lambda data: data.update(added_tokens=[t for t in data["added_tokens"] if t["content"] not in BYTE_TOKENS]))
    return path


def spm_metaspace(out, spm_path):
    tok = Tokenizer.from_file(spm_path)
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse(), decoders.Metaspace(prepend_scheme="first")])
    tok.add_tokens(["<extra>"])
    tok.add_special_tokens([AddedToken("[INST]", special=True), AddedToken("[/INST]", special=True)])
    path = save(tok, out, "spm-metaspace")
    rewrite(path, merges_as_strings)
    return path


def spm_unk(out, spm_path):
    tok = Tokenizer.from_file(spm_path)
    tok.add_tokens(["foo bar"])  # normalized: matched as "▁foo▁bar" in the normalized text
    path = save(tok, out, "spm-unk")
    rewrite(path, lambda data: data["model"].update(byte_fallback=False))
    return path


def spm_gguf(out, spm_path):
    """The spm vocabulary as a GGUF file's llama.cpp metadata: SentencePiece scores (the later a
    piece was merged, the lower), token types, a control and a user-defined token."""
    import gguf

    with open(spm_path, encoding="utf-8") as f:
        data = json.load(f)
    vocab = data["model"]["vocab"]
    tokens = [None] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    merged = {a + b for a, b in data["model"]["merges"]}
    scores = [-float(i) if t in merged else 0.0 for i, t in enumerate(tokens)]
    types = [2 if t == "<unk>" else 3 if t in ("<s>", "</s>") else 6 if t in BYTE_TOKENS else 1 for t in tokens]
    tokens += ["<|tool|>", "<|user|>"]
    scores += [0.0, 0.0]
    types += [3, 4]
    directory = os.path.join(out, "spm-gguf")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tiny-llama.gguf")
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_block_count(1)
    writer.add_head_count(1)
    writer.add_feed_forward_length(8)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def byte_vocabulary(out, name, normalizer):
    """Byte fallback over no other token: the ids spell the normalized text byte by byte."""
    data = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
            "normalizer": {"type": normalizer}, "pre_tokenizer": None, "post_processor": None,
            "decoder": {"type": "ByteFallback"},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": True, "ignore_merges": False,
                      "vocab": {token: i for i, token in enumerate(BYTE_TOKENS)}, "merges": []}}
    directory = os.path.join(out, name)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
    Tokenizer.from_file(path)  # the reference must accept it
    return path


def build(out):
    """Writes every fixture under `out`; returns {name: path}."""
    paths = {name: make(out) for name, make in
             [("gpt2", gpt2), ("roberta", roberta), ("llama3", llama3), ("qwen2", qwen2), ("smollm", smollm),
              ("spm", spm)]}
    paths["spm-metaspace"] = spm_metaspace(out, paths["spm"])
    paths["spm-unk"] = spm_unk(out, paths["spm"])
    paths["spm-gguf"] = spm_gguf(out, paths["spm"])
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        paths[form.lower()] = byte_vocabulary(out, form.lower(), form)
    return paths


if __name__ == "__main__":
    print(json.dumps(build(sys.argv[1] if len(sys.argv) > 1 else "tokenizer-fixtures"), indent=1))
