"""The n-gram layer (Sources/DistillNGram) against kenlm and an independent Kneser–Ney.

Driven through distill-ngram-check (built next to distilld: `make python-test` builds
both; DISTILL_NGRAM_CHECK names another binary). Checked:
- sentence and per-word log10 probabilities, n-gram lengths and unknown-word flags equal
  kenlm's on committed ARPA files of orders 2 to 5 (Kneser–Ney models from
  make_ngram_fixtures.py, one without <unk>, and two written by hand with pruned
  suffixes, back-off weights on non-contexts and literal <unk>), to 1e-4;
- the Swift Kneser–Ney builder's probabilities and back-off weights equal the float64
  reference in ngram_reference.py to 1e-6 relative, and its discounts exactly;
- kenlm reads the ARPA file the builder writes and scores as the Swift scorer does;
- next-word distributions equal kenlm's word by word, and sum to 1 for built models;
- malformed ARPA files fail with an error naming the line.
"""

import json
import math
import os
import random
import subprocess

import kenlm
import pytest

from ngram_reference import BOS, UNK, KneserNey, read_arpa

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests", "python", "fixtures", "ngram")
TRAIN = os.path.join(FIXTURES, "train.txt")
SENTENCES = os.path.join(FIXTURES, "sentences.txt")

# Each committed model with the sentences it is scored on.
MODELS = {
    "kn2.arpa": "sentences.txt",
    "kn3.arpa": "sentences.txt",
    "kn3-nounk.arpa": "sentences.txt",
    "kn4.arpa": "sentences.txt",
    "kn5.arpa": "sentences.txt",
    "handwritten.arpa": "handwritten-sentences.txt",
    "handwritten4.arpa": "handwritten4-sentences.txt",
}


def tool():
    path = os.environ.get("DISTILL_NGRAM_CHECK")
    if not path:
        daemon = os.environ.get("DISTILLD") or os.path.join(ROOT, ".build", "release", "distilld")
        path = os.path.join(os.path.dirname(daemon), "distill-ngram-check")
    if not os.path.exists(path):
        pytest.fail(f"distill-ngram-check not found at {path}; build it: swift build -c release --product distill-ngram-check")
    return path


def run(*args, ok=True):
    r = subprocess.run([tool(), *map(str, args)], capture_output=True, text=True, timeout=120)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def json_lines(text):
    return [json.loads(line) for line in text.splitlines()]


def kenlm_model(path):
    return kenlm.Model(path)


def read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def training_sentences():
    return [line.split() for line in read_lines(TRAIN)]


def kenlm_full(model, sentence):
    return [(p, n, oov) for p, n, oov in model.full_scores(sentence)]


def assert_scores_match_kenlm(swift_rows, model, sentences):
    assert len(swift_rows) == len(sentences)
    for row, sentence in zip(swift_rows, sentences):
        reference = kenlm_full(model, sentence)
        assert len(row["words"]) == len(reference), sentence
        for (p, n, oov), (kp, kn, koov) in zip(row["words"], reference):
            assert p == pytest.approx(kp, abs=1e-4), sentence
            assert (n, oov) == (kn, koov), sentence
        assert row["total"] == pytest.approx(model.score(sentence), abs=1e-4), sentence
        assert row["perplexity"] == pytest.approx(model.perplexity(sentence), rel=1e-4), sentence


def test_kenlm_is_importable():
    assert hasattr(kenlm, "Model")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_scores_match_kenlm(name):
    arpa = os.path.join(FIXTURES, name)
    sentences_path = os.path.join(FIXTURES, MODELS[name])
    rows = json_lines(run("score", arpa, sentences_path).stdout)
    assert_scores_match_kenlm(rows, kenlm_model(arpa), read_lines(sentences_path))


