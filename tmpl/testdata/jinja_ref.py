#!/usr/bin/env python3
"""Reference renderer: renders tmpl test cases with real Jinja2.

Reads a JSON list of cases ({"name", "src", "data"}) on stdin and writes the
same list with "out" (rendered text) or "error" (exception class name) set.
The environment mirrors package tmpl: undefined values fail when printed,
iterated or accessed, but are falsy and work with default/defined.
scripts/jinja2_diff.py (tmpl's differential test) uses the same env().
"""
import base64
import json
import sys

import jinja2


class OccoUndefined(jinja2.StrictUndefined):
    def __bool__(self):
        return False


ADDRS = {"master": ("10.0.0.1", "192.168.0.1", ["10.0.0.1", "10.0.0.2"])}


def _addr(i, name):
    def f(node):
        if isinstance(node, jinja2.Undefined):
            str(node)  # raises
        if node not in ADDRS:
            raise KeyError(node)
        return ADDRS[node][i]
    f.__name__ = name
    return f


def cut(s, a, b):
    return s[a:b]


def b64encode(s):
    return base64.b64encode(s.encode("utf-8")).decode("ascii")


def b64decode(s):
    return base64.b64decode(s.encode("ascii")).decode("utf-8")


def env():
    # loopcontrols: tmpl accepts {% break %} and {% continue %} (gonja has
    # them), which plain Jinja2 has with this extension only.
    e = jinja2.Environment(undefined=OccoUndefined, extensions=["jinja2.ext.loopcontrols"])
    e.filters["b64encode"] = b64encode
    e.filters["b64decode"] = b64decode
    e.globals.update(getip=_addr(0, "getip"), getprivip=_addr(1, "getprivip"),
                     getipall=_addr(2, "getipall"), cut=cut)
    return e


def main():
    cases = json.load(sys.stdin)
    e = env()
    for c in cases:
        c.pop("out", None)
        c.pop("error", None)
        try:
            c["out"] = e.from_string(c["src"]).render(**(c.get("data") or {}))
        except Exception as ex:  # noqa: BLE001 - any failure is a result
            c["error"] = type(ex).__name__
    json.dump(cases, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
