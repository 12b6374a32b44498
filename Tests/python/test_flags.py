"""Numeric flags (issue #10): a number that is out of range, negative, NaN or infinite is a usage
error (argument-parser's exit code 64) with a message naming the flag, never a trap."""

import json
import subprocess

import pytest


def run(distilld, *args, env=None, timeout=20):
    return subprocess.run([distilld, *args], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)


# ----------------------------------------------------------------------------- numeric flags

@pytest.mark.parametrize("args, words", [
    (["--memory-budget", "9999999999999999999999"], b"too large"),
    (["--memory-budget", "99999999999T"], b"too large"),
    (["--memory-budget", "-1"], b"--memory-budget"),
    (["--memory-budget", "nan"], b"--memory-budget"),
    (["--memory-budget", "inf"], b"--memory-budget"),
    (["--max-message-bytes", "9999999999999999999999"], b"--max-message-bytes"),
    (["--max-message-bytes=-5"], b"--max-message-bytes"),
    (["--max-message-bytes", "0"], b"--max-message-bytes"),
    (["--idle-timeout=-1"], b"--idle-timeout"),
    (["--idle-timeout", "nan"], b"--idle-timeout"),
    (["--idle-timeout", "inf"], b"--idle-timeout"),
    (["--idle-timeout", "1e999"], b"--idle-timeout"),
    (["--progress-after=-1"], b"--progress-after"),
    (["--progress-after", "nan"], b"--progress-after"),
    (["--progress-after", "inf"], b"--progress-after"),
    (["connect", "--idle-timeout", "nan"], b"--idle-timeout"),
    (["connect", "--idle-timeout=-3"], b"--idle-timeout"),
])
def test_bad_numbers_are_usage_errors(distilld, args, words):
    p = run(distilld, *args)
    assert p.returncode == 64, (p.returncode, p.stderr)  # argument-parser's usage-error code (EX_USAGE)
    assert words in p.stderr, p.stderr
    assert b"Fatal error" not in p.stderr and b"Usage:" in p.stderr


def test_large_numbers_that_fit_are_accepted(distilld):
    p = subprocess.run([distilld, "--memory-budget", "8000000T", "--idle-timeout", "0", "--progress-after", "1e9"],
                       capture_output=True, timeout=20,
                       input=b'{"jsonrpc":"2.0","id":1,"method":"distilld/status"}\n')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["result"]["memory"]["budgetBytes"] == 8000000 << 40
