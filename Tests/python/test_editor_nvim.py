"""README's Neovim set-up, run for real: headless nvim with the snippet from README.md as its
init.lua, against the shared daemon (`distilld connect`) on a private runtime directory. The
client attaches to a .jsonl buffer and the dataset's diagnostics arrive. Skipped without nvim
(`make deps` installs Debian's neovim, 0.7.2 on Debian 12)."""

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import ROOT, daemon_path, wait_for

NVIM = shutil.which("nvim")
pytestmark = pytest.mark.skipif(NVIM is None, reason="nvim is not installed")
DISTILL = os.path.join(ROOT, "Clients", "distill")

IDENTICAL = {"id": "same", "full": "The cat sat on the mat.", "simplified": "the cat sat on the mat"}
GOOD = {"id": "good", "full": "the dog ran across the wide green park to fetch the ball", "simplified": "the dog ran"}

# Runs after the file is open: waits for diagnostics, writes what nvim saw, quits.
CHECK = r"""
local out = assert(io.open(vim.env.NVIM_CHECK_OUT, "w"))
local ok = vim.wait(20000, function() return #vim.diagnostic.get(0) > 0 end, 50)
local clients = {}
local attached = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = 0 }) or vim.lsp.buf_get_clients(0)
for _, c in pairs(attached) do table.insert(clients, c.name) end
local diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(diagnostics, { lnum = d.lnum, code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code),
                              severity = d.severity, message = d.message })
end
out:write(vim.fn.json_encode({ filetype = vim.bo.filetype, clients = clients, waited = ok, diagnostics = diagnostics }))
out:close()
vim.cmd("qa!")
"""


def readme_snippets():
    """The Lua blocks of README.md's editor section, with the version each is for."""
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text[text.index("## In an editor"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```lua\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "README's editor section should give a Lua snippet for Neovim 0.8+ and one for 0.7"
    return {"0.8+": blocks[0], "0.7": blocks[1]}


def nvim_version():
    out = subprocess.run([NVIM, "--version"], capture_output=True, text=True, timeout=30).stdout
    major, minor = re.match(r"NVIM v(\d+)\.(\d+)", out).groups()
    return int(major), int(minor)


@pytest.fixture
def shared_env():
    runtime = tempfile.mkdtemp(prefix="distilld-rt-")
    os.chmod(runtime, 0o700)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.path.abspath(daemon_path())) + os.pathsep + env.get("PATH", "")
    env.pop("DISTILLD", None)
    env.pop("DISTILL_PRIVATE", None)
    env["XDG_RUNTIME_DIR"] = runtime
    yield env
    subprocess.run([DISTILL, "shutdown"], env=env, capture_output=True, timeout=30)
    wait_for(lambda: not os.path.exists(os.path.join(runtime, "distilld", "distilld.sock")), timeout=5)
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.parametrize("which", ["0.7", "0.8+"])
def test_readme_neovim_snippet_attaches_and_shows_diagnostics(which, shared_env, tmp_path):
    if which == "0.8+" and nvim_version() < (0, 8):
        pytest.skip("this nvim predates vim.lsp.start")
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps(GOOD) + "\n" + json.dumps(IDENTICAL) + "\n")
    loaded = subprocess.run([DISTILL, "dataset", "load", "pairs", str(data)], env=shared_env, capture_output=True,
                            text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    init = tmp_path / "init.lua"
    init.write_text(readme_snippets()[which])
    check = tmp_path / "check.lua"
    check.write_text(CHECK)
    out = tmp_path / "out.json"
    env = dict(shared_env, NVIM_CHECK_OUT=str(out), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_STATE_HOME=str(tmp_path / "state"))
    p = subprocess.run([NVIM, "--headless", "-u", str(init), "-i", "NONE", str(data), "-c", f"luafile {check}"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.exists(), (p.returncode, p.stdout, p.stderr)
    seen = json.loads(out.read_text())
    assert seen["filetype"] == "jsonl"
    assert seen["clients"] == ["distilld"]
    assert seen["waited"] is True, seen
    assert [(d["lnum"], d["code"]) for d in seen["diagnostics"]] == [(1, "identical-simplification")], seen
