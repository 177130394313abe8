#!/usr/bin/env python3
"""Helpers of scripts/bench-gateway.sh (standard library + PyYAML only).

equivalence: ask rolescope (a running enforcing gateway that logs its decisions to a file) every
  request of the check mix for every principal, derive the Cerbos check request of each from
  rolescope's own routing (the decision log's route, action and kind; the route table's scope),
  ask the running Cerbos PDP, and fail unless Cerbos allows exactly what rolescope allows.
  Writes the Cerbos bodies of the timed mix (one JSON per line) for wrk.
report: turn the wrk outputs into the `gateway.md` fragment and `gateway.json`.
"""

import argparse
import base64
import http.client
import json
import re
import sys
import time

import yaml

# ---------------------------------------------------------------- the request mixes

# The timed mix (bench/gateway/proxy.lua sends the same paths): all allowed for `su`.
TIMED_PRINCIPAL = "su"
TIMED = [
    ("GET", "/api/v1/orgs/o1/devices/ap-11"),
    ("GET", "/api/v1/orgs/o2/devices"),
    ("GET", "/api/v1/msp/orgs"),
    ("GET", "/api/v1/orgs/o1/sites/s1/insights"),
    ("GET", "/api/v1/orgs/o3/wlans"),
    ("GET", "/api/v1/msp/settings"),
    ("GET", "/api/v1/orgs/o2"),
    ("GET", "/api/v1/orgs/o1/admins"),
]
# More questions for the equivalence check only: writes and workflows that most roles are
# denied, an organization nobody listed, the MSP portal.
EXTRA = [
    ("POST", "/api/v1/msp/orgs"),
    ("PUT", "/api/v1/msp/settings"),
    ("POST", "/api/v1/msp/admins"),
    ("DELETE", "/api/v1/msp/admins/ana"),
    ("PUT", "/api/v1/orgs/o1"),
    ("POST", "/api/v1/orgs/o1/devices"),
    ("POST", "/api/v1/orgs/o2/devices"),
    ("PUT", "/api/v1/orgs/o1/devices/ap-11"),
    ("DELETE", "/api/v1/orgs/o1/devices/ap-10"),
    ("POST", "/api/v1/orgs/o2/devices/ap-23/reboot"),
    ("POST", "/api/v1/orgs/o1/sites/s1/devices/ap-11/install"),
    ("PUT", "/api/v1/orgs/o2/wlans/corp"),
    ("PUT", "/api/v1/orgs/o1/sites/s1/wlans/guest"),
    ("POST", "/api/v1/orgs/o1/troubleshoot"),
    ("GET", "/api/v1/orgs/o9/devices"),
    ("GET", "/api/v1/orgs/o9/insights"),
    ("POST", "/api/v1/orgs/o1/admins"),
]


def b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def route_table(routes_file):
    """{"METHOD /template": scope template} and the base scope, from the policy's routes.yaml."""
    doc = yaml.safe_load(open(routes_file))["routes"]
    return doc["base"], {r["route"]: r.get("scope", "") for r in doc["table"]}


def fill(template_path, path):
    """Placeholder values of `template_path` matched segment by segment against `path`."""
    t, p = template_path.strip("/").split("/"), path.split("?")[0].strip("/").split("/")
    if len(t) != len(p):
        raise SystemExit(f"route {template_path} does not match {path}")
    values = {}
    for a, b in zip(t, p):
        m = re.fullmatch(r"\{(\w+)\}", a)
        if m:
            values[m.group(1)] = b
        elif a != b:
            raise SystemExit(f"route {template_path} does not match {path}")
    return values


def scope_attrs(scope):
    """Cerbos resource attributes of a rolescope scope path: msp, org, site ("" when absent)."""
    attrs = {"msp": "", "org": "", "site": ""}
    for seg in scope.split("/"):
        kind, _, ident = seg.partition(":")
        if kind not in attrs:
            raise SystemExit(f"unexpected scope segment {seg} in {scope}")
        attrs[kind] = ident
    return attrs


