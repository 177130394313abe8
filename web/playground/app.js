// The playground page: role files (tabs) and a test suite side by side, diagnostics and lint
// warnings at their line:col as you type, the suite's results and coverage, questions with
// their explanation, and the whole state in the URL's fragment. All compiling and deciding is
// the `rolescope/compiler` module's, in worker.js.

import { Editor } from "./editor.js";
import { actionNames, decodeState, encodeState, sectionKeys, sourceRefs } from "./model.js";

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const state = {
  seed: null,
  files: [], // [{name, text}]
  active: 0,
  suite: { name: "policy_test.yaml", text: "" },
};
let manifest;
let analysis = null; // the last analysis shown
let seq = 0; // analyses asked
let shown = 0; // the newest analysis shown
let timer = null;

// ------------------------------------------------------------------------------- the worker

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const pending = new Map();
let nextId = 1;
worker.onmessage = ({ data }) => {
  pending.get(data.id)?.(data);
  pending.delete(data.id);
};
worker.onerror = (e) => setStatus(`the compiler could not be loaded: ${e.message ?? "see the console"} (run \`cargo xtask wasm\`)`, "failed");
const call = (msg) =>
  new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    worker.postMessage({ id, ...msg });
  });

// ------------------------------------------------------------------------------- editors

const policyEditor = new Editor($("#policy-editor"), {
  onInput: () => {
    state.files[state.active].text = policyEditor.value;
    changed();
  },
  onCursor: (l, c) => ($("#policy-cursor").textContent = `${state.files[state.active]?.name ?? ""}  Ln ${l}, Col ${c}`),
});
const suiteEditor = new Editor($("#suite-editor"), {
  onInput: () => {
    state.suite.text = suiteEditor.value;
    changed();
  },
  onCursor: (l, c) => ($("#suite-cursor").textContent = `${state.suite.name}  Ln ${l}, Col ${c}`),
});

function setStatus(text, kind) {
  $("#status").textContent = text;
  $("#status").dataset.kind = kind ?? "";
}

function renderTabs() {
  $("#file-tabs").innerHTML = state.files
    .map(
      (f, i) =>
        `<span class="tab${i === state.active ? " active" : ""}" role="tab" data-index="${i}" data-file="${esc(f.name)}" title="double-click to rename">${esc(f.name)}<span class="errs"></span>${
          state.files.length > 1 ? `<button type="button" class="close" data-close="${i}" title="Remove ${esc(f.name)}">×</button>` : ""
        }</span>`,
    )
    .join("");
  $("#suite-name").textContent = state.suite.name;
  $("#suite-name").dataset.file = state.suite.name;
  markTabs();
}

function showFile(i) {
  state.active = i;
  policyEditor.value = state.files[i].text;
  renderTabs();
  markEditors();
}

function loadState(s) {
  state.seed = s.seed ?? null;
  state.files = s.files.map((f) => ({ name: f.name, text: f.text }));
  state.suite = { name: s.suite.name ?? "policy_test.yaml", text: s.suite.text };
  state.active = Math.min(s.active ?? 0, state.files.length - 1);
  if (state.files.length === 0) state.files.push({ name: "roles.yaml", text: "" });
  policyEditor.value = state.files[state.active].text;
  suiteEditor.value = state.suite.text;
  const q = s.question ?? {};
  for (const k of ["principal", "action", "resource", "context"]) $(`#q-${k}`).value = q[k] ?? "";
  $("#seed").value = state.seed ?? "";
  renderTabs();
}

async function loadSeed(name) {
  const seed = manifest.seeds[name];
  const get = async (file) => {
    const res = await fetch(`../../policies/${name}/${file}`);
    if (!res.ok) throw new Error(`policies/${name}/${file}: ${res.status}`);
    return { name: file, text: await res.text() };
  };
  const [files, suite] = await Promise.all([Promise.all(seed.files.map(get)), get(seed.suite)]);
  let question = manifest.questions?.[name];
  if (!question) {
    question = { principal: sectionKeys(suite.text, "principals")[0] ?? "", action: "view", resource: sectionKeys(suite.text, "resources")[0] ?? "" };
  }
  loadState({ seed: name, files, suite, active: 0, question });
}

