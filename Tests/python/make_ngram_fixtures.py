"""Writes the n-gram fixtures in Tests/python/fixtures/ngram (run from anywhere):

- train.txt: a small deterministic corpus from a random Markov chain, repetitive enough that
  every order up to 5 has n-grams seen 1, 2, 3 and 4 times (so Kneser–Ney discounts exist);
- kn2.arpa … kn5.arpa: interpolated modified Kneser–Ney models of it, computed by the
  independent float64 reference in ngram_reference.py, written with 6 decimals;
- kn3-nounk.arpa: the order-3 model without its <unk> line, for kenlm's missing-<unk> rule;
- sentences.txt: test sentences, with unknown words, blank and oddly spaced lines.

handwritten.arpa is written by hand (pruned like SRILM: suffixes left out, back-off
weights on n-grams that are no context) and is not generated here.
"""

import os
import random

from ngram_reference import KneserNey

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ngram")

WORDS = (
    "the a cat dog bird man house tree river mat saw liked ran sat on to at "
    "big small red old today again and then she he it"
).split()


def corpus(n=90, seed=1):
    """Sentences from a random Markov chain in which each word has three successors
    (weights 0.6, 0.25, 0.15): skewed enough that 5-grams repeat."""
    rng = random.Random(seed)
    successors = {w: rng.sample(WORDS, 3) for w in WORDS + ["<s>"]}
    out = []
    for _ in range(n):
        word, sentence = "<s>", []
        while True:
            word = rng.choices(successors[word], weights=[0.6, 0.25, 0.15])[0]
            sentence.append(word)
            if (len(sentence) >= 3 and rng.random() < 0.2) or len(sentence) >= 10:
                break
        out.append(" ".join(sentence))
    return out


ODD_SENTENCES = [
    "a zebra sat on the mat",
    "qwerty",
    "",
    "  the   dog\tsaw  the river  ",
    "she she she she she",
    "unknown words everywhere here",
]


def test_sentences(lines):
    """Training sentences as they are, with an unknown word put in, reversed and run
    together (so long n-grams match and back off), then odd ones."""
    rng = random.Random(7)
    out = list(lines[:6])
    for line in lines[6:12]:
        words = line.split()
        words[rng.randrange(len(words))] = rng.choice(["zebra", "sofa", "xylophone"])
        out.append(" ".join(words))
    out += [" ".join(reversed(line.split())) for line in lines[12:15]]
    out += [lines[15] + " " + lines[16], lines[17] + " " + lines[18] + " " + lines[19]]
    return out + ODD_SENTENCES

def main():
    os.makedirs(HERE, exist_ok=True)
    lines = corpus()
    with open(os.path.join(HERE, "train.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(HERE, "sentences.txt"), "w") as f:
        f.write("\n".join(test_sentences(lines)) + "\n")
    sentences = [line.split() for line in lines]
    for order in (2, 3, 4, 5):
        model = KneserNey(sentences, order)  # raises if any order lacks discounts
        model.write_arpa(os.path.join(HERE, f"kn{order}.arpa"))
        if order == 3:
            model.write_arpa(os.path.join(HERE, "kn3-nounk.arpa"), drop_unknown=True)


if __name__ == "__main__":
    main()