def cerbos_body(claims, decision, path, base, scopes, request_id):
    route = decision["route"]
    method, _, template = route.partition(" ")
    if route not in scopes:
        raise SystemExit(f"route {route} (from the decision log) is not in the route table")
    values = fill(template, path)
    scope = base
    if scopes[route]:
        scope += "/" + re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], scopes[route])
    attr = {"assignments": claims.get("assignments", [])}
    if "status" in claims:
        attr["status"] = claims["status"]
    return {
        "requestId": request_id,
        "principal": {"id": claims["sub"], "roles": ["user"], "attr": attr},
        "resources": [
            {
                "actions": [decision["action"]],
                "resource": {"kind": decision["kind"], "id": decision["resource"] or "-", "attr": scope_attrs(scope)},
            }
        ],
    }


def post_json(conn, path, body):
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    res = conn.getresponse()
    data = res.read()
    if res.status != 200:
        raise SystemExit(f"Cerbos answered {res.status} to {json.dumps(body)}: {data[:300]!r}")
    return json.loads(data)


def equivalence(a):
    tokens = json.load(open(a.tokens))
    base, scopes = route_table(a.routes)
    asked = []  # (principal, method, path, decision id, allowed)
    for name, token in tokens.items():
        for method, path in TIMED + EXTRA:
            body = b"{}" if method in ("POST", "PUT") else None
            headers = {"Authorization": f"Bearer {token}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            # one connection per question (the gateway may close one after refusing a body)
            gw = http.client.HTTPConnection("127.0.0.1", a.gateway_port, timeout=10)
            gw.request(method, path, body=body, headers=headers)
            res = gw.getresponse()
            res.read()
            gw.close()
            # a refusal is 403; an allowed request is forwarded (the demo upstream may answer 404)
            if res.status in (401, 400, 502, 503, 504):
                raise SystemExit(f"rolescope answered {res.status} to {name} {method} {path} (neither allow nor deny)")
            asked.append((name, method, path, res.getheader("x-rolescope-decision-id"), res.status != 403))
    # the decision log is written by a thread of its own: wait for every record
    decisions = {}
    for _ in range(100):
        decisions = {}
        for line in open(a.decisions):
            if line.strip():
                r = json.loads(line)
                decisions[r["decision_id"]] = r
        if all(q[3] in decisions for q in asked):
            break
        time.sleep(0.1)
    cerbos = http.client.HTTPConnection("127.0.0.1", a.cerbos_port, timeout=10)
    mismatches, timed_bodies, allow, deny = [], [], 0, 0
    for n, (name, method, path, did, allowed) in enumerate(asked):
        d = decisions.get(did)
        if d is None:
            raise SystemExit(f"no decision logged for {name} {method} {path} ({did})")
        if d["allowed"] != allowed or not d.get("route") or not d.get("action") or not d.get("kind"):
            raise SystemExit(f"decision log and answer disagree for {name} {method} {path}: {d}")
        claims = b64json(tokens[name].split(".")[1])
        body = cerbos_body(claims, d, path, base, scopes, f"{name}-{n}")
        effect = post_json(cerbos, "/api/check/resources", body)["results"][0]["actions"][d["action"]]
        cerbos_allowed = effect == "EFFECT_ALLOW"
        if cerbos_allowed != allowed:
            mismatches.append(f"{name} {method} {path}: rolescope {allowed}, Cerbos {effect} ({d['kind']} {d['action']})")
        allow, deny = allow + allowed, deny + (not allowed)
        if name == TIMED_PRINCIPAL and (method, path) in TIMED:
            if not allowed:
                raise SystemExit(f"the timed mix must be allowed: {name} {method} {path} was denied by rolescope")
            body.pop("requestId")
            timed_bodies.append(json.dumps(body, separators=(",", ":")))
    if mismatches:
        print("Cerbos disagrees with rolescope:\n  " + "\n  ".join(mismatches), file=sys.stderr)
        raise SystemExit(1)
    if len(timed_bodies) != len(TIMED):
        raise SystemExit(f"the timed mix has {len(TIMED)} requests, {len(timed_bodies)} Cerbos bodies")
    with open(a.bodies, "w") as f:
        f.write("\n".join(timed_bodies) + "\n")
    summary = {"requests": len(asked), "principals": len(tokens), "allowed": allow, "denied": deny}
    json.dump(summary, open(a.summary, "w"))
    print(
        f"equivalence: Cerbos agrees with rolescope on {len(asked)} requests "
        f"({len(tokens)} principals x {len(TIMED) + len(EXTRA)} requests; {allow} allowed, {deny} denied)",
        file=sys.stderr,
    )


# ---------------------------------------------------------------- the report


def to_us(v):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)?", v)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7, None: 1}[m.group(2)]


