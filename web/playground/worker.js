// The playground's worker: the `rolescope/compiler` WebAssembly module (the npm package's
// `compiler/web` entry, served from bindings/pkg/), off the page's thread so typing never waits
// for a compile or a suite run. Messages in: {id, op: "analyze" | "ask", ...}; out: {id, ...}.
// - analyze {files, suite}: compile the role files (errors and lint warnings), and when they
//   compile, run the suite: its own diagnostics, the case results and the coverage.
// - ask {files, suite, question}: the question as a one-case suite over the suite's fixtures
//   (model.js questionSuite): the decision, its reason and its explanation.

import init, { Policy } from "../../bindings/pkg/compiler/web/rolescope_wasm.js";

import { questionSuite } from "./model.js";

const ready = init();

/** The policy compiled from the last files asked about, kept while they do not change. */
let cached = { key: null, policy: null, diagnostics: [] };

function compile(files) {
  const key = JSON.stringify(files);
  if (cached.key === key) return cached;
  cached.policy?.free();
  try {
    const policy = Policy.compile(files);
    cached = { key, policy, diagnostics: policy.warnings };
  } catch (e) {
    if (typeof e === "string") throw new Error(e);
    cached = { key, policy: null, diagnostics: e.diagnostics ?? [] };
  }
  return cached;
}

function analyze({ files, suite }) {
  const started = performance.now();
  const { policy, diagnostics } = compile(files);
  const out = { compiled: policy !== null, diagnostics: [...diagnostics], run: null };
  if (policy) {
    out.policy = { name: policy.name, revision: policy.revision, roles: policy.roles().length };
    const run = policy.runSuite(suite.name, suite.text);
    out.diagnostics.push(...run.diagnostics);
    out.run = { report: run.report, coverage: run.coverage };
  }
  out.ms = performance.now() - started;
  return out;
}

function ask({ files, suite, question }) {
  const { policy } = compile(files);
  if (!policy) return { error: "the role files have errors: fix them first (see Problems)" };
  const { text, startLine } = questionSuite(suite.text, question);
  const run = policy.runSuite(suite.name, text);
  const own = run.diagnostics.filter((d) => d.severity === "error" && d.location.line >= startLine);
  if (own.length) return { error: own.map((d) => d.message + (d.hint ? ` (${d.hint})` : "")).join("; ") };
  const result = run.report.cases.find((c) => c.source.startsWith(`${suite.name}:${startLine}:`)) ?? run.report.cases.at(-1);
  if (!result) {
    const other = run.diagnostics.find((d) => d.severity === "error");
    return { error: other ? `the suite cannot be read: ${other.message}` : "the question could not be asked" };
  }
  return { allowed: result.got === "allow", reason: result.reason, explanation: result.explanation, principal: result.principal, action: result.action, resource: result.resource };
}

self.onmessage = async ({ data }) => {
  try {
    await ready;
    const result = data.op === "analyze" ? analyze(data) : ask(data);
    self.postMessage({ id: data.id, ...result });
  } catch (e) {
    self.postMessage({ id: data.id, failure: String(e?.message ?? e) });
  }
};
