"""An independent float64 interpolated modified Kneser–Ney, and ARPA reading and writing.

Written from Chen & Goodman, "An Empirical Study of Smoothing Techniques for Language
Modeling" (1998), section 3 and equation 26, with lmplz's conventions for sentence
boundaries and <unk>; not from the Swift code. Probabilities are computed by the
interpolation recursion itself, for any context, never through back-off weights, so
a test comparing them with an ARPA file checks that the back-off encoding is right.

Conventions (the same as lmplz's):
- each sentence is <s> w1 ... wm </s>;
- the adjusted count of an n-gram is its count at the highest order and for
  n-grams starting with <s>; otherwise the number of distinct words seen just before it;
- the unigram level is interpolated with the uniform distribution over the vocabulary
  (the words of the text, </s> and <unk>, not <s>); <unk> has adjusted count 0;
- <s> has unigram probability 1 (it is never predicted).
"""

import math
from collections import Counter, defaultdict

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


class DiscountError(ValueError):
    pass


def modified_discounts(t):
    """D1, D2, D3+ from the counts of counts t1..t4 (Chen & Goodman eq. 26), or None."""
    if any(x == 0 for x in t):
        return None
    y = t[0] / (t[0] + 2 * t[1])
    d = [j - (j + 1) * y * t[j] / t[j - 1] for j in (1, 2, 3)]
    if any(not (0 < d[j - 1] <= j) for j in (1, 2, 3)):
        return None
    return d


class KneserNey:
    def __init__(self, sentences, order, fallback=None):
        self.order = order
        padded = [[BOS] + list(s) + [EOS] for s in sentences]
        counts = {k: Counter() for k in range(1, order + 1)}
        for s in padded:
            for k in range(1, order + 1):
                for i in range(len(s) - k + 1):
                    counts[k][tuple(s[i:i + k])] += 1

        # Adjusted counts a[k][ngram].
        self.a = {order: dict(counts[order])}
        for k in range(order - 1, 0, -1):
            preceding = defaultdict(set)
            for g in counts[k + 1]:
                preceding[g[1:]].add(g[0])
            self.a[k] = {g: (c if g[0] == BOS else len(preceding[g])) for g, c in counts[k].items()}
        self.a[1].pop((BOS,), None)
        words = {w for s in sentences for w in s}
        self.vocabulary = sorted(words | {EOS, UNK})  # without <s>
        self.a[1].setdefault((UNK,), 0)

        # Discounts per order.
        self.discounts, self.counts_of_counts, self.fallback = {}, {}, {}
        for k in range(1, order + 1):
            values = Counter(self.a[k].values())
            t = [values[j] for j in (1, 2, 3, 4)]
            d = modified_discounts(t)
            self.counts_of_counts[k] = t
            self.fallback[k] = d is None
            if d is None:
                if fallback is None:
                    raise DiscountError(f"order {k}: counts of counts {t}")
                d = list(fallback)
            self.discounts[k] = d

        # Context totals S(h), and gamma(h) = sum_j D_j N_j(h) / S(h).
        self.total = {k: defaultdict(float) for k in range(1, order + 1)}
        mass = {k: defaultdict(float) for k in range(1, order + 1)}
        for k in range(1, order + 1):
            for g, a in self.a[k].items():
                if a > 0:
                    self.total[k][g[:-1]] += a
                    mass[k][g[:-1]] += self.discount(k, a)
        self.gamma = {k: {h: mass[k][h] / s for h, s in self.total[k].items()} for k in range(1, order + 1)}

    def discount(self, k, a):
        return 0.0 if a == 0 else self.discounts[k][min(a, 3) - 1]

    def prob(self, word, context=()):
        """p(word | context) by the interpolation recursion; context oldest first."""
        if word == BOS:
            return 1.0 if not context else self.prob(word, ())
        if word not in self.vocabulary:
            word = UNK
        context = tuple(UNK if (w not in self.vocabulary and w != BOS) else w for w in context)
        context = context[max(0, len(context) - (self.order - 1)):] if self.order > 1 else ()
        if not context:
            a = self.a[1].get((word,), 0)
            s = self.total[1][()]
            return (a - self.discount(1, a)) / s + self.gamma[1][()] / len(self.vocabulary)
        k = len(context) + 1
        lower = self.prob(word, context[1:])
        s = self.total[k].get(context, 0)
        if s == 0:
            return lower
        a = self.a[k].get(context + (word,), 0)
        return (a - self.discount(k, a)) / s + self.gamma[k][context] * lower

    def sentence_log10(self, words):
        history = [BOS]
        total = 0.0
        for w in list(words) + [EOS]:
            total += math.log10(self.prob(w, tuple(history)))
            history.append(w)
        return total

    def ngrams(self):
        """Every n-gram of the model with (log10 p, log10 backoff or None), per order."""
        out = {}
        for k in range(1, self.order + 1):
            table = {}
            grams = list(self.a[k]) + ([(BOS,)] if k == 1 else [])
            for g in grams:
                p = min(0.0, math.log10(self.prob(g[-1], g[:-1])))
                backoff = None
                if k < self.order and self.total[k + 1].get(g, 0) > 0:
                    backoff = math.log10(self.gamma[k + 1][g])
                table[g] = (p, backoff)
            out[k] = table
        return out

    def write_arpa(self, path, digits=6, drop_unknown=False):
        tables = self.ngrams()
        if drop_unknown:
            tables[1].pop((UNK,))
        with open(path, "w") as f:
            f.write("\\data\\\n")
            for k in range(1, self.order + 1):
                f.write(f"ngram {k}={len(tables[k])}\n")
            for k in range(1, self.order + 1):
                f.write(f"\n\\{k}-grams:\n")
                for g in sorted(tables[k]):
                    p, b = tables[k][g]
                    line = f"{p:.{digits}f}\t{' '.join(g)}"
                    if b is not None:
                        line += f"\t{b:.{digits}f}"
                    f.write(line + "\n")
            f.write("\n\\end\\\n")


def read_arpa(path):
    """{order: {ngram: (log10 p, log10 backoff or None)}} from an ARPA file (no validation)."""
    tables, order = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("ngram ") or line == "\\data\\":
                continue
            if line == "\\end\\":
                break
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:line.index("-")])
                tables[order] = {}
                continue
            fields = line.split()
            words = tuple(fields[1:1 + order])
            backoff = float(fields[1 + order]) if len(fields) > 1 + order else None
            tables[order][words] = (float(fields[0]), backoff)
    return tables
