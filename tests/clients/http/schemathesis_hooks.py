"""Schemathesis hooks for the Qilu HTTP/JSON API (loaded by tests/clients/http/schemathesis.sh).

Two things: OpenAPI links for the stateful phase (below), and the `ndjson_schema_conformance`
check (at the end), which validates every line of an NDJSON stream as schemathesis cannot.

Adds OpenAPI links for the stateful phase, derived from the document itself, so that a resource
one call returns is the resource the next call names. Schemathesis's own link inference is turned
off in schemathesis.toml: it guesses from field names, and on an AIP-122 API it feeds a full
resource name (`programs/p1`) into a one-segment path parameter (`/v1/programs/{program}`) or an
`Empty` response's non-existent fields into the next call, which only ever yields 404s.

The links live here, not in openapi/qilu.openapi.json, because a resource name is split into its
path parameters with schemathesis's `#regex:` extension to runtime expressions, which no other
OpenAPI tool reads; the committed document stays plain OpenAPI 3.1.

How a link is derived (the same for the three services, nothing named by hand):
- a resource is the 200 schema of a plain `get` whose path is `/v1/` + a resource pattern
  (`/v1/programs/{program}/applications/{application}`) and whose schema has a `name`;
- its producers are the operations whose 200 response is that schema (Create, Get, Update, custom
  methods that return the resource) — the name is `$response.body#/name` — and the List
  operations whose 200 response has an array of it (the first item's name);
- its consumers are the operations whose path, verb split off, is the pattern or lies under it
  (Get, Update, Delete, custom methods, child collections): each path parameter of the pattern is
  cut out of the name with a regex; any other parameter is generated as usual.
"""

from __future__ import annotations

import json
import re
from typing import Any

import schemathesis

METHODS = ("get", "post", "patch", "put", "delete")
PARAM = re.compile(r"\{([^}/]+)\}")


def _ref_name(schema: dict[str, Any] | None) -> str | None:
    ref = (schema or {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else None


def _ok_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    content = op.get("responses", {}).get("200", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


def _pointer_escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _split_verb(path: str) -> str:
    head, _, last = path.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}"


def _extractor(pattern: str, param: str) -> str:
    """A regex over the resource name with one group: the segment of `param`.

    Runtime expressions end a JSON pointer at `}` and schemathesis reads `{`, so the regex
    uses neither."""
    parts = []
    for segment in pattern.split("/"):
        m = PARAM.fullmatch(segment)
        if m is None:
            parts.append(re.escape(segment))
        elif m.group(1) == param:
            parts.append("([^/]+)")
        else:
            parts.append("[^/]+")
    return "^" + "/".join(parts) + "$"


def derive_links(raw: dict[str, Any]) -> int:
    schemas = raw.get("components", {}).get("schemas", {})
    paths = raw.get("paths", {})

    # Resource schema -> pattern (path without /v1/), from the plain Get of each resource.
    patterns: dict[str, str] = {}
    for path, item in paths.items():
        get = item.get("get")
        if not get or ":" in path.rsplit("/", 1)[-1] or not path.startswith("/v1/"):
            continue
        name = _ref_name(_ok_schema(get))
        if name and "name" in schemas.get(name, {}).get("properties", {}) and PARAM.search(path):
            patterns.setdefault(name, path[len("/v1/"):])

    count = 0
    for path, item in paths.items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            ok = _ok_schema(op)
            produced: list[tuple[str, str]] = []  # (resource schema, JSON pointer to its name)
            direct = _ref_name(ok)
            if direct in patterns:
                produced.append((direct, "/name"))
            elif direct:
                for field, prop in schemas.get(direct, {}).get("properties", {}).items():
                    if prop.get("type") == "array" and _ref_name(prop.get("items")) in patterns:
                        produced.append((_ref_name(prop["items"]), f"/{field}/0/name"))
            for resource, pointer in produced:
                pattern = patterns[resource]
                params = PARAM.findall(pattern)
                links = op["responses"]["200"].setdefault("links", {})
                for target_path, target_item in paths.items():
                    bare = _split_verb(target_path)[len("/v1/"):]
                    if not (bare == pattern or bare.startswith(pattern + "/")):
                        continue
                    for target_method in METHODS:
                        target = target_item.get(target_method)
                        if not target or target is op:
                            continue
                        links[f"{resource}:{target['operationId']}"] = {
                            "operationId": target["operationId"],
                            "parameters": {
                                f"path.{p}": f"$response.body#{pointer}#regex:{_extractor(pattern, p)}"
                                for p in params
                            },
                        }
                        count += 1
    return count


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    derive_links(raw_schema)
    _DOCUMENT.clear()
    _DOCUMENT.update(raw_schema)


# The document as loaded, for the NDJSON check below (set by `before_load_schema`).
_DOCUMENT: dict[str, Any] = {}
_NDJSON_VALIDATORS: dict[tuple[str, str], Any] = {}


def _ndjson_validator(path: str, method: str) -> Any:
    key = (path, method.lower())
    if key not in _NDJSON_VALIDATORS:
        import jsonschema_rs  # schemathesis's own JSON Schema validator

        op = _DOCUMENT["paths"][path][method.lower()]
        schema = dict(op["responses"]["200"]["content"]["application/x-ndjson"]["schema"])
        schema["components"] = _DOCUMENT["components"]  # `$ref`s resolve in the document
        _NDJSON_VALIDATORS[key] = jsonschema_rs.Draft202012Validator(schema)
    return _NDJSON_VALIDATORS[key]


@schemathesis.check
def ndjson_schema_conformance(ctx: Any, response: Any, case: Any) -> None:
    """Every line of an NDJSON 200 (the snapshots) validates against the operation's schema.

    Schemathesis's `response_schema_conformance` reads a body as one JSON document and skips
    `application/x-ndjson`; a stream is one document per line (a response message, or the
    `{"error": …}` line a failed stream ends with)."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    content_type = headers.get("content-type", "")
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    if response.status_code != 200 or not content_type.startswith("application/x-ndjson"):
        return None
    validator = _ndjson_validator(case.operation.path, case.operation.method)
    for number, line in enumerate(response.content.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        value = json.loads(line)
        errors = [e.message for e in validator.iter_errors(value)]
        if errors:
            raise AssertionError(f"NDJSON line {number} does not match the schema: {errors[:3]}")
    return None
