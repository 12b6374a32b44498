"""Dumps a GGUF file's tokenizer metadata (`tokenizer.ggml.*`) to JSON, read with the `gguf` package.

DistillTokenize builds tokenizers from this metadata as the GGUF reader in DistillModels hands it over
(GGUFTokenizerData); the tests read it here instead, with llama.cpp's own Python reader, so that the
tokenizer is checked independently of our GGUF reader. Keys lose their `tokenizer.ggml.` prefix;
`tokenizer.chat_template` becomes `chat_template`.

Usage: python3 dump_gguf_tokenizer.py FILE.gguf OUT.json
"""

import json
import sys

import gguf


def tokenizer_metadata(path):
    reader = gguf.GGUFReader(path)
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml."):
            name = key[len("tokenizer.ggml."):]
        elif key == "tokenizer.chat_template":
            name = "chat_template"
        else:
            continue
        value = field.contents()
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        out[name] = value
    return out


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(target, "w", encoding="utf-8") as f:
        json.dump(tokenizer_metadata(source), f, ensure_ascii=False)


if __name__ == "__main__":
    main()
