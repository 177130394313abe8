// The data-driven corpus in Node: every suite under policies/*/ and tests/corpus/*/ runs through
// the npm package's compiler module (`rolescope/compiler`: `Policy.compile` + `runSuite`) and
// every case must pass, as with the native engine (engine/tests/corpus.rs); the bundle it writes
// loads in the engine module (`rolescope`) under the same revision.

import assert from "node:assert/strict";
import { test } from "node:test";

import { corpusFolders, loadCompiler, loadPackage } from "../testing.mjs";

const { Policy, validate, bundle } = loadCompiler();
const engine = loadPackage();
const folders = corpusFolders();

test("the corpus is there", () => {
  assert.ok(folders.length >= 6, `only ${folders.length} policy folders`);
  assert.ok(folders.every((f) => f.suites.length > 0), "a policy folder without a suite");
});

for (const { dir, files, suites } of folders) {
  test(dir, async (t) => {
    const validation = validate(files);
    assert.equal(validation.valid, true, JSON.stringify(validation.diagnostics, null, 2));
    const policy = Policy.compile(files);
    assert.match(policy.revision, /^sha256:[0-9a-f]{64}$/);
    assert.ok(policy.roles().length > 0, "no roles");
    const enforced = engine.Policy.fromBundle(bundle(files));
    assert.equal(enforced.revision, policy.revision);
    assert.deepEqual(enforced.roles(), policy.roles());
    enforced.free();
    for (const suite of suites) {
      await t.test(suite.name, () => {
        const { report, diagnostics, coverage } = policy.runSuite(suite.name, suite.text);
        const errors = diagnostics.filter((d) => d.severity === "error");
        assert.deepEqual(errors, [], "the suite has errors");
        assert.ok(report.cases.length > 0, "the suite has no cases");
        const failed = report.cases
          .filter((c) => !c.passed)
          .map((c) => `${c.source} ${c.name}: expected ${c.expected} (${c.expected_reason ?? "any reason"}), got ${c.got} (${c.reason}): ${c.explanation}`);
        assert.deepEqual(failed, [], `${failed.length} of ${report.cases.length} cases fail`);
        assert.equal(coverage.policy, policy.name);
        assert.ok(coverage.percent >= 0 && coverage.percent <= 100);
      });
    }
    policy.free();
  });
}