// ------------------------------------------------------------------------------- analysis

function changed() {
  $("#answer").dataset.stale = "true";
  document.body.dataset.state = "editing";
  clearTimeout(timer);
  timer = setTimeout(analyze, 250);
}

async function analyze() {
  clearTimeout(timer);
  const id = ++seq;
  document.body.dataset.state = "analyzing";
  const files = state.files.map((f) => ({ name: f.name, text: f.text }));
  const result = await call({ op: "analyze", files, suite: { ...state.suite } });
  if (id < shown) return;
  shown = id;
  if (result.failure) {
    setStatus(`the compiler failed: ${result.failure}`, "failed");
    document.body.dataset.state = "failed";
    return;
  }
  analysis = result;
  const errors = result.diagnostics.filter((d) => d.severity === "error").length;
  const warnings = result.diagnostics.length - errors;
  const counts = `${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"}`;
  setStatus(result.compiled ? `policy ${result.policy.name}: ${result.policy.roles} roles, ${counts} (${Math.round(result.ms)} ms)` : `does not compile: ${counts}`, errors ? "error" : "ok");
  renderProblems();
  markEditors();
  renderTests();
  suggestions();
  saveUrl();
  if (id === seq) document.body.dataset.state = "ready";
}

function renderProblems() {
  const diags = analysis?.diagnostics ?? [];
  const errors = diags.filter((d) => d.severity === "error").length;
  $("#problem-count").textContent = diags.length ? `${errors} error${errors === 1 ? "" : "s"}, ${diags.length - errors} warning${diags.length - errors === 1 ? "" : "s"}` : "none";
  $("#problems").innerHTML = diags
    .map((d) => {
      const l = d.location;
      return `<li class="${d.severity}" data-file="${esc(l.file)}" data-line="${l.line}" data-column="${l.column}" data-code="${esc(d.code)}" tabindex="0" title="go to ${esc(l.file)}:${l.line}:${l.column}">
        <span class="where">${esc(l.file)}:${l.line}:${l.column}</span> <span class="code">${esc(d.code)}</span> <span class="msg">${esc(d.message)}</span>${d.hint ? `<div class="hint">${esc(d.hint)}</div>` : ""}</li>`;
    })
    .join("");
}

function markEditors() {
  const diags = analysis?.diagnostics ?? [];
  const file = state.files[state.active]?.name;
  policyEditor.mark(diags.filter((d) => d.location.file === file));
  suiteEditor.mark(diags.filter((d) => d.location.file === state.suite.name));
  markTabs();
}

function markTabs() {
  const diags = analysis?.diagnostics ?? [];
  for (const tab of document.querySelectorAll("#file-tabs .tab")) {
    const mine = diags.filter((d) => d.location.file === tab.dataset.file);
    const errs = mine.filter((d) => d.severity === "error").length;
    tab.querySelector(".errs").textContent = errs ? ` ${errs}` : "";
    tab.dataset.errors = String(errs);
    tab.dataset.warnings = String(mine.length - errs);
  }
}

/** Move the cursor to `file:line:column` (switching tabs), if the file is open. */
function jump(file, line, column) {
  if (file === state.suite.name) return suiteEditor.goto(line, column);
  const i = state.files.findIndex((f) => f.name === file);
  if (i === -1) return;
  if (i !== state.active) showFile(i);
  policyEditor.goto(line, column);
}

/** A message with its `file:line:col` references as links. */
function linked(message) {
  let html = "";
  let at = 0;
  for (const r of sourceRefs(message)) {
    html += esc(message.slice(at, r.index));
    html += `<a href="#" class="src" data-file="${esc(r.file)}" data-line="${r.line}" data-column="${r.column}">${esc(r.text)}</a>`;
    at = r.index + r.text.length;
  }
  return html + esc(message.slice(at));
}

