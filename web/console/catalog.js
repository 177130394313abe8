// The demo console's pages: for each seed policy, its tenants (with the ids of the demo
// upstream's seeded items) and its buttons. Each button is one request of the policy's route
// table (policies/<name>/routes.yaml): the page asks the engine about that very request
// (`authorizeHttp`) to decide whether to show it, and sends it through the gateway on click.
// Paths use `{name}` placeholders filled from the tenant's `params`. Shared with the browser
// test (tests/browser/), which sends every button's request to the gateway itself.

/** @typedef {{ id: string, label: string, group: string, method: string, path: string, body?: object }} Button */
/** @typedef {{ id: string, label: string, params: Record<string, string> }} Tenant */
/** @typedef {{ title: string, suite: string, tenants: Tenant[], buttons: Button[] }} Page */

/** @type {Record<string, Page>} */
export const PAGES = {
  "juniper-mist-msp": {
    title: "Mist MSP portal",
    suite: "policies/juniper-mist-msp/mist_msp_test.yaml",
    tenants: [
      { id: "o1", label: "Organization o1", params: { org: "o1", site: "s1", device: "ap-11", wlan: "corp", admin: "oa1" } },
      { id: "o2", label: "Organization o2", params: { org: "o2", site: "s21", device: "ap-21", wlan: "corp", admin: "oa2" } },
      { id: "o3", label: "Organization o3", params: { org: "o3", site: "s31", device: "ap-31", wlan: "corp", admin: "oa3" } },
    ],
    buttons: [
      { id: "msp-orgs", group: "MSP portal", label: "Open MSP portal", method: "GET", path: "/api/v1/msp/orgs" },
      { id: "msp-settings", group: "MSP portal", label: "View MSP settings", method: "GET", path: "/api/v1/msp/settings" },
      { id: "msp-settings-edit", group: "MSP portal", label: "Edit MSP settings", method: "PUT", path: "/api/v1/msp/settings", body: { branding: "blue" } },
      { id: "msp-invite", group: "MSP portal", label: "Invite MSP admin", method: "POST", path: "/api/v1/msp/admins", body: { email: "new@msp.example" } },
      { id: "org-view", group: "Organization", label: "View organization", method: "GET", path: "/api/v1/orgs/{org}" },
      { id: "org-rename", group: "Organization", label: "Rename organization", method: "PUT", path: "/api/v1/orgs/{org}", body: { name: "Renamed" } },
      { id: "org-admins", group: "Administrators", label: "List admins", method: "GET", path: "/api/v1/orgs/{org}/admins" },
      { id: "org-invite", group: "Administrators", label: "Invite admin", method: "POST", path: "/api/v1/orgs/{org}/admins", body: { email: "admin@org.example" } },
      { id: "org-admin-remove", group: "Administrators", label: "Remove admin", method: "DELETE", path: "/api/v1/orgs/{org}/admins/{admin}" },
      { id: "devices", group: "Devices", label: "List devices", method: "GET", path: "/api/v1/orgs/{org}/devices" },
      { id: "device-claim", group: "Devices", label: "Claim device", method: "POST", path: "/api/v1/orgs/{org}/devices", body: { kind: "ap" } },
      { id: "device-edit", group: "Devices", label: "Edit device", method: "PUT", path: "/api/v1/orgs/{org}/devices/{device}", body: { name: "lobby" } },
      { id: "device-reboot", group: "Devices", label: "Reboot device", method: "POST", path: "/api/v1/orgs/{org}/devices/{device}/reboot" },
      { id: "device-upgrade", group: "Devices", label: "Upgrade firmware", method: "POST", path: "/api/v1/orgs/{org}/devices/{device}/upgrade" },
      { id: "device-install", group: "Devices", label: "Install at site", method: "POST", path: "/api/v1/orgs/{org}/sites/{site}/devices/{device}/install" },
      { id: "device-release", group: "Devices", label: "Release device", method: "DELETE", path: "/api/v1/orgs/{org}/devices/{device}" },
      { id: "wlans", group: "Network", label: "List WLANs", method: "GET", path: "/api/v1/orgs/{org}/wlans" },
      { id: "wlan-create", group: "Network", label: "Create WLAN", method: "POST", path: "/api/v1/orgs/{org}/wlans", body: { ssid: "guest-2" } },
      { id: "wlan-edit", group: "Network", label: "Edit WLAN", method: "PUT", path: "/api/v1/orgs/{org}/wlans/{wlan}", body: { ssid: "corp-5g" } },
      { id: "wlan-delete", group: "Network", label: "Delete WLAN", method: "DELETE", path: "/api/v1/orgs/{org}/wlans/{wlan}" },
      { id: "insights", group: "Monitoring", label: "View insights", method: "GET", path: "/api/v1/orgs/{org}/insights" },
      { id: "troubleshoot", group: "Monitoring", label: "Troubleshoot", method: "POST", path: "/api/v1/orgs/{org}/troubleshoot" },
    ],
  },
  "site24x7-msp": {
    title: "Site24x7 MSP",
    suite: "policies/site24x7-msp/site24x7_msp_test.yaml",
    tenants: [
      { id: "c1", label: "Customer c1", params: { customer: "c1", group: "web", monitor: "m11", window: "w11" } },
      { id: "c2", label: "Customer c2", params: { customer: "c2", group: "web", monitor: "m21", window: "w21" } },
      { id: "c3", label: "Customer c3", params: { customer: "c3", group: "web", monitor: "m31", window: "w31" } },
    ],
    buttons: [
      { id: "customers", group: "MSP", label: "List customers", method: "GET", path: "/api/customers" },
      { id: "customer-create", group: "MSP", label: "Add customer", method: "POST", path: "/api/customers", body: { name: "New" } },
      { id: "customer-view", group: "Customer", label: "View customer", method: "GET", path: "/api/customers/{customer}" },
      { id: "customer-edit", group: "Customer", label: "Edit customer", method: "PUT", path: "/api/customers/{customer}", body: { name: "Renamed" } },
      { id: "users", group: "Users", label: "List users", method: "GET", path: "/api/customers/{customer}/users" },
      { id: "user-invite", group: "Users", label: "Invite user", method: "POST", path: "/api/customers/{customer}/users", body: { email: "u@c.example" } },
      { id: "monitors", group: "Monitors", label: "List monitors", method: "GET", path: "/api/customers/{customer}/monitors" },
      { id: "monitor-create", group: "Monitors", label: "Add monitor", method: "POST", path: "/api/customers/{customer}/monitors", body: { url: "https://example.com" } },
      { id: "monitor-view", group: "Monitors", label: "View web monitor", method: "GET", path: "/api/customers/{customer}/groups/{group}/monitors/{monitor}" },
      { id: "monitor-edit", group: "Monitors", label: "Edit web monitor", method: "PUT", path: "/api/customers/{customer}/groups/{group}/monitors/{monitor}", body: { interval: 5 } },
      { id: "monitor-delete", group: "Monitors", label: "Delete web monitor", method: "DELETE", path: "/api/customers/{customer}/groups/{group}/monitors/{monitor}" },
      { id: "windows", group: "Maintenance", label: "List maintenance windows", method: "GET", path: "/api/customers/{customer}/maintenance_windows" },
      { id: "window-create", group: "Maintenance", label: "Schedule maintenance", method: "POST", path: "/api/customers/{customer}/maintenance_windows", body: { start: "02:00" } },
      { id: "window-delete", group: "Maintenance", label: "Delete maintenance window", method: "DELETE", path: "/api/customers/{customer}/maintenance_windows/{window}" },
      { id: "reports", group: "Reports", label: "View reports", method: "GET", path: "/api/customers/{customer}/reports" },
    ],
  },
};

/** The concrete request of a button for a tenant: `{method, target, body?}`. */
export function requestOf(button, tenant) {
  const target = button.path.replace(/\{([a-z_]+)\}/g, (_, name) => {
    const v = tenant.params[name];
    if (v === undefined) throw new Error(`button ${button.id}: tenant ${tenant.id} has no \`${name}\``);
    return encodeURIComponent(v);
  });
  return button.body === undefined ? { method: button.method, target } : { method: button.method, target, body: button.body };
}

/**
 * The principal a demo token names, mapped as the gateway maps verified claims (`sub`,
 * `status`, `assignments`, `attributes`). The page trusts its own token only to decide what to
 * show; the gateway verifies it on every call.
 */
export function principalOfToken(token) {
  const part = token.split(".")[1] ?? "";
  const json = decodeURIComponent(
    Array.from(atob(part.replaceAll("-", "+").replaceAll("_", "/")), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
  );
  const claims = JSON.parse(json);
  const principal = { id: claims.sub };
  if (typeof claims.status === "string") principal.status = claims.status;
  if (Array.isArray(claims.assignments)) principal.assignments = claims.assignments;
  if (claims.attributes && typeof claims.attributes === "object") principal.attributes = claims.attributes;
  return principal;
}
