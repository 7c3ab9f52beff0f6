#!/usr/bin/env python3
"""Checks HTTP exchanges against the providers' API descriptions with openapi-core.

One process serves a whole test binary (shared/drivers/tests/spec_check/mod.rs starts it once):
it reads one JSON object per line on stdin and answers one JSON object per line on stdout.

Asked:   {"api": "kraud" | "azure", "method": "POST", "path": "/api/v1/namespaces",
          "query": "a=1&b=2", "headers": {"content-type": "..."}, "body": "<base64>",
          "status": 200, "response_headers": {...}, "response_body": "<base64>"}
Answer:  {"operation": "createNamespace" | null, "request": [errors], "response": [errors],
          "note": "..." | null}

`request` lists why the document does not allow the request (method, path, query, headers and
body), `response` why it does not allow the response. Beyond the schemas, JSON object members
that a schema does not describe (where it names its properties and says nothing of others) are
reported as "undocumented property": JSON Schema lets them pass, but the APIs reject or drop
unknown members, and a test server inventing fields would let a driver depend on them. An error status (400 and up) that the
operation does not declare, where it declares no `default` either, is not an error but a
`note`: the Kraud.Cloud document describes almost no error answers (see docs/providers.md).

Documents (OpenAPI 3.0, paths relative to this file): kraud/openapi.yaml; azure/openapi/*.json.
Each is read once, on first use; its `servers` are replaced by one neutral URL, so an operation
is found by method and path alone.
"""

import base64
import copy
import json
import re
import sys
import urllib.parse
import warnings
from pathlib import Path

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import (
    OperationNotFound,
    PathNotFound,
    ServerNotFound,
)
from openapi_core.testing import MockRequest, MockResponse

HERE = Path(__file__).resolve().parent
HOST = "http://api.test"
DOCUMENTS = {
    "kraud": [HERE / "kraud" / "openapi.yaml"],
    "azure": sorted((HERE / "azure" / "openapi").glob("*.json")),
}
# The oauth2 scheme of the ARM documents is not checked by openapi-core (it warns); the test
# servers check the bearer token themselves.
warnings.filterwarnings("ignore", message="Unsupported scheme type")

_loaded = {}


def resolve(doc, node):
    """`node` with its internal `$ref`s followed."""
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target[int(part)] if isinstance(target, list) else target[part]
        node = target
    return node


def described(doc, schema):
    """The properties a schema describes (its `allOf` merged), and its additionalProperties;
    None when it does not say which properties an object has (any are fine)."""
    schema = resolve(doc, schema)
    if any(k in schema for k in ("oneOf", "anyOf")):
        return None
    # A name the schema requires is described too, even without a schema of its own (the
    # Kraud.Cloud document requires Kraud.Pod's Volumes but gives it no property).
    props = {name: {} for name in schema.get("required") or []}
    props.update(schema.get("properties") or {})
    extra = schema.get("additionalProperties")
    for sub in schema.get("allOf") or []:
        inner = described(doc, sub)
        if inner is None:
            return None
        props.update(inner[0])
        extra = extra or inner[1]
    if not props and extra is None:
        return None
    return props, extra


