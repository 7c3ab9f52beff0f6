#!/usr/bin/env python3
"""Turns Kraud.Cloud's published API description into valid OpenAPI 3.0.

The vendor's file (openapi.published.yaml, a verbatim copy of `kraudcloud/cli`'s
api/openapi.yaml) says `openapi: 3.0.0` but is a half-converted Swagger 2 document. This script
finishes the conversion the way a Swagger-2-to-OpenAPI-3 converter would, without changing what
any operation accepts or returns beyond what is listed in FIX-UPS below, and writes
openapi.yaml. It is deterministic: `--check` regenerates the output in memory, fails if the
committed openapi.yaml differs, and validates it with openapi-spec-validator.

    python fixup.py            # writes openapi.yaml
    python fixup.py --check    # the committed file is current and valid (run by the tests)

FIX-UPS (each counted in the report the script prints):
* response codes written as YAML integers become strings;
* `in: body` parameters become `requestBody` (media types from the operation's `consumes`, else
  `application/json`, the Swagger 2 converters' default); PATCH operations without `consumes`
  also get `application/merge-patch+json` with a merge-patch form of the same schema (no
  `required`, every property nullable: RFC 7396's delete), generated as `<Name>.MergePatch`;
* Swagger 2 parameter fields beside `schema` (default, enum, format, items, uniqueItems,
  pattern, ...) move into the schema;
* response `schema` and `examples` move under `content` (media types from `produces`, else
  `application/json`); a media type given without `schema` gets one; response headers get a
  schema; `consumes`/`produces` are dropped;
* the operation key misspelt `operationID` becomes `operationId`;
* `launchTemplate`'s multipart schema (part names in a `oneOf` of Parameter-like objects, part
  media types as `content` inside schemas) becomes properties named after the parts with an
  `encoding`, one of the two compose part names required;
* operations without any `responses` get a `default` response described as undocumented: they
  are listed under UNVALIDATED, since nothing about their answers can be checked.
"""

import copy
import io
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "openapi.published.yaml"
OUTPUT = HERE / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Parameter fields of Swagger 2 that belong in the schema in OpenAPI 3.
SCHEMA_FIELDS = (
    "type", "format", "items", "default", "enum", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "pattern", "minItems", "maxItems",
    "uniqueItems", "multipleOf",
)
MEDIA_FIELDS = ("schema", "example", "examples", "encoding")
# Keywords of an OpenAPI 3.0 Schema Object.
SCHEMA_KEYWORDS = set(SCHEMA_FIELDS) | {
    "title", "maxProperties", "minProperties", "required", "not", "allOf", "oneOf", "anyOf",
    "properties", "additionalProperties", "description", "nullable", "discriminator",
    "readOnly", "writeOnly", "xml", "externalDocs", "example", "deprecated", "$ref",
}
MERGE_PATCH = "application/merge-patch+json"
UNDOCUMENTED = "Not described in the published document."


class Report:
    def __init__(self):
        self.counts = {}
        self.unvalidated = []

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def text(self):
        lines = [f"{n:5d}  {what}" for what, n in sorted(self.counts.items())]
        lines += [f"UNVALIDATED {op}: {why}" for op, why in self.unvalidated]
        return "\n".join(lines)


