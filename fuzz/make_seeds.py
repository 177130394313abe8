#!/usr/bin/env python3
"""Write the committed seed inputs of the fuzz targets (fuzz/seeds/<target>/) from the seed
policies, the language corpus and the parity requests (target/parity/requests.jsonl, from
`cargo run -p rolescope-parity`). Run from the repository root; deterministic.

scripts/fuzz.sh copies these seeds, plus every role file, into fuzz/corpus/<target>/ before
fuzzing; the corpus grows there (not committed)."""

import glob
import hashlib
import json
import os
import re
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = ["jumpcloud-mtp", "juniper-mist-msp", "msp-panel", "site24x7-msp"]
OUT = os.path.join(ROOT, "fuzz", "seeds")


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def role_files():
    files = sorted(glob.glob(os.path.join(ROOT, "policies", "*", "*.yaml")))
    files += sorted(glob.glob(os.path.join(ROOT, "tests", "corpus", "*", "*.yaml")))
    return [f for f in files if not f.endswith("_test.yaml")]


def conditions():
    out = set()
    for f in role_files():
        for line in open(f, encoding="utf-8"):
            m = re.match(r"\s*(?:- )?when:\s*(.+?)\s*$", line)
            if not m:
                continue
            v = m.group(1)
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            out.add(v)
    return sorted(out)


def routes(policy):
    text = open(os.path.join(ROOT, "policies", policy, "routes.yaml"), encoding="utf-8").read()
    return re.findall(r'"((?:GET|POST|PUT|PATCH|DELETE) /[^"]*)"', text)


def fill(path, value):
    return re.sub(r"\{[^}]+\}", value, path)


def parity(limit_per_policy):
    path = os.path.join(ROOT, "target", "parity", "requests.jsonl")
    if not os.path.exists(path):
        return []
    rows, count = [], {}
    for line in open(path, encoding="utf-8"):
        row = json.loads(line)
        name = row["policy"].split("/")[-1]
        if name not in SEEDS or count.get(name, 0) >= limit_per_policy:
            continue
        count[name] = count.get(name, 0) + 1
        rows.append((SEEDS.index(name), row["request"]))
    return rows


# conditions over the attributes of the `condition` target's fixed policy (fuzz/src/checks.rs)
FIXED_POLICY_CONDITIONS = [
    'principal.team == "ops" and resource.urgent',
    'has context.risk and context.risk > 5 or "vip" in resource.labels',
    'not has(resource.tier) || resource.tier <= principal.clearance',
    'context.now >= time("2026-01-01T00:00:00Z") && context.now < resource.ends_at',
    'resource.id in principal.groups and principal.mfa == true',
    'resource.kind == "device" and resource.scope != "" and principal.id != "x"',
    '(principal.clearance > 2) == (context.risk < 10)',
    '"a" in ["a", "b"] and !(1 == 2)',
]


def chunk(data):
    return struct.pack("<H", len(data)) + data


def compact(handle, kind, action, scope, rid):
    out = struct.pack("<I", handle)
    for s in (kind, action, scope, rid):
        b = s.encode()
        out += struct.pack("<H", len(b)) + b
    return out + struct.pack("<I", 0) + struct.pack("<I", 0)


def main():
    for f in role_files():
        write("parse_policy", open(f, "rb").read())
    for c in conditions() + FIXED_POLICY_CONDITIONS:
        write("condition", c)
    for i, p in enumerate(SEEDS):
        for r in routes(p):
            method, path = r.split(" ", 1)
            for value in ("o1", "acme", "%2e%2e", "a%2Fb"):
                write("http_route", f"{method}\n{fill(path, value)}\nauthorization: Bearer x\nx-org: o1")
    rows = parity(40)
    for i, req in rows:
        write("decide", str(i) + json.dumps(req, separators=(",", ":")))
    for n, (i, req) in enumerate(rows[::4]):
        principal = json.dumps(req["principal"], separators=(",", ":")).encode() if isinstance(req["principal"], dict) else b"{}"
        res = req["resource"]
        ops = bytes([i])
        ops += bytes([1]) + chunk(principal)  # rs_principal -> handle 0
        ops += bytes([2]) + chunk(compact(0, res["kind"], req["action"], res["scope"], res.get("id", "")))
        ops += bytes([3]) + chunk(json.dumps(req, separators=(",", ":")).encode())
        for k, r in enumerate(routes(SEEDS[i])[n % 5 :: 7]):
            method, path = r.split(" ", 1)
            target = fill(path, ("o1", "acme", "%2e%2e", "x")[k % 4]).encode()
            who = bytes([2 if k % 2 else 0])  # handle of the principal above, or anonymous
            ops += bytes([7]) + who + chunk(method.encode()) + chunk(target) + bytes([1]) + chunk(b"x-org") + chunk(b"o1")
        if n % 2:
            ops += bytes([4]) + struct.pack("<I", 0)  # free handle 0, then decide with it
            ops += bytes([2]) + chunk(compact(0, res["kind"], req["action"], res["scope"], ""))
        write("wasm_abi", ops)


if __name__ == "__main__":
    main()
