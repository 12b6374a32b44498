"""The editor path driven by a real LSP client (pytest-lsp on pygls): a JSON Lines file that is
the source of a loaded paired dataset gets its findings as textDocument/publishDiagnostics on
didOpen, didChange and didSave, an empty list on didClose, and the loaded dataset never changes.

pytest-asyncio runs in its default strict mode here: the module-level `pytestmark` marks these
tests (and only these) as asyncio tests; no pytest.ini or conftest change is needed."""

import asyncio
import json
import os
import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ROOT  # noqa: E402
from schema import validate  # noqa: E402

pytestmark = pytest.mark.asyncio

DISTILLD = os.environ.get("DISTILLD") or os.path.join(ROOT, ".build", "release", "distilld")
TIMEOUT = 10


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[DISTILLD]))
async def client(lsp_client: LanguageClient):
    lsp_client.init_result = await lsp_client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


GOOD = {"id": "good", "full": "the dog ran across the wide green park to fetch the ball", "simplified": "the dog ran"}
IDENTICAL = {"id": "same", "full": "The cat sat on the mat.", "simplified": "the cat sat on the mat"}
EMPTY = {"id": "empty", "full": "a story about rain", "simplified": "   "}
UNRELATED = {"id": "far", "full": "the cat sat on the mat", "simplified": "quantum hadrons"}
NOID = {"full": "rain fell all night on the tin roof", "simplified": "rain fell"}


def jsonl(*records):
    """One record per line; a str is written as is (blank or broken lines)."""
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


async def request(client, method, params):
    """A custom (non-LSP) request through pygls' generic request API; the result as plain JSON."""
    result = await asyncio.wait_for(client.protocol.send_request_async(method, params), TIMEOUT)
    return plain(client, result)


def plain(client, value):
    """lsprotocol/pygls objects back to JSON-like Python values."""
    value = client.protocol._converter.unstructure(value)
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: plain(client, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(client, v) for v in value]
    if hasattr(value, "_fields"):
        return plain(client, value._asdict())
    return value


async def diagnostics_after(client, send):
    """Sends a notification and returns the next publishDiagnostics params as plain JSON, schema-checked."""
    waiter = client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    send()
    params = await asyncio.wait_for(waiter, TIMEOUT)
    raw = plain(client, params)
    validate(raw, "notification.publishDiagnostics.json")
    return raw


def summary(published):
    return sorted((d["code"], d["range"]["start"]["line"], d["severity"]) for d in published["diagnostics"])


async def load(client, path, name="ds"):
    return await request(client, "dataset/load", {"name": name, "path": str(path)})


def open_doc(client, uri, text, version=1, language="jsonl"):
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))


def change_doc(client, uri, text, version):
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


# ---------------------------------------------------------------- tests

async def test_server_announces_full_text_sync(client: LanguageClient):
    sync = client.init_result.capabilities.text_document_sync
    assert sync.open_close is True
    assert sync.change == types.TextDocumentSyncKind.Full
    assert sync.save.include_text is True
    assert client.init_result.server_info.name == "distilld"
    ping = await request(client, "distilld/ping", {"payload": "editor"})
    assert ping == {"pong": True, "payload": "editor"}


async def test_open_change_save_close(client: LanguageClient, tmp_path):
    path = tmp_path / "pairs.jsonl"
    text = jsonl(GOOD, IDENTICAL, "", EMPTY, UNRELATED)
    path.write_text(text)
    info = await load(client, path)
    assert info["count"] == 4
    uri = path.as_uri()

    # didOpen: findings on the lines of the examples (0-based; the blank line 3 counts)
    pub = await diagnostics_after(client, lambda: open_doc(client, uri, text, version=1))
    assert pub["uri"] == uri and pub["version"] == 1
    assert summary(pub) == [("empty-simplified", 3, 1), ("identical-simplification", 1, 2), ("unrelated-simplification", 4, 2)]
    for d in pub["diagnostics"]:
        assert d["source"] == "distilld"
        assert d["range"] == {"start": {"line": d["range"]["start"]["line"], "character": 0},
                              "end": {"line": d["range"]["start"]["line"] + 1, "character": 0}}
    by_code = {d["code"]: d for d in pub["diagnostics"]}
    assert by_code["identical-simplification"]["data"]["exampleId"] == "same"
    assert by_code["unrelated-simplification"]["data"]["tokenOverlap"] == 0
    assert client.diagnostics[uri]  # pytest-lsp's own record agrees

    # didChange (full text): fixing two pairs leaves one finding; the blank line is gone, so lines move up
    fixed = jsonl(GOOD, dict(IDENTICAL, simplified="the cat sat"), EMPTY, UNRELATED)
    pub = await diagnostics_after(client, lambda: change_doc(client, uri, fixed, version=2))
    assert pub["version"] == 2
    assert summary(pub) == [("empty-simplified", 2, 1), ("unrelated-simplification", 3, 2)]
    clean = jsonl(GOOD, dict(IDENTICAL, simplified="the cat sat"))
    pub = await diagnostics_after(client, lambda: change_doc(client, uri, clean, version=3))
    assert pub["diagnostics"] == []

    # didSave with the text: the saved text is what is checked
    pub = await diagnostics_after(client, lambda: client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri), text=jsonl(GOOD, UNRELATED))))
    assert summary(pub) == [("unrelated-simplification", 1, 2)]

    # didClose: an empty list clears the editor
    pub = await diagnostics_after(client, lambda: client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri))))
    assert pub == {"uri": uri, "diagnostics": []}
    assert list(client.diagnostics[uri]) == []

    # the loaded dataset never changed, and neither did the file
    after = await request(client, "dataset/info", {"name": "ds"})
    assert after["count"] == 4
    examples = await request(client, "dataset/examples", {"name": "ds"})
    assert [e["id"] for e in examples["examples"]] == ["good", "same", "empty", "far"]
    assert examples["examples"][1]["simplified"] == IDENTICAL["simplified"]
    assert path.read_text() == text


