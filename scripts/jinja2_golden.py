#!/usr/bin/env python3
"""Render Occopus tutorials with Python's Jinja2 and PyYAML, the reference
implementation, into golden JSON files for the Go render tests.

    python3 scripts/jinja2_golden.py ../shared/occopus-tutorials internal/cli/testdata/tutorials

For each tutorial folder (infra-*.yaml + nodes/node_definitions.yaml) it
writes NAME.json in the shape `occopus render` prints, with fixed ids and
documentation addresses (the Go test passes the same ones on the command
line). It follows Occopus's resolution (occo infra-processor): template
data = node_id + node description + node definition + functions; the
config manager is resolved first and may add names (puppet.*); cloud-init
mappings are rendered string by string and then dumped as YAML after a
#cloud-config line (Occopus dumps first and renders the text, which breaks
on quotes; that bug is deliberately not reproduced).
"""
import base64
import json
import os
import sys

import jinja2
import yaml

INFRA_ID = "11111111-1111-4111-8111-111111111111"


def node_id(i):
    return "22222222-2222-4222-8222-%012d" % (i + 1)


def ip(i):
    return "192.0.2.%d" % (i % 254 + 1)


def privip(i):
    return "198.51.100.%d" % (i % 254 + 1)


def make_loader(path):
    base = os.path.dirname(path)

    class Loader(yaml.SafeLoader):
        pass

    def target(node):
        url = None
        for k, v in node.value:
            if k.value == "url":
                url = v.value
        url = url.strip()
        if url.startswith("file://"):
            url = url[len("file://"):]
        return os.path.normpath(os.path.join(base, url))

    def yaml_import(loader, node):
        p = target(node)
        with open(p) as f:
            return yaml.load(f, Loader=make_loader(p))

    def text_import(loader, node):
        with open(target(node)) as f:
            return f.read()

    Loader.add_constructor("!yaml_import", yaml_import)
    Loader.add_constructor("!text_import", text_import)
    return Loader


def load(path):
    with open(path) as f:
        return yaml.load(f, Loader=make_loader(path))


def dict_merge(a, b):
    out = dict(a)
    for k, v in b.items():
        if isinstance(out.get(k), dict) and isinstance(v, dict):
            out[k] = dict_merge(out[k], v)
        else:
            out[k] = v
    return out


def b64encode(value):
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


ENV = jinja2.Environment()
ENV.filters["b64encode"] = b64encode


def render_tree(v, data):
    if isinstance(v, dict):
        return {k: render_tree(x, data) for k, x in v.items()}
    if isinstance(v, list):
        return [render_tree(x, data) for x in v]
    if isinstance(v, str):
        return ENV.from_string(v).render(**data)
    return v


def name_of(ref):
    return ref["name"] if isinstance(ref, dict) else ref


def render_tutorial(folder):
    infra_file = [f for f in os.listdir(folder) if f.startswith("infra-") and f.endswith(".yaml")][0]
    infra = load(os.path.join(folder, infra_file))
    defs = load(os.path.join(folder, "nodes", "node_definitions.yaml"))
    nodes = infra["nodes"]
    index = {n["name"]: i for i, n in enumerate(nodes)}
    inbound = {n["name"]: {} for n in nodes}
    outbound = {n["name"]: {} for n in nodes}
    for d in infra.get("dependencies") or []:
        if isinstance(d, dict):
            conn, maps = d["connection"], d.get("mappings") or []
        else:
            conn, maps = d, []
        a, b = name_of(conn[0]), name_of(conn[1])
        ms = [{"attributes": list(m["attributes"]), "synch": bool(m.get("synch", False))} for m in maps]
        inbound[a].setdefault(b, []).extend(ms)
        outbound[b].setdefault(a, []).extend(ms)

    def getip(n):
        return ip(index[n])

    def getprivip(n):
        return privip(index[n])

    def getipall(n):
        return [ip(index[n])]

    def cut(s, a, b):
        return s[a:b]

    out = {"infra_id": INFRA_ID, "nodes": {}}
    for i, n in enumerate(nodes):
        smin = max(n.get("scaling", {}).get("min", 1), 1)
        smax = max(n.get("scaling", {}).get("max", smin), smin)
        desc = {
            "infra_id": INFRA_ID,
            "infra_name": infra["infra_name"],
            "user_id": infra.get("user_id", ""),
            "name": n["name"],
            "type": n["type"],
            "variables": dict_merge(infra.get("variables") or {}, n.get("variables") or {}),
            "attributes": n.get("attributes") or {},
            "scaling": {"min": smin, "max": smax},
            "mappings": {"inbound": inbound[n["name"]], "outbound": outbound[n["name"]]},
        }
        if "filter" in n:
            desc["filter"] = n["filter"]
        impls = []
        for impl in defs["node_def:" + n["type"]]:
            res = impl["resource"]
            if any(str(res.get(k)) != str(v) for k, v in (n.get("filter") or {}).items()):
                continue
            data = dict(node_id=node_id(i))
            data.update(desc)
            data.update(impl)
            data.update(getip=getip, getprivip=getprivip, getipall=getipall, cut=cut)
            r = {}
            cm = impl.get("config_management")
            if cm is not None:
                rcm = {k: (v if k == "type" else render_tree(v, data)) for k, v in cm.items()}
                r["config_management"] = rcm
                if cm["type"] == "puppet_solo":
                    data["puppet"] = {
                        k: " ".join(str(x) for x in rcm.get(k, [])) for k in ("modules", "manifests", "attributes")
                    }
            r["resource"] = render_tree(res, data)
            ctx = impl.get("contextualisation")
            if ctx is not None:
                rc = dict(ctx)
                if ctx["type"] == "cloudinit":
                    t = rc.pop("context_template")
                    if isinstance(t, dict):
                        rc["context"] = "#cloud-config\n" + yaml.dump(render_tree(t, data), default_flow_style=False)
                    else:
                        rc["context"] = ENV.from_string(t).render(**data)
                    if "attributes" in ctx:
                        rc["attributes"] = render_tree(ctx["attributes"], data)
                elif ctx["type"] == "docker":
                    for k in ("env", "command", "attributes"):
                        if k in ctx:
                            rc[k] = render_tree(ctx[k], data)
                r["contextualisation"] = rc
            impls.append(r)
        out["nodes"][n["name"]] = {"node_id": node_id(i), "implementations": impls}
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        folder = os.path.join(src, name)
        if not os.path.isfile(os.path.join(folder, "nodes", "node_definitions.yaml")):
            continue
        with open(os.path.join(dst, name + ".json"), "w") as f:
            json.dump(render_tutorial(folder), f, indent=2, sort_keys=True)
            f.write("\n")
        print("wrote", name)


if __name__ == "__main__":
    main()
