// Type-checked (never run) by types.test.mjs against the published declarations, as a user's
// project would import them: the API must accept what the engine accepts and type every result.

import {
  Policy,
  type AssignDecision,
  type DecisionReport,
  type Diagnostic,
  type Explanation,
  type InvalidPolicy,
  type Principal,
  type PreparedPrincipal,
  type Reason,
  type Request,
  type Resource,
  type RoleSummary,
  type Verdict,
} from "rolescope";

declare const bundle: string;

let policy: Policy;
try {
  policy = Policy.fromBundle(bundle);
} catch (e) {
  const invalid = e as InvalidPolicy;
  const d: Diagnostic[] = invalid.diagnostics;
  throw new Error(`${d[0]?.location.file}:${d[0]?.location.line}:${d[0]?.location.column}`);
}
const name: string = policy.name + policy.revision;
const warnings: Diagnostic[] = policy.warnings;
const roles: RoleSummary[] = policy.roles();
const title: string | null = roles[0]?.title ?? null;

const ana: Principal = {
  id: "ana",
  status: "active",
  attributes: { groups: ["senior"], clearance: 3, mfa: { required: true } },
  assignments: [{ role: "network_admin", scope: "msp:acme", tenants: ["org:o1"] }],
};
const device: Resource = { kind: "device", id: "d1", scope: "msp:acme/org:o1", attributes: { tier: 2 } };
const request: Request = { principal: ana, action: "reboot", resource: device, context: { channel: "web" } };
const byId: Request = { principal: "ana", action: "view", resource: { kind: "device", scope: "msp:acme" } };

const verdict: Verdict = policy.check(request);
const allowed: boolean = verdict.allowed;
const reason: Reason = verdict.reason;
const detail: string | undefined = verdict.detail;

const report = policy.checkReport(byId);
if ("matched" in report) {
  const r: DecisionReport = report;
  const where: string | undefined = r.matched[0]?.source;
  const effect: "grant" | "deny" | undefined = r.matched[0]?.effect;
  void [where, effect];
} else {
  const why: string = report.detail;
  void why;
}
const explanation = policy.explain(request);
if ("steps" in explanation) {
  const e: Explanation = explanation;
  void e.steps.map((s) => `${s.step} ${s.outcome} ${s.rule ?? ""}`);
}

const p: PreparedPrincipal = policy.preparePrincipal(ana);
const can: boolean = policy.can(p, "reboot", "device", "msp:acme/org:o1");
const r = policy.prepareResource(device);
const fast: boolean = policy.allowed(p, "view", r);
const decided: Verdict = policy.decide(p, "update", device, { channel: "web" });
const decidedNoContext: Verdict = policy.decide(p, "update", device);
const actions: string[] = policy.allowedActions(p, device);
const page: string[][] = policy.allowedActionsBatch(p, [device, device], ["view", "update"]);
const assign: AssignDecision = policy.canAssign({ principal: ana, role: "observer", scope: "msp:acme/org:o1" });
r.free();
p.free();
policy.free();

void [name, warnings, title, byId, allowed, reason, detail, can, fast, decided, decidedNoContext, actions, page];
void [assign.reason === "rank_exceeds_own"];

// What the declarations reject:
// @ts-expect-error: an action is a string
policy.check({ principal: ana, action: 1, resource: device });
// @ts-expect-error: a resource needs a scope
policy.check({ principal: ana, action: "view", resource: { kind: "device" } });
// @ts-expect-error: statuses are active, suspended or deleted
const badStatus: Principal = { id: "x", status: "paused" };
// @ts-expect-error: not a reason code
void (verdict.reason === "forbidden");
// @ts-expect-error: attribute values are JSON
const badAttributes: Resource = { kind: "device", scope: "msp:acme", attributes: { at: new Date() } };
// @ts-expect-error: the constructor is private; use fromBundle
new Policy();
// @ts-expect-error: compiling role files is `rolescope/compiler`'s
Policy.compile([{ name: "roles.yaml", text: "" }]);
void [badStatus, badAttributes];