def test_fixtures_exercise_unknown_words_long_ngrams_and_fillers():
    """The comparisons above are only worth something if the sentences reach unknown
    words, the highest order, and (hand-written files) suffixes kenlm fills in."""
    for name, sentences in MODELS.items():
        model = kenlm_model(os.path.join(FIXTURES, name))
        scored = [s for line in read_lines(os.path.join(FIXTURES, sentences)) for s in kenlm_full(model, line)]
        assert any(oov for _, _, oov in scored), name
        assert max(n for _, n, _ in scored) == model.order, name
    # "b c" is not listed in handwritten.arpa, but "a b c" is: kenlm reports length 2 for it.
    hand = kenlm_model(os.path.join(FIXTURES, "handwritten.arpa"))
    assert kenlm_full(hand, "b c a")[1][1] == 2
    # Without <unk>, kenlm prices an unknown word at -100.
    nounk = kenlm_model(os.path.join(FIXTURES, "kn3-nounk.arpa"))
    assert kenlm_full(nounk, "qwerty")[0][0] < -99


def compare_with_reference(arpa, reference, order):
    """Every n-gram of the written model against the reference's interpolation recursion."""
    tables = read_arpa(arpa)
    expected = reference.ngrams()
    assert sorted(tables) == list(range(1, order + 1))
    worst = 0.0
    for k in range(1, order + 1):
        assert set(tables[k]) == set(expected[k]), f"order {k}: n-gram sets differ"
        for gram, (logp, backoff) in tables[k].items():
            ref_p, ref_b = expected[k][gram]
            if gram == (BOS,):
                assert logp == 0.0
            else:
                p = reference.prob(gram[-1], gram[:-1])
                assert 10**logp == pytest.approx(p, rel=1e-6), gram
                worst = max(worst, abs(10**logp / p - 1))
            if ref_b is None:
                assert backoff is None, gram
            else:
                assert backoff is not None, gram
                assert 10**backoff == pytest.approx(reference.gamma[k + 1][gram], rel=1e-6), gram
    return worst


def assert_discounts(summary, reference, order):
    for k in range(1, order + 1):
        assert summary["countsOfCounts"][k - 1] == reference.counts_of_counts[k]
        assert summary["fallback"][k - 1] == reference.fallback[k]
        assert summary["discounts"][k - 1] == pytest.approx(reference.discounts[k], rel=1e-12)


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_builder_matches_independent_kneser_ney(order, tmp_path):
    arpa = tmp_path / f"built{order}.arpa"
    out = json_lines(run("build", "--order", order, TRAIN, arpa, "--score", SENTENCES).stdout)
    summary, in_memory = out[0], out[1:]
    reference = KneserNey(training_sentences(), order)
    assert_discounts(summary, reference, order)
    compare_with_reference(arpa, reference, order)
    sentences = read_lines(SENTENCES)
    # The reference's own sentence probabilities (interpolation, no back-off) agree too.
    for row, sentence in zip(in_memory, sentences):
        assert row["total"] == pytest.approx(reference.sentence_log10(sentence.split()), abs=1e-9), sentence
    if order >= 2:  # kenlm has no unigram-only models
        model = kenlm_model(str(arpa))
        assert_scores_match_kenlm(in_memory, model, sentences)
        reread = json_lines(run("score", arpa, SENTENCES).stdout)
        assert_scores_match_kenlm(reread, model, sentences)
        assert [r["total"] for r in reread] == pytest.approx([r["total"] for r in in_memory], abs=1e-12)


