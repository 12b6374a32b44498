"""Protocol/ is the contract: every announced method has schemas and a section, every code is listed,
and real replies validate."""

import os
import re

from schema import ROOT, has_schema, validate_envelope, validate_result, validate

# The specification may be split over several files in Protocol/.
README = "\n".join(
    open(os.path.join(ROOT, "Protocol", name)).read()
    for name in sorted(os.listdir(os.path.join(ROOT, "Protocol"))) if name.endswith(".md"))


def test_every_announced_method_is_documented_with_schemas(checked):
    caps = checked.call("initialize", {"capabilities": {}})["capabilities"]
    for method in caps["methods"]:
        assert has_schema(method, "params"), f"no params schema for {method}"
        assert has_schema(method, "result"), f"no result schema for {method}"
        assert re.search(rf"^### `{re.escape(method)}`", README, re.M), f"no section for {method} in Protocol/README.md"
    for name, code in caps["errorCodes"].items():
        assert re.search(rf"\|\s*`?{code}`?\s*\|\s*{name}\s*\|", README), f"error {name} ({code}) missing from the table"
    for loss in caps.get("losses", []):
        assert f"`{loss}`" in README, f"loss {loss} not documented"


def test_error_replies_validate(raw):
    d = raw()
    for line in ['{"jsonrpc":"2.0","id":1,"method":"nope"}', "{bad", "[]",
                 '{"jsonrpc":"2.0","id":2,"method":"distilld/ping","params":[1]}']:
        d.send_line(line)
        validate_envelope(d.read_line())


def test_status_and_ping_validate(checked):
    checked.call("distilld/ping", {"payload": [1, {"a": None}]})
    checked.call("distilld/status", {})


def test_progress_and_log_notifications_validate(raw):
    d = raw()
    d.send_line({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"initializationOptions": {"logMessages": "debug"}}})
    seen = []
    while True:
        m = d.read_line()
        seen.append(m)
        if m.get("id") == 1:
            break
    for m in seen:
        if m.get("method") == "window/logMessage":
            validate(m["params"], "notification.logMessage.json")
        else:
            validate_envelope(m)
            validate_result("initialize", m["result"])
