#!/usr/bin/env python3
"""Jinja2 side of tmpl's differential test (tmpl/differential_test.go).

One long-lived process: the first line written is a greeting with the
Jinja2 and Python versions; then each input line is a JSON case
{"id": N, "src": "...", "data": {...}} and each output line is
{"id": N, "out": "..."} or {"id": N, "error": "ExceptionClass", "msg": "..."}.

The environment is tmpl/testdata/jinja_ref.py's, the one the golden corpus
is made with: undefined values fail when printed, iterated or accessed but
are falsy and work with default/defined; getip & co., cut, b64encode; the
loopcontrols extension, since tmpl accepts {% break %} and {% continue %}.
"""
import copy
import importlib.util
import json
import os
import sys

import jinja2

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "tmpl", "testdata", "jinja_ref.py")


def load_ref():
    spec = importlib.util.spec_from_file_location("jinja_ref", REF)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ref = load_ref()
    pristine = copy.deepcopy(ref.ADDRS)
    env = ref.env()
    out = sys.stdout
    out.write(json.dumps({"jinja2": jinja2.__version__, "python": sys.version.split()[0]}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        # getipall returns the list itself: a template that appends to it
        # must not change the next case.
        ref.ADDRS = copy.deepcopy(pristine)
        res = {"id": case.get("id")}
        try:
            res["out"] = env.from_string(case["src"]).render(**(case.get("data") or {}))
        except Exception as ex:  # noqa: BLE001 - any failure is a result
            res["error"] = type(ex).__name__
            res["msg"] = str(ex)[:300]
        try:
            text = json.dumps(res, ensure_ascii=True)
        except (TypeError, ValueError) as ex:  # e.g. a lone surrogate
            text = json.dumps({"id": case.get("id"), "error": "EncodeError", "msg": str(ex)[:300]})
        out.write(text + "\n")
        out.flush()


if __name__ == "__main__":
    main()
