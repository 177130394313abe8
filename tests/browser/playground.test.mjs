// The playground (web/playground/) in headless chromium (Debian's, driven by playwright-core;
// the flags of DEVELOPERS.md), served by web/playground/serve.mjs on 127.0.0.1 with the
// `rolescope/compiler` module of bindings/pkg. What a policy author does:
// - the page opens on the seed policy (msp-panel): its role files as tabs, its suite beside
//   them, no errors, the suite run green with coverage;
// - a role misspelled by typing in roles.yaml shows RS014 at its line:col (gutter marker,
//   underline, problem with "did you mean") and the lint warning it causes; clicking the problem
//   moves the cursor there; fixing it clears both; a suite mistake (an unknown fixture) shows in
//   the suite at its line;
// - the suite runs: all cases pass, coverage 100%; a role added in a new file lowers it and is
//   listed as not exercised;
// - questions: a deny with its reason and the rule's location (a link that moves the cursor),
//   an allow through the new file's role for an inline principal;
// - the share link restores files, suite and question in a new page; a damaged link says so;
// - every seed policy (seeds.json) opens without errors and its suite passes.
// Screenshots in target/artifacts/. tests/browser/run.sh builds and installs what this needs.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { chromium } from "playwright-core";

import { freePort, pkgDir, root, start, targetDir } from "../../edge/test/stack.mjs";
import { decodeState, encodeState, questionSuite, sectionKeys, span } from "../../web/playground/model.js";
import { CHROMIUM_FLAGS } from "./flags.mjs";

const seedDir = join(root, "policies", "msp-panel");
const rolesText = readFileSync(join(seedDir, "roles.yaml"), "utf8");
const suiteText = readFileSync(join(seedDir, "msp_panel_test.yaml"), "utf8");
const artifacts = join(targetDir, "artifacts");

/** 1-based line and column of the first `needle` in `text` (plus `skip` characters). */
function where(text, needle, skip = 0) {
  const at = text.indexOf(needle);
  assert.ok(at >= 0, `${needle} is in the seed`);
  const before = text.slice(0, at + skip);
  return { line: before.split("\n").length, column: at + skip - before.lastIndexOf("\n"), index: at + skip };
}

let server;
let base;
let browser;

before(async () => {
  assert.ok(existsSync(join(pkgDir, "compiler", "web", "rolescope_wasm_bg.wasm")), "bindings/pkg/compiler/web is missing: run `cargo xtask wasm`");
  const port = await freePort();
  server = start(process.execPath, [join(root, "web", "playground", "serve.mjs"), "--port", String(port), "--pkg", pkgDir], { log: join(targetDir, "tmp-playground-serve.log") });
  const until = Date.now() + 20000;
  while (!server.output().includes("rolescope playground: http://")) {
    if (Date.now() > until || server.child.exitCode !== null) throw new Error(`web/playground/serve.mjs did not start:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  base = `http://127.0.0.1:${port}/web/playground/`;
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_FLAGS });
  mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Open `url` and wait until the first analysis is shown. */
async function open(url, errors) {
  const tab = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  tab.on("pageerror", (e) => errors.push(e.message));
  tab.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await tab.goto(url);
  await tab.waitForSelector('body[data-state="ready"]', { timeout: 60000 });
  return tab;
}

/** Wait for the analysis of the latest edit. */
const settled = (tab) => tab.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 30000 });

const problems = (tab) =>
  tab.$$eval("#problems li", (ls) => ls.map((l) => ({ severity: l.className, file: l.dataset.file, line: Number(l.dataset.line), column: Number(l.dataset.column), code: l.dataset.code, text: l.textContent.replace(/\s+/g, " ").trim() })));

/** Put the policy editor's cursor at a string index of its text and type like a person. */
async function typeAt(tab, editor, index, { backspaces = 0, text = "" }) {
  await tab.click(`${editor} textarea`);
  await tab.$eval(`${editor} textarea`, (ta, i) => ta.setSelectionRange(i, i), index);
  for (let i = 0; i < backspaces; i++) await tab.keyboard.press("Backspace");
  if (text) await tab.keyboard.type(text, { delay: 20 });
}