function renderTests() {
  const run = analysis?.run;
  $("#tests-panel").dataset.ran = run ? "true" : "false";
  if (!run) {
    $("#summary").textContent = analysis?.compiled === false ? "the role files do not compile: no tests run" : "";
    $("#summary").dataset.passed = "";
    $("#summary").dataset.failed = "";
    $("#coverage").textContent = "";
    $("#results").innerHTML = "";
    return;
  }
  const cases = run.report.cases;
  const failed = cases.filter((c) => !c.passed);
  const suiteErrors = (analysis.diagnostics ?? []).filter((d) => d.severity === "error" && d.location.file === state.suite.name).length;
  $("#summary").textContent = `${run.report.suite}: ${cases.length - failed.length} passed, ${failed.length} failed${suiteErrors ? `, ${suiteErrors} suite error${suiteErrors === 1 ? "" : "s"} (see Problems)` : ""}`;
  $("#summary").dataset.passed = String(cases.length - failed.length);
  $("#summary").dataset.failed = String(failed.length + suiteErrors);
  const c = run.coverage;
  $("#coverage").dataset.percent = String(c.percent);
  $("#coverage").innerHTML = `coverage <b>${c.percent}%</b>: roles ${c.roles_covered}/${c.roles_total}, rules ${c.rules_covered}/${c.rules_total}, conditions both ways ${c.conditions_both_ways}/${c.conditions_total}${
    c.uncovered.length ? `<ul class="uncovered">${c.uncovered.map((u) => `<li>not exercised: ${esc(u.what)} ${esc(u.name)} at ${linked(u.source)}</li>`).join("")}</ul>` : ""
  }`;
  const row = (r) =>
    `<li class="${r.passed ? "pass" : "fail"}" data-passed="${r.passed}"><span class="mark">${r.passed ? "✓" : "✗"}</span> ${esc(r.name)} <span class="src-at">${linked(r.source)}</span>${
      r.passed ? "" : `<div class="why">expected ${esc(r.expected)}${r.expected_reason ? ` (${esc(r.expected_reason)})` : ""}, got ${esc(r.got)} (${esc(r.reason)}): ${linked(r.explanation)}</div>`
    }</li>`;
  $("#results").innerHTML = failed.map(row).join("") + (cases.length - failed.length ? `<li class="passed-group"><details><summary>${cases.length - failed.length} passed</summary><ul>${cases.filter((x) => x.passed).map(row).join("")}</ul></details></li>` : "");
}

function suggestions() {
  const fill = (id, names) => ($(id).innerHTML = names.map((n) => `<option value="${esc(n)}"></option>`).join(""));
  fill("#principal-names", sectionKeys(state.suite.text, "principals"));
  fill("#resource-names", sectionKeys(state.suite.text, "resources"));
  fill("#context-names", sectionKeys(state.suite.text, "contexts"));
  fill("#action-names", actionNames(state.files.map((f) => f.text)));
}

// ------------------------------------------------------------------------------- questions

function question() {
  return Object.fromEntries(["principal", "action", "resource", "context"].map((k) => [k, $(`#q-${k}`).value]));
}

async function ask() {
  const q = question();
  const answer = $("#answer");
  delete answer.dataset.stale;
  const missing = ["principal", "action", "resource"].filter((k) => !q[k].trim());
  if (missing.length) {
    answer.dataset.allowed = "";
    answer.innerHTML = `<p class="error">give ${missing.join(", ")}</p>`;
    return;
  }
  answer.dataset.state = "asking";
  const res = await call({ op: "ask", files: state.files, suite: state.suite, question: q });
  answer.dataset.state = "done";
  if (res.error || res.failure) {
    answer.dataset.allowed = "";
    answer.dataset.reason = "";
    answer.innerHTML = `<p class="error">${esc(res.error ?? res.failure)}</p>`;
    return;
  }
  answer.dataset.allowed = String(res.allowed);
  answer.dataset.reason = res.reason;
  answer.innerHTML = `<p class="verdict ${res.allowed ? "allow" : "deny"}">${res.allowed ? "ALLOW" : "DENY"} <code class="reason">${esc(res.reason)}</code></p><p class="explanation">${linked(res.explanation)}</p>`;
  saveUrl();
}

// ------------------------------------------------------------------------------- sharing

async function shareState() {
  return encodeState({ seed: state.seed, files: state.files, suite: state.suite, active: state.active, question: question() });
}

