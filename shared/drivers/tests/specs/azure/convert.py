#!/usr/bin/env python3
"""Converts the vendored Azure Resource Manager Swagger 2.0 files (swagger/) to OpenAPI 3.0
(openapi/), one self-contained document per entry file, with swagger2openapi (npm, pinned).

    python convert.py            # regenerate openapi/*.json (needs node and swagger2openapi)
    python convert.py --check    # cheap: openapi/*.json were made from the present inputs

Before the conversion, a prepared copy of swagger/ is written to a temporary folder:

* `enum` is dropped wherever `x-ms-enum.modelAsString` is true: AutoRest treats such enums as
  open ("the values are known values, not a closed set"), so a value outside the list (e.g. a
  newer `vmSize`) is valid; enums with `modelAsString: false` stay closed;
* `$ref`s into Microsoft.Network files that are not vendored (application gateways, load
  balancers, route tables, private endpoints, flow logs, ...) become open schemas that accept
  any value, marked `x-not-vendored: <the reference>`: only properties the driver never sends
  and the test server never returns reach them (listed in README.md);
* `x-ms-examples` are dropped (they point at example files, most not vendored);
* `default: null` is dropped (Swagger 2 has no null; such a default means none, and OpenAPI
  3.0 tools reject a null default of a non-nullable schema).

Each output records in `info.x-vmapi-inputs-sha256` a digest of the inputs (every file under
swagger/, this script and the swagger2openapi version); `--check` recomputes it, so an input
changed without regenerating fails the driver tests.
"""

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SWAGGER = HERE / "swagger"
OPENAPI = HERE / "openapi"
SWAGGER2OPENAPI_VERSION = "7.0.8"
TOOL = Path(
    os.environ.get(
        "SWAGGER2OPENAPI",
        HERE.parents[4] / ".local/swagger2openapi/node_modules/.bin/swagger2openapi",
    )
)
COMPUTE = "compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-03-01"
NETWORK = "network/resource-manager/Microsoft.Network/stable/2024-05-01"
# Output name -> entry file (its paths are the operations of that document).
ENTRIES = {
    "compute-virtualMachine": f"{COMPUTE}/virtualMachine.json",
    "network-networkSecurityGroup": f"{NETWORK}/networkSecurityGroup.json",
    "network-networkInterface": f"{NETWORK}/networkInterface.json",
    "network-publicIpAddress": f"{NETWORK}/publicIpAddress.json",
    "network-virtualNetwork": f"{NETWORK}/virtualNetwork.json",
}


def inputs_digest():
    h = hashlib.sha256()
    for path in sorted(SWAGGER.rglob("*.json")):
        h.update(str(path.relative_to(SWAGGER)).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(Path(__file__).read_bytes())
    h.update(SWAGGER2OPENAPI_VERSION.encode())
    return h.hexdigest()


def prepare(node, here, counts):
    """The prepared form of one swagger document (see the module docstring)."""
    if isinstance(node, list):
        return [prepare(v, here, counts) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "x-ms-examples":
            counts["x-ms-examples dropped"] = counts.get("x-ms-examples dropped", 0) + 1
            continue
        if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
            target = (here / value.split("#", 1)[0]).resolve()
            if not target.exists():
                counts["references to files not vendored"] = (
                    counts.get("references to files not vendored", 0) + 1
                )
                return {"x-not-vendored": value}
        out[key] = prepare(value, here, counts)
    if "default" in out and out["default"] is None and not out.get("x-nullable"):
        del out["default"]
        counts["default: null dropped"] = counts.get("default: null dropped", 0) + 1
    enum_ext = out.get("x-ms-enum")
    if "enum" in out and isinstance(enum_ext, dict) and enum_ext.get("modelAsString") is True:
        del out["enum"]
        counts["open enums (modelAsString) made open"] = (
            counts.get("open enums (modelAsString) made open", 0) + 1
        )
    return out


def convert():
    if not TOOL.exists():
        sys.exit(
            f"swagger2openapi not found at {TOOL}: install it with\n"
            f"  mkdir -p .local/swagger2openapi && cd .local/swagger2openapi && npm init -y && "
            f"npm install swagger2openapi@{SWAGGER2OPENAPI_VERSION}\n"
            "or point SWAGGER2OPENAPI at the binary"
        )
    digest = inputs_digest()
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for path in SWAGGER.rglob("*.json"):
            target = tmp / path.relative_to(SWAGGER)
            target.parent.mkdir(parents=True, exist_ok=True)
            doc = prepare(json.loads(path.read_text()), path.parent, counts)
            target.write_text(json.dumps(doc, indent=2))
        OPENAPI.mkdir(exist_ok=True)
        for name, entry in ENTRIES.items():
            out = tmp / f"{name}.json"
            subprocess.run(
                [str(TOOL), "--resolve", "--patch", "--outfile", str(out), str(tmp / entry)],
                check=True,
            )
            doc = json.loads(out.read_text())
            doc["info"]["x-vmapi-source"] = f"swagger/{entry} (prepared by convert.py)"
            doc["info"]["x-vmapi-inputs-sha256"] = digest
            (OPENAPI / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    for what, n in sorted(counts.items()):
        print(f"{n:5d}  {what}")
    return check(validate=True)


def check(validate):
    digest = inputs_digest()
    ok = True
    for name in ENTRIES:
        path = OPENAPI / f"{name}.json"
        if not path.exists():
            print(f"{path.name} is missing: run `python convert.py`", file=sys.stderr)
            ok = False
            continue
        doc = json.loads(path.read_text())
        if doc.get("info", {}).get("x-vmapi-inputs-sha256") != digest:
            print(f"{path.name} was made from other inputs: run `python convert.py`", file=sys.stderr)
            ok = False
        if validate:
            from openapi_spec_validator import OpenAPIV30SpecValidator

            errors = list(OpenAPIV30SpecValidator(copy.deepcopy(doc)).iter_errors())
            for e in errors[:10]:
                print(f"{name}: {e.message[:300]}", file=sys.stderr)
            ok = ok and not errors
    if ok:
        print("openapi/*.json: made from the present inputs" + (" and valid" if validate else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(check(validate="--validate" in sys.argv[1:]))
    sys.exit(convert())