def undocumented(doc, schema, value, where="", out=None):
    """Paths of object members `schema` does not describe. JSON Schema lets them pass; the
    Resource Manager and k8s-style APIs reject or drop unknown members, and a test server that
    invents fields lets a driver depend on them, so both count as violations."""
    out = [] if out is None else out
    schema = resolve(doc, schema)
    if isinstance(value, dict):
        known = described(doc, schema)
        if known is None:
            return out
        props, extra = known
        for key, item in value.items():
            if key in props:
                undocumented(doc, props[key], item, f"{where}/{key}", out)
            elif isinstance(extra, dict):
                undocumented(doc, extra, item, f"{where}/{key}", out)
            elif extra is not True:
                out.append(f"{where}/{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            undocumented(doc, schema["items"], item, f"{where}/{i}", out)
    return out


def media_schema(content, content_type):
    """The schema of the JSON media type of `content` that `content_type` names."""
    base = (content_type or "application/json").split(";")[0].strip().lower()
    if not base.endswith("json"):
        return None
    media = (content or {}).get(base)
    return media.get("schema") if isinstance(media, dict) else None


def undocumented_members(doc, schema, raw):
    if schema is None or not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return [f"undocumented property {p} (not described by the document)" for p in undocumented(doc, schema, value)]


def documents(api):
    if api not in _loaded:
        if not DOCUMENTS.get(api):
            raise SystemExit(f"validate.py: no documents for API {api!r}")
        apps = []
        raws = []
        for path in DOCUMENTS[api]:
            if path.suffix == ".json":
                spec = json.loads(path.read_text())
            else:
                spec = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
            spec["servers"] = [{"url": HOST}]
            # Checked by openapi-spec-validator when the documents are made (fixup.py,
            # convert.sh); not again at every start.
            config = Config(
                spec_validator_cls=None,
                # JSON under another name (RFC 7396); openapi-core reads only application/json.
                extra_media_type_deserializers={"application/merge-patch+json": json.loads},
            )
            apps.append(OpenAPI.from_dict(copy.deepcopy(spec), config=config, base_uri=path.as_uri()))
            raws.append(spec)
        _loaded[api] = list(zip(apps, raws))
    return _loaded[api]


def messages(error):
    """The error and its causes, with each schema error's location."""
    out = []
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(error) or type(error).__name__
        if not any(text in earlier for earlier in out):
            out.append(text)
        for schema_error in getattr(error, "schema_errors", None) or []:
            where = "/".join(str(p) for p in schema_error.absolute_path) or "(root)"
            out.append(f"  at {where}: {schema_error.message[:400]}")
            for sub in (schema_error.context or [])[:6]:
                sub_where = "/".join(str(p) for p in sub.absolute_path) or "(root)"
                out.append(f"    - at {sub_where}: {sub.message[:300]}")
        error = error.__cause__ or error.__context__
    return "\n".join(out)


def headers_of(raw):
    return {k: v for k, v in (raw or {}).items()}


# Docker Engine API paths may carry the API version (`/v1.41/containers/...`); the Docker part
# of the Kraud.Cloud document lists them without it.
DOCKER_VERSION = re.compile(r"^/v[0-9]+\.[0-9]+(/.*)$")


def check(ask):
    if ask["api"] == "kraud":
        versioned = DOCKER_VERSION.match(ask["path"])
        if versioned:
            ask = {**ask, "path": versioned.group(1)}
    method = ask["method"].lower()
    query = urllib.parse.parse_qsl(ask.get("query") or "", keep_blank_values=True)
    headers = headers_of(ask.get("headers"))
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    body = base64.b64decode(ask.get("body") or "")
    request = MockRequest(
        HOST, method, ask["path"], args=query, headers=headers, data=body or None,
        content_type=content_type or "application/json",
    )
    app = None
    not_found = None
    for candidate, raw in documents(ask["api"]):
        try:
            found = candidate.request_validator._find_path(request)
        except (PathNotFound, OperationNotFound, ServerNotFound) as e:
            not_found = e
            continue
        app, doc = candidate, raw
        break
    if app is None:
        return {
            "operation": None,
            "request": [f"{ask['method']} {ask['path']}: no such operation in the documents ({not_found})"],
            "response": [],
            "note": None,
        }
    operation = found.operation
    op_id = (operation / "operationId").read_str(None) if "operationId" in operation else None
    answer = {"operation": op_id, "request": [], "response": [], "note": None}
    for error in app.iter_request_errors(request):
        answer["request"].append(messages(error))
    raw_op = doc["paths"][found.path_result.pattern][method]
    if not answer["request"]:
        schema = media_schema((raw_op.get("requestBody") or {}).get("content"), content_type)
        answer["request"] += undocumented_members(doc, schema, body)
    if "status" not in ask:
        return answer
    status = int(ask["status"])
    declared = {str(code) for code in (operation / "responses").keys()}
    if str(status) not in declared and "default" not in declared:
        if status >= 400:
            answer["note"] = f"status {status} is not described for {op_id}"
            return answer
        answer["response"].append(f"status {status} is not among {sorted(declared)} of {op_id}")
        return answer
    resp_headers = headers_of(ask.get("response_headers"))
    resp_type = next((v for k, v in resp_headers.items() if k.lower() == "content-type"), "")
    response = MockResponse(
        base64.b64decode(ask.get("response_body") or ""), status_code=status,
        headers=resp_headers, content_type=resp_type,
    )
    for error in app.iter_response_errors(request, response):
        answer["response"].append(messages(error))
    if not answer["response"]:
        declared_resp = raw_op["responses"].get(str(status)) or raw_op["responses"].get("default")
        declared_resp = resolve(doc, declared_resp or {})
        schema = media_schema(declared_resp.get("content"), resp_type)
        answer["response"] += undocumented_members(doc, schema, response.data)
    return answer


def main():
    # The answer depends on the line alone: repeated exchanges (polls, unchanged lists) are
    # answered from memory.
    answered = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        if line not in answered:
            try:
                answer = check(json.loads(line))
            except Exception as e:  # a validator failure must not look like a pass
                answer = {"operation": None, "request": [f"validator failed: {e!r}"], "response": [], "note": None}
            answered[line] = json.dumps(answer)
        sys.stdout.write(answered[line] + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
