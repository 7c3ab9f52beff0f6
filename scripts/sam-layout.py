"""Lays the functions out as `sam build` does, from binaries already built (make sam-local).

Usage: sam-layout.py TEMPLATE BIN_DIR OUT_DIR
       sam-layout.py --list TEMPLATE   (only the "LogicalId binary" lines, for a `sam build` output)

Writes OUT_DIR/template.yaml (each function's CodeUri is its own folder, its build Metadata
removed, as in .aws-sam/build) and OUT_DIR/<LogicalId>/bootstrap, a hard link to (or a copy of)
BIN_DIR/<binary> for the template's Metadata.BuildProperties.Binary. Prints "LogicalId binary"
per function. Runs with the SAM CLI's Python (.local/sam), whose YAML helper reads the
CloudFormation tags (!Ref, !GetAtt, ...).
"""

import os
import shutil
import sys

from samcli.yamlhelper import yaml_dump, yaml_parse


def main() -> None:
    if sys.argv[1] == "--list":
        with open(sys.argv[2], encoding="utf-8") as f:
            template = yaml_parse(f.read())
        for logical_id, resource in template["Resources"].items():
            if resource.get("Type") == "AWS::Serverless::Function":
                print(logical_id, resource["Metadata"]["BuildProperties"]["Binary"])
        return
    template_path, bin_dir, out_dir = sys.argv[1:4]
    with open(template_path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    os.makedirs(out_dir, exist_ok=True)
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        source = os.path.join(bin_dir, binary)
        if not os.path.isfile(source):
            sys.exit(f"{source} is missing: build the function binaries first")
        folder = os.path.join(out_dir, logical_id)
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, "bootstrap")
        if os.path.exists(target):
            os.remove(target)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        resource["Properties"]["CodeUri"] = logical_id
        del resource["Metadata"]
        print(logical_id, binary)
    with open(os.path.join(out_dir, "template.yaml"), "w", encoding="utf-8") as f:
        f.write(yaml_dump(template))


if __name__ == "__main__":
    main()
