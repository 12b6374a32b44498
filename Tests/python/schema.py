"""Validates the daemon's real replies against Protocol/schemas, so the contract cannot drift."""

import json
import os

import jsonschema
from referencing import Registry, Resource

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMAS = os.path.join(ROOT, "Protocol", "schemas")


def _load_all():
    out = {}
    for name in os.listdir(SCHEMAS):
        if name.endswith(".json"):
            with open(os.path.join(SCHEMAS, name)) as f:
                out[name] = json.load(f)
    return out


_ALL = _load_all()
_REGISTRY = Registry().with_resources([(name, Resource.from_contents(s)) for name, s in _ALL.items()])


def schema_name(method: str, part: str) -> str:
    return method.replace("/", ".").replace("$.", "") + f".{part}.json"


def has_schema(method: str, part: str) -> bool:
    return schema_name(method, part) in _ALL


def validate(instance, name: str):
    schema = _ALL[name]
    jsonschema.Draft202012Validator(schema, registry=_REGISTRY).validate(instance)


def validate_envelope(message: dict):
    validate_ref(message, "common.json#/$defs/response")
    if "error" in message and message["error"]["code"] == -32602:
        validate_ref(message["error"].get("data"), "common.json#/$defs/invalidParamsData")
    if "error" in message and message["error"]["code"] in (1001, 1002, 1007):
        validate_ref(message["error"].get("data"), "common.json#/$defs/unknownNameData")
    if "error" in message and message["error"]["code"] == -32800 and "data" in message["error"]:
        validate_ref(message["error"]["data"], "common.json#/$defs/cancelledScoreData")


def validate_ref(instance, ref: str):
    jsonschema.Draft202012Validator({"$ref": ref}, registry=_REGISTRY).validate(instance)


def validate_params(method: str, params):
    validate(params, schema_name(method, "params"))


def validate_result(method: str, result):
    validate(result, schema_name(method, "result"))


class CheckedClient:
    """Wraps the Python client: every request's params and result are checked against the schemas."""

    def __init__(self, client):
        self.client = client

    def call(self, method, params=None, **kwargs):
        p = params if params is not None else kwargs
        validate_params(method, json.loads(json.dumps(_plain(p))))
        result = self.client.call(method, p)
        validate_result(method, result)
        return result

    def __getattr__(self, name):
        return getattr(self.client, name)


def _plain(value):
    try:
        import numpy as np
        if isinstance(value, np.ndarray):
            return {"dtype": "float32", "shape": list(value.shape), "data": ""}
    except ImportError:
        pass
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