async def test_save_without_text_rereads_the_buffer(client: LanguageClient, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(jsonl(GOOD, IDENTICAL))
    await load(client, path)
    uri = path.as_uri()
    pub = await diagnostics_after(client, lambda: open_doc(client, uri, jsonl(GOOD, IDENTICAL)))
    assert summary(pub) == [("identical-simplification", 1, 2)]
    pub = await diagnostics_after(client, lambda: change_doc(client, uri, jsonl(IDENTICAL, GOOD, IDENTICAL | {"id": "s2"}), 2))
    assert summary(pub) == [("identical-simplification", 0, 2), ("identical-simplification", 2, 2)]
    # a save that carries no text checks the last text the editor sent
    pub = await diagnostics_after(client, lambda: client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri))))
    assert summary(pub) == [("identical-simplification", 0, 2), ("identical-simplification", 2, 2)]


async def test_unreadable_lines_duplicate_and_missing_ids(client: LanguageClient, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(jsonl(GOOD))
    await load(client, path)
    uri = path.as_uri()
    text = jsonl(GOOD, '{"id": "broken", "full": "no closing brace"', ["not", "an", "object"],
                 {"id": "nosimp", "full": "only a full context"}, NOID, dict(GOOD, full="another dog story, different"))
    pub = await diagnostics_after(client, lambda: open_doc(client, uri, text))
    got = summary(pub)
    assert ("unreadable-line", 1, 1) in got and ("unreadable-line", 2, 1) in got and ("unreadable-line", 3, 1) in got
    assert ("missing-id", 4, 2) in got
    assert ("duplicate-id", 5, 1) in got
    assert len(got) == 5, got
    by_line = {d["range"]["start"]["line"]: d for d in pub["diagnostics"]}
    assert by_line[1]["data"]["reason"] == "badLine" and "not JSON" in by_line[1]["message"]
    assert by_line[5]["data"]["reason"] == "duplicateId" and "line 1" in by_line[5]["message"]
    # the load of the real file is untouched
    assert (await request(client, "dataset/info", {"name": "ds"}))["count"] == 1


async def test_files_that_are_not_loaded_datasets_get_nothing(client: LanguageClient, tmp_path):
    other = tmp_path / "notes.jsonl"
    other.write_text(jsonl(IDENTICAL))
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(jsonl({"input": "the cat sat"}))
    await request(client, "dataset/load", {"name": "trained", "path": str(inputs), "kind": "inputs"})
    ds = tmp_path / "pairs.jsonl"
    ds.write_text(jsonl(IDENTICAL))
    await load(client, ds)
    open_doc(client, other.as_uri(), jsonl(IDENTICAL))                          # not loaded
    open_doc(client, inputs.as_uri(), jsonl({"input": "x"}))                     # an input list, not paired
    open_doc(client, "untitled:Untitled-1", jsonl(IDENTICAL))                   # not a file
    # the daemon handles the notifications in order: once the dataset's diagnostics arrive, the others were skipped
    pub = await diagnostics_after(client, lambda: open_doc(client, ds.as_uri(), jsonl(IDENTICAL)))
    assert pub["uri"] == ds.as_uri() and summary(pub) == [("identical-simplification", 0, 2)]
    assert set(client.diagnostics) == {ds.as_uri()}


async def test_a_dataset_loaded_after_the_file_was_opened(client: LanguageClient, tmp_path):
    path = tmp_path / "late.jsonl"
    path.write_text(jsonl(GOOD, UNRELATED))
    uri = path.as_uri()
    open_doc(client, uri, path.read_text())
    await load(client, path, name="late")
    pub = await diagnostics_after(client, lambda: change_doc(client, uri, path.read_text(), 2))
    assert summary(pub) == [("unrelated-simplification", 1, 2)]
    await request(client, "dataset/unload", {"name": "late"})
    # unloaded: edits publish nothing any more; close still clears
    change_doc(client, uri, jsonl(IDENTICAL), 3)
    pub = await diagnostics_after(client, lambda: client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri))))
    assert pub == {"uri": uri, "diagnostics": []}


async def test_percent_encoded_uri(client: LanguageClient, tmp_path):
    d = tmp_path / "a dir é"
    d.mkdir()
    path = d / "my pairs.jsonl"
    path.write_text(jsonl(IDENTICAL))
    await load(client, path)
    uri = path.as_uri()
    assert "%20" in uri
    pub = await diagnostics_after(client, lambda: open_doc(client, uri, jsonl(IDENTICAL)))
    assert pub["uri"] == uri and summary(pub) == [("identical-simplification", 0, 2)]
