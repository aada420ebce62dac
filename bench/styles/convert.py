#!/usr/bin/env python3
"""Rewrites a routing data set (examples/gen_routing's output) in another
library's default style: the same data, as a CRM's export job in that
language would write it (docs/performance.md, "The data in every style").

    bench/styles/convert.py STYLE IN_DIR OUT_DIR

STYLE is one of:
  pyyaml      PyYAML yaml.safe_dump(data) (block style, sorted keys,
              sequences not indented under their key, single quotes)
  ruamel      ruamel.yaml YAML().dump(data) (the round-trip dumper's defaults)
  json        json.dump(data, indent=2)
  json-line   json.dump(data) (the whole file on one line)
  commented   the generator's own text, with comments and blank lines where
              people put them, `---` and `...`, and trailing spaces

Each file is read with PyYAML (its C loader when built with libyaml) and
written with the library named; calls.csv is copied.
"""
import json
import os
import shutil
import sys

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dump_pyyaml(data, out):
    # The dumper class does not change the style, only the speed.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    yaml.dump(data, out, Dumper=dumper)


def dump_ruamel(data, out):
    from ruamel.yaml import YAML

    YAML().dump(data, out)


def dump_json(data, out):
    json.dump(data, out, indent=2)
    out.write("\n")


def dump_json_line(data, out):
    json.dump(data, out)
    out.write("\n")


def commented(text):
    """Comments in the places people put them, without changing the data."""
    out = ["# exported by the CRM's nightly job", "---"]
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            out.append(line)
            continue
        if stripped in ("users:", "numbers:", "contacts:"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append("")
            out.append(f"{indent}# {stripped[:-1]} of this account")
            out.append(line + "   ")
            continue
        if stripped.startswith("- id: "):
            out.append(line + "  # account or user")
            continue
        if stripped.startswith("user: "):
            out.append(line + " # owner")
            continue
        out.append(line)
    out.append("# end of export")
    out.append("...")
    return "\n".join(out) + "\n"


STYLES = {
    "pyyaml": dump_pyyaml,
    "ruamel": dump_ruamel,
    "json": dump_json,
    "json-line": dump_json_line,
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in list(STYLES) + ["commented"]:
        sys.exit(__doc__)
    style, src, dst = sys.argv[1:]
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if not name.endswith(".yaml"):
            if name == "calls.csv":
                shutil.copy(path, os.path.join(dst, name))
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        target = os.path.join(dst, name)
        with open(target, "w", encoding="utf-8") as out:
            if style == "commented":
                out.write(commented(text))
            else:
                STYLES[style](yaml.load(text, Loader=Loader), out)


if __name__ == "__main__":
    main()