def parse_wrk(path):
    text = open(path).read()
    out = {"rps": 0.0, "p50": None, "p99": None, "requests": 0, "non2xx": 0, "socket_errors": 0}
    if m := re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M):
        out["rps"] = float(m.group(1))
    if m := re.search(r"^\s*(\d+) requests in", text, re.M):
        out["requests"] = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        out["non2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        out["socket_errors"] = sum(int(x) for x in m.groups())
        out["socket_detail"] = m.group(0)
    for pct, key in (("50%", "p50"), ("99%", "p99")):
        if m := re.search(rf"^\s*{re.escape(pct)}\s+(\S+)", text, re.M):
            out[key] = to_us(m.group(1))
    return out


def failures_of(path):
    """The wrk script's counts by cause ("status reason" -> n)."""
    counts = {}
    try:
        for line in open(path):
            k, _, n = line.rstrip("\n").rpartition("\t")
            if k:
                counts[k] = counts.get(k, 0) + int(n)
    except FileNotFoundError:
        pass
    return counts


def fmt_us(v):
    return "n/a" if v is None else (f"{v:,.0f} µs" if v >= 100 else f"{v:.1f} µs")


def report(a):
    meta = json.load(open(a.meta))
    names = ["enforcing", "passthrough", "nginx", "cerbos", "cerbos_floor"]
    labels = {
        "enforcing": "rolescope-gateway, enforcing",
        "passthrough": "rolescope-gateway, passthrough (`enforce: false`)",
        "nginx": "nginx (plain `proxy_pass`)",
        "cerbos": "Cerbos PDP, `POST /api/check/resources` (decision only)",
        "cerbos_floor": "Cerbos PDP with allow-all policies (reference: its check path alone)",
    }
    r = {}
    for n in names:
        r[n] = parse_wrk(f"{a.work}/wrk.{n}")
        r[n]["rss_mb"] = meta["rss_kb"].get(n, 0) / 1024
        r[n]["failures"] = failures_of(f"{a.work}/failures.{n}")
        r[n]["failed"] = r[n]["non2xx"] + r[n]["socket_errors"] + (
            r[n]["failures"].get("200 EFFECT_DENY", 0) if n.startswith("cerbos") else 0
        )
    enf = r["enforcing"]

    def ratio(x, y):
        return x / y if y else 0.0

    vs_pass = ratio(enf["rps"], r["passthrough"]["rps"])
    vs_nginx = ratio(enf["rps"], r["nginx"]["rps"])
    vs_cerbos = ratio(enf["rps"], r["cerbos"]["rps"])
    added_p99 = (enf["p99"] or 0) - (r["passthrough"]["p99"] or 0)
    goals = [
        {"goal": "enforcing vs passthrough throughput", "target": ">= 0.9x", "result": f"{vs_pass:.2f}x", "met": vs_pass >= 0.9},
        {"goal": "enforcing vs nginx throughput", "target": ">= 1.0x", "result": f"{vs_nginx:.2f}x", "met": vs_nginx >= 1.0},
        {"goal": "p99 added by enforcement (enforcing - passthrough)", "target": "<= 50 µs", "result": fmt_us(added_p99), "met": added_p99 <= 50},
        {"goal": "enforcing gateway peak RSS under load", "target": "<= 100 MB", "result": f"{enf['rss_mb']:.1f} MB", "met": enf["rss_mb"] <= 100},
        {"goal": "enforcing gateway vs Cerbos requests/s", "target": ">= 10x", "result": f"{vs_cerbos:.2f}x", "met": vs_cerbos >= 10},
        {"goal": "every timed request answered as allowed (all are)", "target": "0 failures", "result": str(sum(r[n]["failed"] for n in names)), "met": all(r[n]["failed"] == 0 for n in names)},
    ]
    comparator = {
        "enforcing": ("—", None),
        "passthrough": (f"{vs_pass:.2f}x (enforcing / passthrough)", "≥ 0.9x"),
        "nginx": (f"{vs_nginx:.2f}x (enforcing / nginx)", "≥ 1.0x"),
        "cerbos": (f"{vs_cerbos:.2f}x (enforcing / Cerbos)", "≥ 10x"),
        "cerbos_floor": (f"{ratio(enf['rps'], r['cerbos_floor']['rps']):.2f}x (enforcing / allow-all Cerbos)", None),
    }
    goal_of = {"passthrough": goals[0]["met"], "nginx": goals[1]["met"], "cerbos": goals[4]["met"]}

    def verdict(ok):
        return "met" if ok else "**missed**"

    def causes(n):
        f = dict(r[n]["failures"])
        parts = [f"{k}: {v}" for k, v in sorted(f.items())]
        if r[n]["socket_errors"]:
            parts.append(r[n]["socket_detail"])
        return "; ".join(parts) if parts else "—"

    md = []
    md.append("## Gateway (wrk): enforcing vs passthrough vs nginx vs Cerbos\n")
    md.append(f"`{meta['command']}`\n")
    md.append(
        f"wrk {meta['threads']} threads, {meta['connections']} connections, {meta['duration']} per target after a "
        f"{meta['warmup']} warm-up, everything on 127.0.0.1 of one machine (wrk, the target and the demo upstream "
        "share the cores). The proxies get the same 8 GET requests in rotation (Super User token, "
        "juniper-mist-msp bundle, all allowed) in front of `rolescope-demo-upstream --log-limit 0`. The "
        "enforcing gateway verifies the RS256 token (cached until expiry), routes and decides in the wasm "
        "engine, writes no decision log and **then proxies the request to the upstream**; passthrough is the "
        "same binary with `enforce: false`; nginx is a plain `proxy_pass` with upstream keep-alive, 1 worker. "
        "**Cerbos only answers the decision** (no token check, no routing, no upstream call): its row is "
        f"Cerbos {meta['versions'].get('cerbos', '?')} from the npm package `@cerbos/cerbos-linux-x64` answering the check request "
        "of each of the same 8 requests (one principal, one resource, one action, the same "
        "questions rolescope asked) over its HTTP API, so the ratio is gateway work (decision + proxy) "
        "against Cerbos decision work. The allow-all row is a second Cerbos whose policies allow every action "
        "to every caller (not the same decisions, no goal): the cost of Cerbos' HTTP check path without our "
        "policy. Peak RSS: the process (nginx: master + worker) sampled every 0.2 s.\n"
    )
    if meta.get("quick"):
        md.append("**`--quick` run: short durations; these numbers only show that the benchmark works.**\n")
    if meta.get("overloaded"):
        md.append(
            f"**The machine was busy during this run** (load average, 1/5/15 min, {meta['load']} on {meta['cores']} "
            "cores): the percentiles mostly measure scheduling delays and the ratios are noisy.\n"
        )
    md.append("| target | requests/s | p50 | p99 | peak RSS | failed / requests | ratio | goal | |")
    md.append("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
    for n in names:
        x = r[n]
        comp, target = comparator[n]
        md.append(
            f"| {labels[n]} | {x['rps']:,.0f} | {fmt_us(x['p50'])} | {fmt_us(x['p99'])} | {x['rss_mb']:.1f} MB | "
            f"{x['failed']} / {x['requests']} | {comp} | {target or '—'} | {verdict(goal_of[n]) if n in goal_of else ''} |"
        )
    md.append("")
    md.append("| goal | target | result | |")
    md.append("| --- | --- | ---: | --- |")
    for g in goals:
        md.append(f"| {g['goal']} | {g['target']} | {g['result']} | {verdict(g['met'])} |")
    md.append("")
    md.append(
        "Failed = answers other than allowed: non-2xx (proxies; counted by status and the refusal's `reason`), "
        "non-200 or a deny (Cerbos), plus wrk socket errors. By cause: "
        + "; ".join(f"{n} {causes(n)}" for n in names)
        + "."
    )
    md.append("")
    eq = meta["equivalence"]
    md.append(
        f"Before timing, Cerbos was checked against rolescope on {eq['requests']} requests ({eq['principals']} "
        f"principals of `policies/juniper-mist-msp/mist_msp_test.yaml` x {eq['requests'] // max(eq['principals'], 1)} "
        f"requests: the 8 timed ones plus writes, workflows and an unlisted organization; {eq['allowed']} allowed, "
        f"{eq['denied']} denied): rolescope's answer is the enforcing gateway's (403 = deny, forwarded = allow, "
        "matching its decision log), the Cerbos question is "
        "built from the gateway's decision log (route, action, kind; scope from the route table) and the token's "
        "claims; they agreed on every one. Cerbos model (`bench/gateway/cerbos/`): one resource policy per kind "
        "(the role matrix), one derived role per Mist role computed in CEL from the principal's `assignments` "
        "attribute (MSP roles at the MSP with optional organization lists, Org roles at one organization, "
        "Super User ignores lists, only the highest-ranked reaching role counts, suspended/deleted get none)."
    )
    md.append("")
    rows = []
    for n in names:
        x = r[n]
        rows.append(
            {
                "target": n,
                "label": labels[n],
                "requests_per_s": round(x["rps"], 1),
                "p50_us": x["p50"],
                "p99_us": x["p99"],
                "peak_rss_mb": round(x["rss_mb"], 1),
                "requests": x["requests"],
                "failed": x["failed"],
                "failures": x["failures"],
                "ratio": None if n == "enforcing" else round(ratio(enf["rps"], x["rps"]), 3),
                "ratio_of": None if n == "enforcing" else f"enforcing / {n} requests/s",
            }
        )
    doc = {
        "part": "gateway",
        "quick": bool(meta.get("quick")),
        "command": meta["command"],
        "versions": meta["versions"],
        "equivalence": eq,
        "rows": rows,
        "goals": goals,
    }
    open(f"{a.out}/gateway.md", "w").write("\n".join(md).rstrip() + "\n")
    open(f"{a.out}/gateway.json", "w").write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print("\n".join(md))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("equivalence")
    e.add_argument("--tokens", required=True)
    e.add_argument("--routes", required=True)
    e.add_argument("--gateway-port", type=int, required=True)
    e.add_argument("--decisions", required=True)
    e.add_argument("--cerbos-port", type=int, required=True)
    e.add_argument("--bodies", required=True)
    e.add_argument("--summary", required=True)
    rp = sub.add_parser("report")
    rp.add_argument("--work", required=True)
    rp.add_argument("--meta", required=True)
    rp.add_argument("--out", required=True)
    a = p.parse_args()
    equivalence(a) if a.cmd == "equivalence" else report(a)


if __name__ == "__main__":
    main()
