// The two policies' roles as a JS application writes them down for the peers that have no
// policy text of their own in bench/scenarios (CASL rules, casbin `p` lines): actions on
// resource kinds per role, in CASL's vocabulary (`manage`/`all` = every action of every kind).
// Hand-written from engine/benches/msp.yaml and policies/site24x7-msp/roles.yaml; the agreement
// check (bench/js/peers.mjs) proves them equal to rolescope on every benchmarked request.

export const READ = ["view", "list"];
export const EDIT = [...READ, "create", "update", "delete"];

/**
 * engine/benches/msp.yaml: rank and grants per role; `own` marks grants that need
 * `createdBy` to be the user (`when: resource.created_by == principal.id`).
 */
export const MSP_ROLES = {
  super_user: { rank: 100, grants: [{ action: "manage", subject: "all" }] },
  network_admin: {
    rank: 80,
    grants: [
      { action: READ, subject: "msp_dashboard" },
      { action: EDIT, subject: ["site", "device", "wlan"] },
      { action: [...READ, "update"], subject: "org_settings" },
      { action: ["update", "delete"], subject: "maintenance_window", own: true },
      { action: [...READ, "create"], subject: "maintenance_window" },
      { action: ["configure", "upgrade_firmware"], subject: "device" },
    ],
  },
  observer: {
    rank: 40,
    grants: [{ action: READ, subject: ["msp_dashboard", "org_settings", "site", "device", "wlan", "maintenance_window"] }],
  },
  installer: {
    rank: 20,
    grants: [
      { action: READ, subject: ["site", "device"] },
      { action: ["claim", "update"], subject: "device" },
    ],
  },
  helpdesk: {
    rank: 30,
    grants: [
      { action: READ, subject: ["site", "device", "wlan"] },
      { action: "reboot", subject: "device" },
      { action: "view_logs", subject: "device" },
    ],
  },
};

const MODULES = ["monitor", "monitor_group", "maintenance_window", "outage_comment", "report"];

/** policies/site24x7-msp/roles.yaml: the Operator (the role of scenario (b)), only on the default web client. */
export const SITE24X7_ROLES = {
  operator: {
    channel: "web_client",
    grants: [
      { action: READ, subject: MODULES },
      { action: "create", subject: ["maintenance_window", "outage_comment"] },
      // `unmodified`: "until a Super Admin modifies it"
      { action: ["update", "delete"], subject: "maintenance_window", own: true, unmodified: true },
      { action: "update", subject: "outage_comment", own: true },
    ],
  },
};

