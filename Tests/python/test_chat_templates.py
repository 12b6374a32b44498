"""Prompt formats for models reading a dataset (issue #13): `params.prompt` as a separator, a
template with placeholders, or each model's own chat template.

Chat templates are rendered by distilld's own Jinja subset (Sources/DistillTemplate). The
reference is jinja2 configured exactly as transformers configures it (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, its raise_exception, strftime_now and tojson), and transformers'
`apply_chat_template` itself for SmolLM2, whose template distilld reads from the GGUF metadata.
The renderings are fetched through `model/tokenize` with `chat`; the templates other than
SmolLM2's (chat_templates.py) are given to a tiny Hugging Face directory's tokenizer_config.json.

Teacher-forced scoring with `{"chat": true}` is checked against transformers' logits on
`apply_chat_template(..., add_generation_prompt=True)` ids followed by the target's ids, in float64.
"""
import datetime
import json
import os
import shutil
import tempfile

import jinja2
import jinja2.ext
import jinja2.sandbox
import numpy as np
import pytest

import chat_templates as ct
from distilld import Client, RPCError
from schema import CheckedClient
from test_text_scoring import SMOLLM2, TOLERANCE

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import make_tiny_models  # noqa: E402
from test_model_methods import train_tiny_tokenizer  # noqa: E402


def jinja_render(template, messages, bos="<s>", eos="</s>"):
    """The template rendered as transformers renders chat templates (its environment, its globals)."""
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda format: datetime.datetime.now().strftime(format)
    env.globals["namespace"] = jinja2.utils.Namespace
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, tools=None, documents=None, bos_token=bos, eos_token=eos)


def rpc_error(client, method, params):
    with pytest.raises(RPCError) as info:
        client.client.call(method, params)
    return info.value


# ---------------------------------------------------------------- SmolLM2: the GGUF's own template


@pytest.fixture(scope="module")
def reference(smollm2_reference):
    """transformers' tokenizer and model on the same file (conftest.py: loaded once a session)."""
    return smollm2_reference


@pytest.fixture(scope="module")
def daemon(distilld):
    c = Client.start(distilld)
    checked = CheckedClient(c)
    checked.call("model/load", {"name": "smol", "path": SMOLLM2})
    checked.call("dataset/load", {"name": "demo", "path": "builtin:demo"})
    load_few(checked, 6)
    yield checked
    c.close()


def load_few(daemon, limit):
    """The first `limit` demo pairs as the dataset "few"; returns them."""
    examples = daemon.call("dataset/examples", {"name": "demo", "limit": limit})["examples"]
    fields = ("id", "full", "simplified", "target")
    daemon.call("dataset/load", {"name": "few", "replace": True, "examples": [{k: e[k] for k in fields} for e in examples]})
    return examples


USER_TEXTS = ["Hello there", "  spaces at both ends  ", "two\nlines, quotes ' \" and é ✓", ""]


@pytest.mark.parametrize("system", [None, "You answer in one word."])
def test_smollm2_chat_renders_and_tokenises_as_transformers(daemon, reference, system):
    tokenizer = reference[0]
    assert daemon.call("model/info", {"name": "smol"})["chatTemplate"] is True
    for text in USER_TEXTS:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        want_text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        want_ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        want_ids = want_ids["input_ids"] if isinstance(want_ids, dict) or hasattr(want_ids, "keys") else want_ids
        got = daemon.call("model/tokenize", {"model": "smol", "text": text, "chat": {"system": system} if system else True})
        assert got["text"] == want_text
        assert got["tokens"] == list(want_ids)
        # The GGUF's template, rendered by jinja2 the transformers way, is the same text.
        assert got["text"] == jinja_render(tokenizer.chat_template, messages, tokenizer.bos_token, tokenizer.eos_token)


def chat_ids(tokenizer, text):
    ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=True, add_generation_prompt=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def rows_after(model, context_ids, target_ids):
    """float64 log-softmax rows predicting each target token after `context_ids`."""
    ids = context_ids + target_ids[:-1]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()
    rows = logits[len(context_ids) - 1:len(context_ids) - 1 + len(target_ids)]
    rows = rows - rows.max(axis=1, keepdims=True)
    return rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))