def string_keys(node):
    if isinstance(node, dict):
        return {str(k): string_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [string_keys(v) for v in node]
    return node


def unwrap_schema(schema, report):
    """Merges a `schema` key inside a schema (a Swagger 2 converter's leftover, as in
    `{format: binary, schema: {type: string}}`) into the schema itself, recursively."""
    if not isinstance(schema, dict):
        return schema
    inner = schema.pop("schema", None)
    if isinstance(inner, dict):
        for k, v in inner.items():
            schema.setdefault(k, v)
        report.count("schema nested in a schema merged")
    if "x-nullable" in schema:
        if schema.pop("x-nullable") is True:
            schema["nullable"] = True
        report.count("x-nullable -> nullable")
    if "default" in schema and schema["default"] is None and not schema.get("nullable"):
        del schema["default"]
        report.count("default: null of a non-nullable schema dropped")
    for key in [k for k in schema if k not in SCHEMA_KEYWORDS and not k.startswith("x-")]:
        schema["x-published-" + key] = schema.pop(key)
        report.count("unknown schema keyword kept as x-published-*")
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            unwrap_schema(schema[key], report)
    for key in ("allOf", "oneOf", "anyOf"):
        for s in schema.get(key, []):
            unwrap_schema(s, report)
    for s in (schema.get("properties") or {}).values():
        unwrap_schema(s, report)
    return schema


def fix_content(content, report):
    """Schemas of a `content` map unwrapped; an `example` put beside the media types moves
    into each of them."""
    example = content.pop("example", None)
    for media in content.values():
        stray = [k for k in media if k not in MEDIA_FIELDS and not k.startswith("x-")]
        if stray and isinstance(media.get("schema"), dict):
            for k in stray:
                media["schema"].setdefault(k, media.pop(k))
            report.count("media type fields moved into schema")
        if example is not None:
            media.setdefault("example", copy.deepcopy(example))
        if isinstance(media, dict) and "schema" in media:
            unwrap_schema(media["schema"], report)
    if example is not None:
        report.count("content example moved into its media types")


def merge_patch_schema(schema, components, made):
    """The merge-patch form of `schema`: nothing required, every property nullable."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        patch = name + ".MergePatch"
        if patch not in made:
            made.add(patch)
            components[patch] = merge_patch_schema(copy.deepcopy(components[name]), components, made)
        return {"$ref": "#/components/schemas/" + patch}
    out = {k: v for k, v in schema.items() if k != "required"}
    if "properties" in out:
        props = {}
        for k, v in out["properties"].items():
            v = merge_patch_schema(v, components, made)
            # A $ref cannot carry siblings in OpenAPI 3.0: wrap it to make it nullable.
            props[k] = {"allOf": [v], "nullable": True} if "$ref" in v else {**v, "nullable": True}
        out["properties"] = props
    if isinstance(out.get("additionalProperties"), dict):
        inner = merge_patch_schema(out["additionalProperties"], components, made)
        out["additionalProperties"] = (
            {"allOf": [inner], "nullable": True} if "$ref" in inner else {**inner, "nullable": True}
        )
    for key in ("allOf", "oneOf", "anyOf"):
        if key in out:
            out[key] = [merge_patch_schema(s, components, made) for s in out[key]]
    return out


def fix_parameter(param, report):
    if "$ref" in param:
        return param
    moved = {k: param.pop(k) for k in SCHEMA_FIELDS if k in param}
    if "collectionFormat" in param:
        fmt = param.pop("collectionFormat")
        param["style"], param["explode"] = ("form", True) if fmt == "multi" else ("form", False)
        report.count("parameter collectionFormat -> style")
    if moved:
        schema = param.setdefault("schema", {})
        for k, v in moved.items():
            schema.setdefault(k, v)
        report.count("parameter fields moved into schema")
    if isinstance(param.get("schema"), dict):
        unwrap_schema(param["schema"], report)
    return param


def fix_response(resp, produces, report):
    if "$ref" in resp:
        return resp
    content = resp.get("content")
    if isinstance(content, dict):
        for mt, media in list(content.items()):
            if isinstance(media, dict) and "schema" not in media and (
                "type" in media or "format" in media
            ):
                content[mt] = {"schema": media}
                report.count("response media type without schema wrapped")
    schema = resp.pop("schema", None)
    examples = resp.pop("examples", None)
    if schema is not None:
        unwrap_schema(schema, report)
    if schema is not None or examples:
        content = resp.setdefault("content", {})
        types = produces or ["application/json"]
        if schema is not None:
            for mt in types:
                content.setdefault(mt, {})["schema"] = copy.deepcopy(schema)
            report.count("response schema -> content")
        for mt, example in (examples or {}).items():
            content.setdefault(mt, {})["example"] = example
            report.count("response examples -> content example")
    for name, header in (resp.get("headers") or {}).items():
        moved = {k: header.pop(k) for k in SCHEMA_FIELDS if k in header}
        if moved:
            header["schema"] = {**moved, **header.get("schema", {})}
            report.count("response header fields moved into schema")
    if isinstance(resp.get("content"), dict):
        fix_content(resp["content"], report)
    if "description" not in resp:
        resp["description"] = UNDOCUMENTED
        report.count("response description added")
    return resp


def fix_launch(op, report):
    """launchTemplate: parts named docker-compose.yml or .yaml (YAML), .env (text), namespace."""
    media = op["requestBody"]["content"]["multipart/form-data"]
    binary = {"type": "string", "format": "binary"}
    media["schema"] = {
        "type": "object",
        "properties": {
            "docker-compose.yml": dict(binary),
            "docker-compose.yaml": dict(binary),
            ".env": dict(binary),
            "namespace": dict(binary),
        },
        "anyOf": [{"required": ["docker-compose.yml"]}, {"required": ["docker-compose.yaml"]}],
    }
    media["encoding"] = {
        "docker-compose.yml": {"contentType": "application/x-yaml"},
        "docker-compose.yaml": {"contentType": "application/x-yaml"},
        ".env": {"contentType": "text/plain"},
    }
    report.count("launchTemplate multipart schema rewritten")


def fix_operation(path, method, op, components, made, report):
    if "operationID" in op:
        op.setdefault("operationId", op.pop("operationID"))
        report.count("operationID -> operationId")
    consumes = op.pop("consumes", None)
    produces = op.pop("produces", None)
    params = []
    for param in op.get("parameters", []):
        if param.get("in") == "body":
            types = list(consumes or ["application/json"])
            content = {mt: {"schema": copy.deepcopy(param["schema"])} for mt in types}
            if method == "patch" and not consumes:
                content[MERGE_PATCH] = {
                    "schema": merge_patch_schema(param["schema"], components, made)
                }
                report.count("PATCH body: merge-patch media type added")
            body = {"content": content, "required": bool(param.get("required", False))}
            if param.get("description"):
                body["description"] = param["description"]
            op["requestBody"] = body
            report.count("in: body -> requestBody")
        else:
            params.append(fix_parameter(param, report))
    if "parameters" in op:
        op["parameters"] = params
    if "requestBody" in op:
        fix_content(op["requestBody"]["content"], report)
    if "responses" not in op or not op["responses"]:
        op["responses"] = {"default": {"description": UNDOCUMENTED}}
        report.unvalidated.append(
            (f"{op.get('operationId')} ({method.upper()} {path})", "the document gives no responses")
        )
    for code in list(op["responses"]):
        op["responses"][code] = fix_response(op["responses"][code], produces, report)
    if op.get("operationId") == "launchTemplate":
        fix_launch(op, report)


def convert(text):
    doc = string_keys(yaml.load(text, Loader=yaml.CSafeLoader))
    report = Report()
    components = doc["components"]["schemas"]
    made = set()
    for schema in components.values():
        unwrap_schema(schema, report)
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                fix_operation(path, method, item[method], components, made, report)
    return doc, report


def dump(doc):
    out = io.StringIO()
    out.write("# GENERATED by fixup.py from openapi.published.yaml: do not edit by hand.\n")
    yaml.dump(doc, out, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True, width=100)
    return out.getvalue()


def validate(doc):
    from openapi_spec_validator import OpenAPIV30SpecValidator

    errors = list(OpenAPIV30SpecValidator(doc).iter_errors())
    for e in errors[:20]:
        print(f"invalid at {'/'.join(str(p) for p in e.path)}: {e.message[:300]}", file=sys.stderr)
    return not errors


def main(argv):
    doc, report = convert(SOURCE.read_text())
    text = dump(doc)
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.name} is not fixup.py's output: run `python {Path(__file__).name}`", file=sys.stderr)
            return 1
        if not validate(yaml.load(text, Loader=yaml.CSafeLoader)):
            print(f"{OUTPUT.name} is not valid OpenAPI 3.0", file=sys.stderr)
            return 1
        print(f"{OUTPUT.name}: current and valid OpenAPI 3.0")
        return 0
    OUTPUT.write_text(text)
    print(report.text())
    return 0 if validate(yaml.load(text, Loader=yaml.CSafeLoader)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
