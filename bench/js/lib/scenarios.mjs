// The scenarios of the bench contract (bench/README or notes: (a)-(d) and the Node batch), as
// plain data every peer turns into its own inputs. Native (bench/peers) and Node use the same
// principals, resources and actions; nothing here says what the answers are: rolescope answers
// and every peer is checked against it.

import { readFileSync } from "node:fs";
import { join } from "node:path";

import { root } from "../../../bindings/npm/testing.mjs";

/** The Juniper-style MSP policy of (a), (c), (d) and the batch (`engine/benches/msp.yaml`). */
export const MSP_FILE = "engine/benches/msp.yaml";
/** The Site24x7 seed policy of (b). */
export const SITE24X7_FILE = "policies/site24x7-msp/roles.yaml";

export const readRepoFile = (path) => readFileSync(join(root, path), "utf8");

/** The MSP of (a): 100 orgs `o0`..`o99` under `msp:acme`, each with site `s1`. */
export const MSP = "acme";
export const ORGS = 100;
export const SITE = "s1";

/**
 * Ana's 10 assignments spread over the 100 orgs (`o0`, `o10`, ..., `o90`), the roles cycling
 * through this list, as `principal(&roles, 100, 10)` in engine/benches/decide.rs.
 */
export const A_ROLES = ["network_admin", "observer", "installer", "helpdesk", "network_admin"];
export const A_ASSIGNMENTS = 10;

/** A device of org `o<org>` at its site `s1`. */
export const device = (org) => ({ kind: "device", id: `d${org}`, org: `o${org}`, site: SITE });

/**
 * The scenarios as data. `deviceActions` is the `device` kind's action list as rolescope knows
 * it (read from the compiled policy, so an action added to msp.yaml is benchmarked everywhere).
 */
export function scenarios(deviceActions) {
  const ana = {
    id: "ana",
    assignments: Array.from({ length: A_ASSIGNMENTS }, (_, i) => ({
      role: A_ROLES[i % A_ROLES.length],
      org: `o${(i * ORGS) / A_ASSIGNMENTS}`,
    })),
  };
  // the orgs of engine/benches/decide.rs: o50 is assigned, o61 is not
  const assigned = { org: "o50", role: ana.assignments.find((a) => a.org === "o50")?.role ?? "none" };
  const page = Array.from({ length: ORGS }, (_, i) => device(i));
  // (b): Site24x7 MSP `zylker`, customer account `c1`, an Operator and two maintenance windows
  const op = { id: "op", assignments: [{ role: "operator", customer: "c1" }] };
  const window = (id, createdBy) => ({
    kind: "maintenance_window",
    id,
    msp: "zylker",
    customer: "c1",
    createdBy,
    modifiedBySuperAdmin: false,
  });
  return {
    principals: { ana, op },
    deviceActions,
    cases: [
      {
        id: "a.allowed",
        title: `(a) MSP role on one of 100 orgs, 10 assignments: \`update\` a device of an assigned org (${assigned.org}, ${assigned.role})`,
        kind: "decision",
        policy: "msp",
        principal: "ana",
        action: "update",
        resource: device(Number(assigned.org.slice(1))),
      },
      {
        id: "a.denied",
        title: "(a) the same principal, a device of an org it holds no role in (o61)",
        kind: "decision",
        policy: "msp",
        principal: "ana",
        action: "update",
        resource: device(61),
      },
      {
        id: "b.own",
        title: "(b) ownership condition: a Site24x7 Operator updates a maintenance window it created",
        kind: "decision",
        policy: "site24x7",
        principal: "op",
        action: "update",
        resource: window("w1", "op"),
      },
      {
        id: "b.other",
        title: "(b) the same Operator, a window another user (`hp`) created",
        kind: "decision",
        policy: "site24x7",
        principal: "op",
        action: "update",
        resource: window("w3", "hp"),
      },
      {
        id: "c",
        title: `(c) allowed actions for one device (all ${deviceActions.length} actions of \`device\`, ${assigned.org})`,
        kind: "actions",
        policy: "msp",
        principal: "ana",
        actions: deviceActions,
        resource: device(Number(assigned.org.slice(1))),
      },
      {
        id: "batch",
        title: "Node batch: 1 principal x 100 tenants x 4 actions (one device per org)",
        kind: "batch",
        policy: "msp",
        principal: "ana",
        actions: ["view", "update", "delete", "reboot"],
        resources: page,
      },
      {
        id: "d",
        title: `(d) 100 resources x ${deviceActions.length} actions (every action of \`device\`, one device per org)`,
        kind: "batch",
        policy: "msp",
        principal: "ana",
        actions: deviceActions,
        resources: page,
      },
    ],
  };
}