test("seeds.json lists every seed policy's role files and suite", () => {
  const manifest = JSON.parse(readFileSync(join(root, "web", "playground", "seeds.json"), "utf8"));
  const folders = readdirSync(join(root, "policies"), { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== "schema").map((d) => d.name);
  assert.deepEqual(Object.keys(manifest.seeds).sort(), folders.sort());
  assert.ok(manifest.seeds[manifest.default]);
  for (const [name, seed] of Object.entries(manifest.seeds)) {
    const yaml = readdirSync(join(root, "policies", name)).filter((f) => /\.(ya?ml|json)$/.test(f));
    assert.deepEqual([...seed.files, seed.suite].sort(), yaml.sort(), name);
    assert.match(seed.suite, /_test\.yaml$/);
  }
});

test("model.js: share state round trip, the question as a one-case suite, UTF-8 spans", async () => {
  const state = { seed: "x", files: [{ name: "a.yaml", text: "roles: {} # é ✓" }], suite: { name: "s_test.yaml", text: suiteText }, active: 0 };
  assert.deepEqual(await decodeState(await encodeState(state)), { v: 1, ...state });
  await assert.rejects(decodeState("AAAA"), /damaged/);
  const { text, startLine } = questionSuite(suiteText, { principal: "admin", action: "view", resource: "{ kind: billing,\n scope: 'msp:acme' }", context: "" });
  assert.equal(text.split("\n")[startLine - 1], "  - name: question");
  assert.equal(text.match(/^cases:/gm).length, 1);
  assert.ok(text.includes("    resource: { kind: billing, scope: 'msp:acme' }"));
  // byte offsets (the engine's) land on the right characters after multi-byte text
  assert.deepEqual(span({ line: 2, column: 9, offset: Buffer.byteLength("a: \"é✓\"\nroles: [x]") - 2, length: 1 }, "a: \"é✓\"\nroles: [x]"), { start: 16, end: 17, line: 2, column: 9 });
});

describe("the playground in chromium (msp-panel)", () => {
  let tab;
  const errors = [];
  let shareUrl;
  const extraRoles = "roles:\n  auditor:\n    title: Auditor\n    rank: 5\n    held_at: [msp]\n    grants:\n      - resources: [billing]\n        actions: [view]\n";
  const inlineAuditor = '{ id: audrey, assignments: [{ role: auditor, scope: "msp:acme", tenants: all }] }';

  test("opens on the seed policy: role files as tabs, the suite beside them, green with coverage", async () => {
    tab = await open(base, errors);
    assert.deepEqual(await tab.$$eval("#file-tabs .tab", (ts) => ts.map((t) => t.dataset.file)), ["roles.yaml", "routes.yaml"]);
    assert.equal(await tab.inputValue("#policy-editor textarea"), rolesText);
    assert.equal(await tab.inputValue("#suite-editor textarea"), suiteText);
    assert.equal(await tab.textContent("#suite-name"), "msp_panel_test.yaml");
    assert.deepEqual((await problems(tab)).filter((p) => p.severity === "error"), []);
    assert.equal(await tab.getAttribute("#summary", "data-failed"), "0");
    assert.ok(Number(await tab.getAttribute("#summary", "data-passed")) > 100);
    assert.equal(await tab.getAttribute("#coverage", "data-percent"), "100");
    // the seed's question is answered on load
    assert.equal(await tab.getAttribute("#answer", "data-allowed"), "false");
  });

  test("a misspelled role typed into roles.yaml shows RS014 at its line:col; clicking it moves the cursor; fixing it clears it", async () => {
    // `columns: [msp_user, ...]` in the matrix: `msp_user` -> `msp_usr`
    const at = where(rolesText, "columns: [msp_user", "columns: [".length);
    await typeAt(tab, "#policy-editor", at.index + "msp_user".length, { backspaces: 2, text: "r" });
    await tab.waitForSelector('#problems li[data-code="RS014"]', { timeout: 30000 });
    await settled(tab);
    const found = (await problems(tab)).find((p) => p.code === "RS014");
    assert.deepEqual([found.severity, found.file, found.line, found.column], ["error", "roles.yaml", at.line, at.column]);
    assert.match(found.text, /unknown role `msp_usr`/);
    assert.match(found.text, /did you mean `msp_user`\?/);
    assert.equal(await tab.textContent(`#policy-editor .gutter [data-line="${at.line}"]`), String(at.line));
    assert.equal(await tab.getAttribute(`#policy-editor .gutter [data-line="${at.line}"]`, "class"), "marker error");
    assert.equal(await tab.textContent(`#policy-editor .overlay mark[data-code="RS014"]`), "msp_usr");
    assert.equal(await tab.getAttribute(`#policy-editor .overlay mark[data-code="RS014"]`, "data-line"), String(at.line));
    assert.equal(await tab.getAttribute('#file-tabs .tab[data-file="roles.yaml"]', "data-errors"), "1");
    assert.match(await tab.textContent("#summary"), /do not compile/);
    // the lint that follows from it (the role's matrix column is gone): a warning at its line
    const role = where(rolesText, "\n  msp_user:", 3);
    const lint = (await problems(tab)).find((p) => p.code === "RS050");
    assert.deepEqual([lint.severity, lint.file, lint.line, lint.column], ["warning", "roles.yaml", role.line, role.column]);
    assert.match(lint.text, /role `msp_user` grants nothing/);
    assert.equal(await tab.getAttribute(`#policy-editor .gutter [data-line="${role.line}"]`, "class"), "marker warning");
    assert.equal(await tab.textContent(`#policy-editor .overlay mark.warning[data-code="RS050"]`), "msp_user");
    // the list is a way there: the cursor moves to the problem
    await tab.click("#suite-editor textarea");
    await tab.click('#problems li[data-code="RS014"]');
    assert.equal(await tab.getAttribute("#policy-editor", "data-cursor"), `${at.line}:${at.column}`);
    assert.equal(await tab.evaluate(() => document.activeElement.closest(".editor")?.id), "policy-editor");
    // fixed by typing
    await typeAt(tab, "#policy-editor", at.index + "msp_usr".length, { backspaces: 1, text: "er" });
    await settled(tab);
    await tab.waitForFunction(() => !document.querySelector('#problems li[data-code="RS014"]'));
    assert.equal(await tab.inputValue("#policy-editor textarea"), rolesText);
    assert.deepEqual((await problems(tab)).filter((p) => p.severity === "error"), []);
    assert.equal(await tab.$(`#policy-editor .gutter .marker`), null);
  });

  test("a mistake in the suite shows at its line in the suite editor", async () => {
    // the first case's principal `owner` -> `ownr` (an unknown fixture)
    const at = where(suiteText, "- [owner, client_c9_new, allow]", 3);
    await typeAt(tab, "#suite-editor", at.index + 4, { backspaces: 1 });
    await tab.waitForSelector(`#problems li[data-file="msp_panel_test.yaml"][data-line="${at.line}"]`, { timeout: 30000 });
    await settled(tab);
    const found = (await problems(tab)).find((p) => p.file === "msp_panel_test.yaml");
    assert.equal(found.severity, "error");
    assert.match(found.text, /`ownr`/);
    assert.match(found.text, /did you mean `owner`\?/);
    assert.equal(await tab.getAttribute(`#suite-editor .gutter [data-line="${at.line}"]`, "class"), "marker error");
    assert.notEqual(await tab.getAttribute("#summary", "data-failed"), "0");
    await typeAt(tab, "#suite-editor", at.index + 3, { text: "e" });
    await settled(tab);
    assert.equal(await tab.inputValue("#suite-editor textarea"), suiteText);
    assert.deepEqual(await problems(tab), []);
  });

  test("the suite runs: every case passes, coverage 100%", async () => {
    await tab.click("#run");
    await settled(tab);
    const passed = Number(await tab.getAttribute("#summary", "data-passed"));
    assert.equal(await tab.getAttribute("#summary", "data-failed"), "0");
    assert.ok(passed > 100, `${passed} cases passed`);
    assert.match(await tab.textContent("#summary"), new RegExp(`${passed} passed, 0 failed`));
    assert.match(await tab.textContent("#coverage"), /coverage 100%: roles 5\/5/);
    assert.equal(await tab.$$eval("#results li.fail", (ls) => ls.length), 0);
  });

  test("a question: deny with its reason and the deciding rule, whose location is a link to it", async () => {
    await tab.fill("#q-principal", "admin");
    await tab.fill("#q-action", "delete");
    await tab.fill("#q-resource", "user_owner");
    await tab.click("#ask");
    await tab.waitForSelector('#answer[data-state="done"][data-reason="explicit_deny"]');
    assert.equal(await tab.getAttribute("#answer", "data-allowed"), "false");
    assert.match(await tab.textContent("#answer .verdict"), /DENY\s*explicit_deny/);
    const rule = where(rolesText, "  - resources: [user]\n    actions: [delete]", 4);
    const explanation = await tab.textContent("#answer .explanation");
    assert.match(explanation, new RegExp(`admin may not take \`delete\` on user \`owner\`.*denied by a policy-wide rule at roles.yaml:${rule.line}:${rule.column}`));
    await tab.click(`#answer a.src[data-line="${rule.line}"]`);
    assert.equal(await tab.getAttribute("#policy-editor", "data-cursor"), `${rule.line}:${rule.column}`);
    // the same principal on another user is allowed; an unknown fixture is a clear error
    await tab.fill("#q-resource", "user_bob");
    await tab.click("#ask");
    await tab.waitForSelector('#answer[data-state="done"][data-allowed="true"]');
    assert.match(await tab.textContent("#answer .verdict"), /ALLOW\s*allowed/);
    assert.match(await tab.textContent("#answer .explanation"), /msp_admin@msp:acme .* grants it \(roles\.yaml:\d+:\d+\)/);
    await tab.fill("#q-principal", "admn");
    await tab.click("#ask");
    await tab.waitForFunction(() => document.querySelector("#answer p.error")?.textContent.includes("admn"));
    assert.match(await tab.textContent("#answer"), /unknown principal fixture `admn` \(did you mean `admin`\?\)/);
  });

  test("a second role file: its role answers an inline principal, and coverage lists it as not exercised", async () => {
    tab.once("dialog", (d) => d.accept("extra_roles.yaml"));
    await tab.click("#add-file");
    await tab.waitForSelector('#file-tabs .tab.active[data-file="extra_roles.yaml"]');
    await tab.fill("#policy-editor textarea", extraRoles);
    await settled(tab);
    assert.deepEqual((await problems(tab)).filter((p) => p.severity === "error"), []);
    assert.ok(Number(await tab.getAttribute("#coverage", "data-percent")) < 100);
    assert.match(await tab.textContent("#coverage"), /not exercised: role auditor at extra_roles\.yaml:2:3/);
    await tab.fill("#q-principal", inlineAuditor);
    await tab.fill("#q-action", "view");
    await tab.fill("#q-resource", "billing");
    await tab.click("#ask");
    await tab.waitForSelector('#answer[data-state="done"][data-allowed="true"]');
    assert.match(await tab.textContent("#answer .explanation"), /audrey may take `view` on billing .* auditor@msp:acme \(tenants: all\) grants it \(extra_roles\.yaml:7:9\)/);
    await tab.fill("#q-action", "update");
    await tab.click("#ask");
    await tab.waitForSelector('#answer[data-state="done"][data-reason="no_matching_grant"]');
    assert.equal(await tab.getAttribute("#answer", "data-allowed"), "false");
    await tab.screenshot({ path: join(artifacts, "playground.png") });
  });

  test("the share link restores files, suite and question in a new page", async () => {
    await tab.click('#file-tabs .tab[data-file="roles.yaml"]');
    await tab.click("#share");
    await tab.waitForFunction(() => document.querySelector("#share-url").value.includes("#s="));
    shareUrl = await tab.inputValue("#share-url");
    assert.match(shareUrl, /#s=[A-Za-z0-9_-]{100,}$/);
    const other = await open(shareUrl, errors);
    assert.deepEqual(await other.$$eval("#file-tabs .tab", (ts) => ts.map((t) => t.dataset.file)), ["roles.yaml", "routes.yaml", "extra_roles.yaml"]);
    assert.equal(await other.inputValue("#policy-editor textarea"), rolesText);
    await other.click('#file-tabs .tab[data-file="extra_roles.yaml"]');
    assert.equal(await other.inputValue("#policy-editor textarea"), extraRoles);
    assert.equal(await other.inputValue("#suite-editor textarea"), suiteText);
    assert.deepEqual(
      await Promise.all(["#q-principal", "#q-action", "#q-resource"].map((s) => other.inputValue(s))),
      [inlineAuditor, "update", "billing"],
    );
    await other.waitForSelector('#answer[data-state="done"][data-reason="no_matching_grant"]');
    assert.equal(await other.getAttribute("#coverage", "data-percent"), await tab.getAttribute("#coverage", "data-percent"));
    await other.close();
    // a damaged link says so and opens the seed
    const damaged = await open(`${base}#s=${shareUrl.split("#s=")[1].slice(0, 40)}`, []);
    assert.match(await damaged.textContent("#status"), /the shared link is damaged/);
    assert.deepEqual(await damaged.$$eval("#file-tabs .tab", (ts) => ts.map((t) => t.dataset.file)), ["roles.yaml", "routes.yaml"]);
    await damaged.close();
    assert.deepEqual(errors, []);
  });

  test("the suggestions are the suite's fixtures", async () => {
    const principals = await tab.$$eval("#principal-names option", (os) => os.map((o) => o.value));
    assert.deepEqual(principals, sectionKeys(suiteText, "principals"));
    assert.ok(principals.includes("admin") && principals.includes("user_c1"));
  });

  test("every seed policy starts green: no errors, its suite passes", async () => {
    const { seeds } = JSON.parse(readFileSync(join(root, "web", "playground", "seeds.json"), "utf8"));
    tab.on("dialog", (d) => d.accept());
    for (const [seed, { files, suite }] of Object.entries(seeds)) {
      await tab.selectOption("#seed", seed);
      await tab.waitForFunction(
        ({ seed, files, suite }) =>
          document.body.dataset.state === "ready" &&
          document.querySelector("#suite-name").textContent === suite &&
          [...document.querySelectorAll("#file-tabs .tab")].map((t) => t.dataset.file).join() === files.join() &&
          document.querySelector("#policy-editor textarea").value.includes(`policy: ${seed}`),
        { seed, files, suite },
        { timeout: 30000 },
      );
      assert.deepEqual((await problems(tab)).filter((p) => p.severity === "error"), [], seed);
      assert.equal(await tab.getAttribute("#summary", "data-failed"), "0", seed);
      assert.ok(Number(await tab.getAttribute("#summary", "data-passed")) > 10, seed);
    }
    await tab.close();
    assert.deepEqual(errors, []);
  });
});