def check_forward_kl(daemon, reference, prompt, context_ids, limit=6):
    tokenizer, model = reference
    examples = load_few(daemon, limit)
    result = daemon.call("distill/score", {
        "teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}, "dataset": "few", "prompt": prompt,
        "loss": {"name": "forward_kl"}})
    student = result["students"][0]
    kls, contexts = [], [0, 0]
    for e, got in zip(examples, student["perExample"]):
        tgt = tokenizer(e["target"], add_special_tokens=False)["input_ids"]
        full, simple = context_ids(e, "full"), context_ids(e, "simplified")
        t, s = rows_after(model, full, tgt), rows_after(model, simple, tgt)
        kl = (np.exp(t) * (t - s)).sum(axis=1)
        kls.append(kl)
        contexts[0] += len(full)
        contexts[1] += len(simple)
        assert got["id"] == e["id"]
        assert abs(got["loss"] - kl.mean()) < TOLERANCE, (e["id"], got["loss"], kl.mean())
    assert abs(student["loss"] - np.concatenate(kls).mean()) < TOLERANCE
    assert result["prompt"]["contextTokens"] == {"teacher": contexts[0], "students": {"S": contexts[1]}}
    assert np.concatenate(kls).mean() > 0.01  # the contexts differ: a check that could fail
    return result


def test_chat_scoring_matches_transformers_apply_chat_template(daemon, reference):
    tokenizer = reference[0]
    result = check_forward_kl(daemon, reference, {"chat": True}, lambda e, side: chat_ids(tokenizer, e[side]))
    assert result["prompt"]["kind"] == "chat" and result["prompt"]["chat"] is True
    assert "separator" not in result["prompt"]


def test_chat_with_a_system_message(daemon, reference):
    tokenizer = reference[0]
    system = "You complete sentences."

    def ids(e, side):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": e[side]}]
        out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        return list(out["input_ids"] if hasattr(out, "keys") else out)

    result = check_forward_kl(daemon, reference, {"chat": {"system": system}}, ids, limit=3)
    assert result["prompt"]["chat"] == {"system": system}


def test_behaviour_reads_the_chat_format_too(daemon, reference):
    """distill/diagnose's behaviour with prompt {chat}: the student's NLL of each target after the
    rendered chat of x and of x′, against transformers' apply_chat_template."""
    tokenizer, model = reference
    examples = load_few(daemon, 3)
    b = daemon.call("distill/diagnose", {"dataset": "few", "behaviour": {"student": "smol", "prompt": {"chat": True}},
                                         "maxExamples": 10})["behaviour"]
    assert b["prompt"] == {"kind": "chat", "chat": True}
    for e, got in zip(examples, b["examples"]):
        tgt = tokenizer(e["target"], add_special_tokens=False)["input_ids"]
        for side, key in (("full", "nllFull"), ("simplified", "nllSimplified")):
            rows = rows_after(model, chat_ids(tokenizer, e[side]), tgt)
            assert abs(got[key] - (-rows[np.arange(len(tgt)), tgt]).mean()) < TOLERANCE, (e["id"], side)
    err = rpc_error(daemon, "distill/diagnose", {"dataset": "few", "behaviour": {
        "student": "smol", "separator": "\n", "prompt": {"chat": True}}})
    assert err.code == -32602 and err.data["field"] == "params.behaviour.prompt"


def test_template_placeholders_match_manual_formatting(daemon, reference):
    tokenizer = reference[0]
    template = "Context ({id}): {input}\nBoth: {full} | {simplified} {{braces}}\nAnswer: "

    def ids(e, side):
        text = (f"Context ({e['id']}): {e[side]}\nBoth: {e['full']} | {e['simplified']} {{braces}}\nAnswer: ")
        return tokenizer(text)["input_ids"]  # with special tokens, as a separator's context

    result = check_forward_kl(daemon, reference, {"template": template}, ids, limit=4)
    assert result["prompt"]["kind"] == "template" and result["prompt"]["template"] == template


def test_separator_echo_is_unchanged(daemon):
    result = daemon.call("distill/score", {
        "teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}, "dataset": "few",
        "prompt": {"separator": " "}, "loss": {"name": "forward_kl"}})
    assert result["prompt"]["separator"] == " " and "kind" not in result["prompt"]