let saving = Promise.resolve();
function saveUrl() {
  saving = saving.then(async () => history.replaceState(null, "", `#s=${await shareState()}`));
  return saving;
}

async function share() {
  await saveUrl();
  const url = location.href;
  $("#share-url").value = url;
  $("#share-url").select();
  try {
    await navigator.clipboard.writeText(url);
    $("#share").textContent = "Copied";
  } catch {
    $("#share").textContent = "Link below";
  }
  setTimeout(() => ($("#share").textContent = "Share"), 2000);
}

// ------------------------------------------------------------------------------- wiring

$("#file-tabs").addEventListener("click", (e) => {
  const close = e.target.closest("[data-close]");
  if (close) {
    const i = Number(close.dataset.close);
    if (!confirm(`Remove ${state.files[i].name}?`)) return;
    state.files.splice(i, 1);
    showFile(Math.min(state.active >= i && state.active > 0 ? state.active - 1 : state.active, state.files.length - 1));
    changed();
    return;
  }
  const tab = e.target.closest("[data-index]");
  if (tab) showFile(Number(tab.dataset.index));
});

function validName(name, taken) {
  if (!name) return null;
  name = name.trim();
  if (!/^[A-Za-z0-9_.-]+\.(ya?ml|json)$/.test(name)) {
    alert("a file name ends in .yaml, .yml or .json (letters, digits, _ . -)");
    return null;
  }
  if (taken.includes(name)) {
    alert(`${name} exists`);
    return null;
  }
  return name;
}

$("#file-tabs").addEventListener("dblclick", (e) => {
  const tab = e.target.closest("[data-index]");
  if (!tab) return;
  const i = Number(tab.dataset.index);
  const name = validName(prompt("Rename the role file", state.files[i].name), [...state.files.map((f) => f.name), state.suite.name]);
  if (!name) return;
  state.files[i].name = name;
  renderTabs();
  changed();
});

$("#suite-name").addEventListener("dblclick", () => {
  const name = validName(prompt("Rename the suite", state.suite.name), state.files.map((f) => f.name));
  if (!name) return;
  state.suite.name = name;
  renderTabs();
  changed();
});

$("#add-file").addEventListener("click", () => {
  const name = validName(prompt("New role file", "more_roles.yaml"), [...state.files.map((f) => f.name), state.suite.name]);
  if (!name) return;
  state.files.push({ name, text: "roles:\n" });
  showFile(state.files.length - 1);
  changed();
});

const onSource = (e) => {
  const el = e.target.closest("[data-file][data-line]");
  if (!el || el.classList.contains("tab")) return;
  e.preventDefault();
  jump(el.dataset.file, Number(el.dataset.line), Number(el.dataset.column));
};
for (const id of ["#problems", "#results", "#coverage", "#answer"]) {
  $(id).addEventListener("click", onSource);
  $(id).addEventListener("keydown", (e) => e.key === "Enter" && onSource(e));
}

$("#run").addEventListener("click", analyze);
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    analyze();
  }
});
$("#ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  ask();
});
$("#share").addEventListener("click", share);
$("#seed").addEventListener("change", async (e) => {
  const name = e.target.value;
  if (!name) return;
  if (!confirm(`Replace the files with the seed policy ${name}?`)) {
    e.target.value = state.seed ?? "";
    return;
  }
  await loadSeed(name);
  analyze();
});

async function start() {
  manifest = await (await fetch("seeds.json")).json();
  $("#seed").innerHTML = `<option value="">(edited)</option>${Object.keys(manifest.seeds)
    .map((n) => `<option value="${esc(n)}">${esc(n)}</option>`)
    .join("")}`;
  const shared = new URLSearchParams(location.hash.slice(1)).get("s");
  let notice = null;
  if (shared) {
    try {
      loadState(await decodeState(shared));
    } catch (e) {
      notice = e.message;
    }
  }
  if (!shared || notice) await loadSeed(manifest.default);
  await analyze();
  if (notice) setStatus(notice, "error");
  if (question().principal && question().resource) await ask();
}

start().catch((e) => {
  setStatus(`the playground could not start: ${e.message}`, "failed");
  document.body.dataset.state = "failed";
});
