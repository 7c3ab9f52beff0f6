#!/usr/bin/env python3
"""Prints template.yaml as CloudFormation deploys it: the SAM transform applied, offline.

Run with the SAM CLI's Python (`.local/sam/bin/python`, installed by `make test`): it uses the
SAM translator the CLI ships and the AWS managed policies bundled with it, so no account is
needed. The IAM test (tests/tests/suite/iam.rs) reads the roles and policies from its output.

usage: sam-transform.py [template.yaml]   (JSON on standard output)
"""
import json
import sys

import boto3
from samcli.yamlhelper import yaml_parse
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # As `sam validate` does: local code paths become a placeholder S3 location.
    function = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in function:
        function["CodeUri"] = "s3://bucket/key"
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource.setdefault("Properties", {})
            if "CodeUri" in props:
                props["CodeUri"] = "s3://bucket/key"
    session = boto3.session.Session(region_name="us-east-1")
    translated = Translator(None, Parser(), boto_session=session).translate(
        template,
        parameter_values={"AWS::Region": "us-east-1", "AWS::Partition": "aws"},
        get_managed_policy_map=lambda: get_bundled_managed_policy_map("aws"),
    )
    json.dump(translated, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