def test_generation_prompts_are_the_rendered_chat(daemon, reference):
    tokenizer = reference[0]
    examples = daemon.call("dataset/examples", {"name": "few", "limit": 2})["examples"]
    result = daemon.call("teacher/generate", {
        "model": "smol", "dataset": "few", "n": 1, "maxTokens": 1, "limit": 2, "context": "simplified",
        "prompt": {"chat": True}})
    for e, got in zip(examples, result["examples"]):
        want = tokenizer.apply_chat_template(
            [{"role": "user", "content": e["simplified"]}], tokenize=False, add_generation_prompt=True)
        assert got["prompt"] == want


def test_export_under_a_chat_template_records_it_and_matches_transformers(daemon, reference, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    tokenizer, model = reference
    examples = daemon.call("dataset/examples", {"name": "few", "limit": 3})["examples"]
    out = str(tmp_path / "chat.safetensors")
    daemon.call("teacher/export", {"model": "smol", "dataset": "few", "path": out, "k": 5, "prompt": {"chat": True}})
    with safe_open(out, "np") as f:
        metadata = f.metadata()
    assert json.loads(metadata["prompt"]) == {"kind": "chat", "chat": True} and "separator" not in metadata
    tensors = load_file(out)
    for i, e in enumerate(examples):
        tgt = tokenizer(e["target"], add_special_tokens=False)["input_ids"]
        rows = rows_after(model, chat_ids(tokenizer, e["full"]), tgt)
        for j in range(len(tgt)):
            # The five best by transformers' values (ids may swap only between near-equal values).
            indices, values = tensors["topk_indices"][i, j], tensors["topk_logprobs"][i, j]
            assert np.abs(rows[j][indices] - values).max() < TOLERANCE, (e["id"], j)
            assert np.abs(np.sort(rows[j])[::-1][:5] - values).max() < TOLERANCE, (e["id"], j)


def test_bad_prompts_are_refused_before_anything_runs(daemon):
    before = daemon.call("model/list", {})
    base = {"teacher": {"model": "smol"}, "students": {"S": {"model": "smol"}}, "dataset": "few"}
    for template, named in [("Q: {question}\nA: ", "{question}"), ("{input", "never closed"), ("x } y", "closes no"),
                            ("{}", "{}")]:
        e = rpc_error(daemon, "distill/score", {**base, "prompt": {"template": template}})
        assert e.code == -32602 and e.data["field"] == "params.prompt.template", template
        assert named in e.message, (template, e.message)
    e = rpc_error(daemon, "distill/score", {**base, "prompt": {"template": "{input}", "separator": "\n"}})
    assert e.code == -32602 and e.data["field"] == "params.prompt" and "separator and template" in e.message
    e = rpc_error(daemon, "distill/score", {**base, "prompt": {"chat": False}})
    assert e.code == -32602 and e.data["field"] == "params.prompt.chat"
    e = rpc_error(daemon, "distill/score", {**base, "prompt": {"chat": {"sistem": "x"}}})
    assert e.code == -32602 and e.data["field"] == "params.prompt.chat.sistem"
    # A student without a chat template (an n-gram model) is named.
    from conftest import ROOT
    daemon.call("model/load", {"name": "words", "path": os.path.join(ROOT, "Tests", "python", "fixtures", "ngram", "kn3.arpa"),
                               "replace": True})
    assert daemon.call("model/info", {"name": "words"})["chatTemplate"] is False
    e = rpc_error(daemon, "teacher/generate", {"model": "words", "dataset": "few", "prompt": {"chat": True}})
    assert e.code == -32602 and e.data["field"] == "params.prompt.chat" and "'words' has no chat template" in e.message
    e = rpc_error(daemon, "model/tokenize", {"model": "words", "text": "a", "chat": True})
    assert e.code == -32602 and e.data["field"] == "params.chat" and e.data["model"] == "words"
    daemon.call("model/unload", {"name": "words"})
    assert daemon.call("model/list", {}) == before


# ---------------------------------------------------------------- other templates, in a tiny directory


@pytest.fixture(scope="module")
def tiny(distilld):
    root = tempfile.mkdtemp(prefix="distill-chat-templates-")
    try:
        model_dir = make_tiny_models.make(os.path.join(root, "models"), ["llama-tied"])["llama-tied-f32"]
        tokenizer = train_tiny_tokenizer(os.path.join(root, "tokenizer"))
        c = Client.start(distilld)
        checked = CheckedClient(c)

        def load(name, config, files=None):
            directory = os.path.join(root, name)
            shutil.copytree(model_dir, directory)
            shutil.copy(tokenizer, os.path.join(directory, "tokenizer.json"))
            with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
                json.dump(config, f)
            for file, text in (files or {}).items():
                with open(os.path.join(directory, file), "w") as f:
                    f.write(text)
            checked.call("model/load", {"name": name, "path": directory})
            return directory

        yield checked, load
        c.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


CHATS = [(None, "Hello there"), ("Be terse.", "  Quoted 'x' and \"y\"\nnext line é ✓  ")]


@pytest.mark.parametrize("name", sorted(ct.TEMPLATES) + ["constructs"])
def test_templates_render_as_jinja2_renders_them(tiny, name):
    client, load = tiny
    template = ct.CONSTRUCTS if name == "constructs" else ct.TEMPLATES[name]
    # Special tokens as tokenizer_config.json gives them: a string, and an AddedToken object.
    eos = {"__type": "AddedToken", "content": "</s>", "lstrip": False, "normalized": False, "rstrip": False,
           "single_word": False, "special": True}
    directory = load(name, {"chat_template": template, "bos_token": "<s>", "eos_token": eos})
    assert client.call("model/info", {"name": name})["chatTemplate"] is True
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    for system, user in CHATS:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        chat = {"system": system} if system else True
        try:
            want = jinja_render(template, messages)
        except jinja2.exceptions.TemplateError as e:
            # The template refuses (Gemma takes no system turn): distilld says so with its message.
            err = rpc_error(client, "model/tokenize", {"model": name, "text": user, "chat": chat})
            assert err.code == -32602 and err.data["field"] == "params.chat" and str(e) in err.message
            continue
        # transformers itself on the same directory agrees with the jinja2 set-up above.
        assert hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == want
        got = client.call("model/tokenize", {"model": name, "text": user, "chat": chat})
        assert got["text"] == want, name


def test_a_list_of_named_templates_uses_the_default(tiny):
    client, load = tiny
    load("named", {"chat_template": [{"name": "tool_use", "template": "TOOLS {{ messages[0].content }}"},
                                     {"name": "default", "template": ct.PHI3}], "eos_token": "</s>"})
    got = client.call("model/tokenize", {"model": "named", "text": "hi", "chat": True})
    assert got["text"] == jinja_render(ct.PHI3, [{"role": "user", "content": "hi"}], bos=None, eos="</s>")


UNSUPPORTED = [
    ("{% macro m() %}x{{ caller() }}{% endmacro %}\n{% call m() %}y{% endcall %}", "'call' statement", 2),
    ("{{ bos_token }}\n{% for m in messages %}\n{{ m.content | wordwrap(5) }}{% endfor %}", "filter 'wordwrap'", 3),
    ("line one\n{{ messages | groupby('role') }}", "filter 'groupby'", 2),
    ("{{ messages[0].content.format(1) }}", "method 'format'", 1),
    ("{% set c = cycler('a', 'b') %}", "function 'cycler'", 1),
    ("{% for m in messages %}{{ m.content }}", "endfor", 1),
]


@pytest.mark.parametrize("template,construct,line", UNSUPPORTED)
def test_unsupported_constructs_are_named_with_their_line(tiny, template, construct, line):
    client, load = tiny
    name = f"bad{UNSUPPORTED.index((template, construct, line))}"
    load(name, {"chat_template": template})
    err = rpc_error(client, "model/tokenize", {"model": name, "text": "hi", "chat": True})
    assert err.code == -32602 and err.data["field"] == "params.chat" and err.data["line"] == line
    assert construct in err.message and f"'{name}'" in err.message, err.message
    # jinja2 refuses or cannot render these the transformers way either, or distilld names what it lacks.
    client.call("dataset/load", {"name": "pair", "replace": True,
                                 "examples": [{"id": "a", "full": "x y", "simplified": "y", "target": "z"}]})
    err = rpc_error(client, "distill/score", {
        "teacher": {"model": name}, "students": {"S": {"model": name}}, "dataset": "pair", "prompt": {"chat": True}})
    assert err.code == -32602 and err.data["field"] == "params.prompt.chat"


def test_a_hostile_template_is_an_error_and_the_daemon_keeps_serving(tiny):
    """A template from a model file is code the daemon runs: one that wraps a list in a list a
    million times (which once overflowed the stack and ended the daemon), loops forever or
    recurses through a macro gets an error naming it, and the same client goes on."""
    client, load = tiny
    hostile = {
        "deep": ("{% set ns = namespace(x=1) %}{% for i in range(1000000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                 "{{ ns.x|length }}", "nests lists and dictionaries more than 128 deep"),
        "spin": ("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}",
                 "more than 1000000 loop iterations"),
        "recurse": ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "macros call each other more than 100 deep"),
    }
    for name, (template, message) in hostile.items():
        load(name, {"chat_template": template})
        err = rpc_error(client, "model/tokenize", {"model": name, "text": "hi", "chat": True})
        assert err.code == -32602 and err.data["field"] == "params.chat" and message in err.message, err.message
    assert client.call("model/tokenize", {"model": "deep", "text": "hi"})["tokens"]


def test_a_directory_without_a_chat_template_is_named(tiny):
    client, load = tiny
    load("plain", {"bos_token": "<s>", "eos_token": "</s>"})
    assert client.call("model/info", {"name": "plain"})["chatTemplate"] is False
    err = rpc_error(client, "model/tokenize", {"model": "plain", "text": "hi", "chat": True})
    assert err.code == -32602 and "'plain' has no chat template" in err.message


def test_a_chat_template_file_comes_before_the_configuration(tiny):
    """transformers itself, on the same directory: chat_template.jinja wins over tokenizer_config.json's
    chat_template, and the special tokens come from the configuration files."""
    client, load = tiny
    directory = load("jinja", {"chat_template": "CONFIG {{ messages[0].content }}", "eos_token": "</s>"},
                     files={"chat_template.jinja": ct.ZEPHYR + "\n", "special_tokens_map.json": json.dumps({"bos_token": "<s>"})})
    reference = transformers.AutoTokenizer.from_pretrained(directory)
    for system, user in CHATS:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        want = reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        got = client.call("model/tokenize", {"model": "jinja", "text": user, "chat": {"system": system} if system else True})
        assert got["text"] == want
        assert want.startswith("<|system|>" if system else "<|user|>")


def test_teacher_and_student_each_render_their_own_template(tiny):
    """Two models of one vocabulary with different chat templates: each context is its own
    model's rendering, tokenised without added special tokens (counted against transformers)."""
    client, load = tiny
    teacher = load("teach", {"chat_template": ct.CHATML, "eos_token": "</s>"})
    student = load("stud", {"chat_template": ct.PHI3, "eos_token": "</s>"})
    examples = [{"id": "a", "full": "the cat sat on the mat", "simplified": "the mat", "target": " and slept"},
                {"id": "b", "full": "a bird in the hand", "simplified": "a bird", "target": " is worth two"}]
    client.call("dataset/load", {"name": "pairs2", "replace": True, "examples": examples})
    result = client.call("distill/score", {
        "teacher": {"model": "teach"}, "students": {"S": {"model": "stud"}}, "dataset": "pairs2",
        "prompt": {"chat": True}, "loss": {"name": "forward_kl"}})

    def tokens(directory, side):
        hf = transformers.AutoTokenizer.from_pretrained(directory)
        total = 0
        for e in examples:
            text = hf.apply_chat_template([{"role": "user", "content": e[side]}], tokenize=False, add_generation_prompt=True)
            total += len(hf(text, add_special_tokens=False)["input_ids"])
        return total

    assert result["prompt"]["contextTokens"] == {
        "teacher": tokens(teacher, "full"), "students": {"S": tokens(student, "simplified")}}
    # The same student under the teacher's template reads other contexts: the templates are not shared.
    assert tokens(teacher, "simplified") != tokens(student, "simplified")