def random_corpus(seed, sentences=300, vocabulary=40):
    """Zipf-distributed words: varied counts of counts at every order."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocabulary)]
    weights = [1 / (i + 1) for i in range(vocabulary)]
    return [" ".join(rng.choices(words, weights, k=rng.randint(0, 12))) for _ in range(sentences)]


@pytest.mark.parametrize("seed,order", [(1, 3), (2, 4), (3, 2), (4, 1)])
def test_builder_on_random_text_with_fallback_discounts(seed, order, tmp_path):
    text = random_corpus(seed)
    train = tmp_path / "train.txt"
    train.write_text("\n".join(text) + "\n")
    arpa = tmp_path / "model.arpa"
    summary = json_lines(run("build", "--order", order, "--fallback", "0.5,1,1.5", train, arpa).stdout)[0]
    reference = KneserNey([s.split() for s in text], order, fallback=[0.5, 1, 1.5])
    assert_discounts(summary, reference, order)
    compare_with_reference(arpa, reference, order)
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("\n".join(text[:40] + ["w1 w2 w3 w999", "w999", ""]) + "\n")
    rows = json_lines(run("score", arpa, sentences).stdout)
    for row, sentence in zip(rows, read_lines(sentences)):
        assert row["total"] == pytest.approx(reference.sentence_log10(sentence.split()), abs=1e-9), sentence
    if order >= 2:  # kenlm has no unigram-only models
        assert_scores_match_kenlm(rows, kenlm_model(str(arpa)), read_lines(sentences))


def test_builder_refuses_text_without_discounts_and_special_tokens(tmp_path):
    train = tmp_path / "tiny.txt"
    train.write_text("a b c\na b\n")
    r = run("build", "--order", "3", train, tmp_path / "x.arpa", ok=False)
    assert r.returncode == 1 and "counts of counts" in r.stderr and "discountFallback" in r.stderr
    assert not (tmp_path / "x.arpa").exists()
    summary = json_lines(run("build", "--order", "3", "--fallback", "0.5,1,1.5", train, tmp_path / "x.arpa").stdout)[0]
    reference = KneserNey([["a", "b", "c"], ["a", "b"]], 3, fallback=[0.5, 1, 1.5])
    assert_discounts(summary, reference, 3)
    compare_with_reference(tmp_path / "x.arpa", reference, 3)

    train.write_text("a b\nc <s> d\n")
    r = run("build", "--order", "2", "--fallback", "0.5,1,1.5", train, tmp_path / "y.arpa", ok=False)
    assert r.returncode == 1 and "sentence 2" in r.stderr and "<s>" in r.stderr
    run("build", "--order", "2", "--fallback", "0.5,1,1.5", "--skip-special", train, tmp_path / "y.arpa")
    assert "<s> d" not in (tmp_path / "y.arpa").read_text()


def kenlm_distribution(model, vocabulary, context):
    state, out = kenlm.State(), kenlm.State()
    model.BeginSentenceWrite(state)
    for w in context:
        model.BaseScore(state, w, out)
        state, out = out, state
    result = []
    for w in vocabulary:
        result.append(-math.inf if w == BOS else model.BaseScore(state, w, out))
    return result


@pytest.mark.parametrize("name", ["kn4.arpa", "handwritten.arpa", "built"])
def test_next_word_distribution_matches_kenlm(name, tmp_path):
    if name == "built":
        arpa = tmp_path / "built.arpa"
        run("build", "--order", 3, TRAIN, arpa)
    else:
        arpa = os.path.join(FIXTURES, name)
    model = kenlm_model(str(arpa))
    contexts = ["", "the", "it small", "it small today old", "zebra", "a b", "sofa tree the"]
    path = tmp_path / "contexts.txt"
    path.write_text("\n".join(contexts) + "\n")
    out = json_lines(run("distribution", arpa, path).stdout)
    vocabulary = out[0]["vocabulary"]
    assert UNK in vocabulary and len(set(vocabulary)) == len(vocabulary)
    for context, row in zip(contexts, out[1:]):
        expected = kenlm_distribution(model, vocabulary, context.split())
        assert row["log10"] == pytest.approx(expected, abs=1e-4), context
        if name != "handwritten.arpa":  # Kneser–Ney models are distributions over the vocabulary
            assert math.fsum(10**x for x in row["log10"]) == pytest.approx(1, abs=1e-5), context


# Malformed files: each case edits the order-3 fixture and names the line the error
# must cite (found in the edited text, not taken from the tool's output).
def edit_cases():
    with open(os.path.join(FIXTURES, "kn3.arpa")) as f:
        base = f.read().splitlines()

    def index(pred, start=0):
        return next(i for i in range(start, len(base)) if pred(base[i]))

    header2 = index(lambda l: l.startswith("ngram 2="))
    count2 = int(base[header2].split("=")[1])
    sec2 = index(lambda l: l == "\\2-grams:")
    sec3 = index(lambda l: l == "\\3-grams:")
    end = index(lambda l: l == "\\end\\")
    first2, first3 = sec2 + 1, sec3 + 1
    last2 = sec3 - 2  # the blank line comes before \3-grams:
    cases = {}

    def case(name, lines, line_index, *phrases):
        cases[name] = ("\n".join(lines) + "\n", line_index + 1, phrases)

    lines = list(base)
    lines[header2] = f"ngram 2={count2 + 1}"
    case("fewer entries than the header says", lines, sec3, "comes after", f"announces {count2 + 1}")
    lines = list(base)
    lines[header2] = f"ngram 2={count2 - 1}"
    case("more entries than the header says", lines, last2, "more entries than")
    lines = base[:sec3 - 1] + base[end:]
    case("a missing section", lines, sec3 - 1, "\\3-grams: was expected")
    lines = list(base)
    lines[first2] = "abc\t" + lines[first2].split("\t", 1)[1]
    case("a non-numeric probability", lines, first2, "log10 probability \"abc\"")
    lines = list(base)
    fields = lines[first2].split("\t")
    lines[first2] = "\t".join(fields[:2] + ["x1"])
    case("a non-numeric back-off", lines, first2, "back-off weight \"x1\"")
    lines = list(base)
    lines[first2] = "nan\t" + lines[first2].split("\t", 1)[1]
    case("a NaN probability", lines, first2, "not a number")
    lines = list(base)
    lines[first2] = "0.5\t" + lines[first2].split("\t", 1)[1]
    case("a positive probability", lines, first2, "positive")
    lines = base[:first3 + 3]
    case("a truncated file", lines, first3 + 2, "ends", "after 3 of", "truncated")
    lines = base[:end]
    case("no \\end\\", lines, end - 1, "before \\end\\")
    lines = list(base)
    lines[first2] = "-0.5\t" + base[first3].split("\t")[1]
    case("a 3-gram among the 2-grams", lines, first2, "wrong order", "3 word(s)")
    lines = list(base)
    lines[first2 + 1] = lines[first2]
    case("a duplicate 2-gram", lines, first2 + 1, "duplicate 2-gram", f"first on line {first2 + 1}")
    lines = list(base)
    lines[first2] = lines[first2].split("\t")[0] + "\tzebra " + lines[first2].split("\t")[1].split()[1]
    case("a word that is no 1-gram", lines, first2, "\"zebra\"", "not a 1-gram")
    lines = list(base)
    lines[first3] = lines[first3] + "\t-0.25"
    case("a back-off weight at the highest order", lines, first3, "highest order has none")
    lines = ["# comment"] + base
    case("text before \\data\\", lines, 0, "expected \\data\\")
    lines = base + ["extra"]
    case("text after \\end\\", lines, len(base), "after \\end\\")
    lines = list(base)
    lines[header2] = "ngram 2=many"
    case("a count that is not a number", lines, header2, "\"many\"")
    lines = list(base)
    lines[header2] = "ngram 3=5"
    case("orders out of sequence", lines, header2, "without gaps")
    # Remove the context of the first 3-gram: the error cites that 3-gram's line.
    first_trigram = base[first3].split("\t")[1].split()
    context = " ".join(first_trigram[:2])
    drop = index(lambda l: l.split("\t")[1:2] == [context], sec2)
    lines = list(base)
    lines[header2] = f"ngram 2={count2 - 1}"
    del lines[drop]
    case("a 3-gram whose context is missing", lines, first3 - 1, f"the context \"{context}\"", "is not a 2-gram")
    return cases


EDIT_CASES = edit_cases()


@pytest.mark.parametrize("name", sorted(EDIT_CASES))
def test_malformed_arpa_names_the_line(name, tmp_path):
    text, line, phrases = EDIT_CASES[name]
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    sentences = tmp_path / "s.txt"
    sentences.write_text("a\n")
    r = run("score", path, sentences, ok=False)
    assert r.returncode == 1, r.stdout
    assert r.stdout == ""
    assert f"{path} line {line}:" in r.stderr, r.stderr
    for phrase in phrases:
        assert phrase in r.stderr, r.stderr


def test_unreadable_files_are_named(tmp_path):
    sentences = tmp_path / "s.txt"
    sentences.write_text("a\n")
    r = run("score", tmp_path / "missing.arpa", sentences, ok=False)
    assert r.returncode == 1 and "missing.arpa" in r.stderr and "no such file" in r.stderr
    r = run("score", tmp_path, sentences, ok=False)
    assert r.returncode == 1 and "not a regular file" in r.stderr
    gz = tmp_path / "m.arpa.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 16)
    r = run("score", gz, sentences, ok=False)
    assert r.returncode == 1 and "gzip" in r.stderr
