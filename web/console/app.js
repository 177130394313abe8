// The demo admin console: pick a demo user and a tenant; the page loads the policy bundle the
// gateway enforces and the npm package's `web` build, shows only the buttons the user may use
// there, and says why each other one is hidden. A click sends the button's request through the
// gateway (same origin, /api/) with the user's demo token and shows the answer.

import init, { Policy } from "/pkg/rolescope_wasm.js";
import { createGate } from "/gate/index.js";
import { PAGES, principalOfToken, requestOf } from "./catalog.js";

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c);
  return e;
}

const state = { policy: null, page: null, users: [], user: null, tenant: null, gate: null };

/** Why a button is hidden, in words: the engine's explanation of the decision. */
function whyHidden(gate, decision) {
  if (decision.action === undefined) return decision.detail ?? decision.reason;
  const resource = { kind: decision.kind, id: decision.resourceId ?? "", scope: decision.scope };
  const e = gate.explain(decision.action, resource);
  if (e.decision === undefined) return decision.detail ?? decision.reason;
  return e.decision.explanation;
}

function render() {
  const { page, user, tenant } = state;
  state.gate?.free();
  const gate = createGate(state.policy, principalOfToken(user.token));
  state.gate = gate;
  const shown = $("#actions");
  const hidden = $("#hidden");
  shown.replaceChildren();
  hidden.replaceChildren();
  const groups = new Map();
  let visible = 0;
  for (const button of page.buttons) {
    const req = requestOf(button, tenant);
    const d = gate.authorizeHttp({ method: req.method, target: req.target, headers: [] });
    if (d.allowed) {
      visible += 1;
      if (!groups.has(button.group)) {
        const box = el("fieldset", { class: "group" }, el("legend", {}, button.group));
        groups.set(button.group, box);
        shown.append(box);
      }
      groups.get(button.group).append(
        el(
          "button",
          {
            type: "button",
            "data-action": button.id,
            "data-method": req.method,
            "data-target": req.target,
            title: `${req.method} ${req.target}\n${d.route} → ${d.action} ${d.kind}`,
            onclick: () => call(button, req),
          },
          button.label,
        ),
      );
    } else {
      hidden.append(
        el(
          "li",
          { "data-hidden": button.id, "data-reason": d.reason },
          el("span", { class: "label" }, button.label),
          " ",
          el("code", { class: "reason" }, d.reason),
          el("div", { class: "why" }, whyHidden(gate, d)),
        ),
      );
    }
  }
  $("#summary").textContent = `${user.key} (${user.id}) in ${tenant.label}: ${visible} of ${page.buttons.length} actions available`;
  $("#actions").setAttribute("data-ready", `${user.key}/${tenant.id}`);
}

async function call(button, req) {
  const out = $("#result");
  out.setAttribute("data-state", "pending");
  out.textContent = `${req.method} ${req.target} …`;
  const headers = { authorization: `Bearer ${state.user.token}` };
  if (req.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(req.target, { method: req.method, headers, body: req.body === undefined ? undefined : JSON.stringify(req.body) });
  const text = await res.text();
  let body = text;
  try {
    body = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // not JSON: shown as is
  }
  out.setAttribute("data-state", "done");
  out.setAttribute("data-status", String(res.status));
  out.setAttribute("data-action", button.id);
  out.textContent = `${req.method} ${req.target} → ${res.status} ${res.statusText}\ndecision ${res.headers.get("x-rolescope-decision-id") ?? "-"}\n\n${body}`;
}

function select() {
  const params = new URLSearchParams(location.search);
  state.user = state.users.find((u) => u.key === $("#user").value) ?? state.users[0];
  state.tenant = state.page.tenants.find((t) => t.id === $("#tenant").value) ?? state.page.tenants[0];
  params.set("user", state.user.key);
  params.set("tenant", state.tenant.id);
  history.replaceState(null, "", `?${params}`);
  $("#result").textContent = "";
  $("#result").removeAttribute("data-state");
  render();
}

async function main() {
  const [config, tokens] = await Promise.all([fetch("/config.json").then((r) => r.json()), fetch("/tokens.json").then((r) => r.json())]);
  await init({ module_or_path: "/pkg/rolescope_wasm_bg.wasm" });
  state.policy = Policy.fromBundle(await fetch("/bundle.json").then((r) => r.text()));
  state.page = PAGES[config.policy];
  if (!state.page) throw new Error(`no console page for policy ${config.policy}`);
  state.users = tokens;
  document.title = `${state.page.title} · rolescope demo`;
  $("#title").textContent = state.page.title;
  $("#revision").textContent = `policy ${state.policy.name} ${state.policy.revision.slice(0, 19)}…`;
  const params = new URLSearchParams(location.search);
  $("#user").replaceChildren(...tokens.map((u) => el("option", { value: u.key }, `${u.key}${u.id !== u.key ? ` (${u.id})` : ""}`)));
  $("#tenant").replaceChildren(...state.page.tenants.map((t) => el("option", { value: t.id }, t.label)));
  if (params.get("user")) $("#user").value = params.get("user");
  if (params.get("tenant")) $("#tenant").value = params.get("tenant");
  $("#user").addEventListener("change", select);
  $("#tenant").addEventListener("change", select);
  select();
}

main().catch((e) => {
  $("#summary").textContent = `error: ${e?.message ?? e}`;
  document.body.setAttribute("data-error", String(e?.message ?? e));
  console.error(e);
});
