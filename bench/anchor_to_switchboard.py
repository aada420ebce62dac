#!/usr/bin/env python3
"""Convert the Kamailio anchor's routing.yaml into switchboard's routing schema.

    anchor_to_switchboard.py ANCHOR_ROUTING_YAML OUT_YAML

The input is what ../shared/anchors/kamailio/gen_data.py writes: three top-level
lists in flow style, one entry per line, every value a quoted string:

    users:
      - {id: "u00001", name: "Anna Mueller", phone: "+4915112345678"}
    numbers:
      - {number: "+4930123400", user: "u00001", forward_to: "+498001234567"}
    contacts:
      - {number: "+4915212345678", user: "u00001"}

(`phone` and `user` are optional). The output is one switchboard account
(`id: anchor`, `region: DE`) holding the same users, numbers (with their
`forward_to` and, when assigned, `user`) and contacts (`phones: [...]`, `user`
when assigned), so both servers answer every call of the anchor's calls.csv
the same way.

The file is generated and its format fixed, so it is read line by line (no YAML
library; python3 stdlib only). Any line that does not fit the format stops the
conversion with its line number.
"""
import re
import sys

SECTIONS = ("users", "numbers", "contacts")
# one `key: "value"` pair of a flow mapping; values are double-quoted strings
PAIR = re.compile(r'\s*([A-Za-z_]+):\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
ENTRY = re.compile(r"^  - \{(.*)\}\s*$")
ALLOWED = {
    "users": ({"id", "name"}, {"phone"}),
    "numbers": ({"number", "forward_to"}, {"user"}),
    "contacts": ({"number"}, {"user"}),
}


def unquote(s):
    return re.sub(r"\\(.)", r"\1", s)


def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_mapping(body, path, lineno):
    out, pos = {}, 0
    while pos < len(body):
        m = PAIR.match(body, pos)
        if not m:
            sys.exit("%s:%d: cannot read %r" % (path, lineno, body[pos:]))
        key = m.group(1)
        if key in out:
            sys.exit("%s:%d: duplicate key %s" % (path, lineno, key))
        out[key] = unquote(m.group(2))
        pos = m.end()
    return out


def read_anchor(path):
    data = {s: [] for s in SECTIONS}
    section = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line.startswith(" "):
                key = line.rstrip()
                if not key.endswith(":") or key[:-1] not in SECTIONS:
                    sys.exit("%s:%d: unexpected top-level line %r" % (path, lineno, line))
                section = key[:-1]
                continue
            m = ENTRY.match(line)
            if not m or section is None:
                sys.exit("%s:%d: unexpected line %r" % (path, lineno, line))
            entry = parse_mapping(m.group(1), path, lineno)
            required, optional = ALLOWED[section]
            missing = required - entry.keys()
            unknown = entry.keys() - required - optional
            if missing or unknown:
                sys.exit("%s:%d: %s entry: missing %s, unknown %s"
                         % (path, lineno, section, sorted(missing), sorted(unknown)))
            data[section].append(entry)
    return data


def write_switchboard(data, path):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Converted from the Kamailio anchor's routing.yaml by\n"
                "# bench/anchor_to_switchboard.py (do not edit by hand).\n"
                "accounts:\n"
                "  - id: anchor\n"
                "    region: DE\n"
                "    users:\n")
        for u in data["users"]:
            extra = (", phone: " + q(u["phone"])) if "phone" in u else ""
            f.write("      - {id: %s, name: %s%s}\n" % (q(u["id"]), q(u["name"]), extra))
        f.write("    numbers:\n")
        for n in data["numbers"]:
            extra = (", user: " + q(n["user"])) if "user" in n else ""
            f.write("      - {number: %s, forward_to: %s%s}\n"
                    % (q(n["number"]), q(n["forward_to"]), extra))
        f.write("    contacts:\n")
        for c in data["contacts"]:
            extra = (", user: " + q(c["user"])) if "user" in c else ""
            f.write("      - {phones: [%s]%s}\n" % (q(c["number"]), extra))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = read_anchor(sys.argv[1])
    write_switchboard(data, sys.argv[2])
    print("converted %d users, %d numbers, %d contacts -> %s"
          % (len(data["users"]), len(data["numbers"]), len(data["contacts"]), sys.argv[2]))


if __name__ == "__main__":
    main()
