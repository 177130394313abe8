// Type-checked (never run) by types.test.mjs: the `rolescope/compiler` entry (the playground's
// module): role files as text, diagnostics as data, suites, bundles for `rolescope`.

import { Policy, bundle, validate, type Diagnostic, type InvalidPolicy, type InvariantViolation, type SuiteRun, type Validation, type Verdict } from "rolescope/compiler";
import { Policy as EnginePolicy } from "rolescope";

declare const text: string;
const files = [{ name: "roles.yaml", text }];

const validation: Validation = validate(files);
const firstLine: number | undefined = validation.diagnostics[0]?.location.line;

let policy: Policy;
try {
  policy = Policy.compile(files);
} catch (e) {
  const invalid = e as InvalidPolicy;
  const d: Diagnostic[] = invalid.diagnostics;
  throw new Error(`${d[0]?.location.file}:${d[0]?.location.line}:${d[0]?.location.column} ${firstLine}`);
}
const suite: SuiteRun = policy.runSuite("suite_test.yaml", text);
const failed: number = suite.report.cases.filter((c) => !c.passed).length + suite.coverage.percent;
const v: Verdict = policy.check({ principal: "ana", action: "view", resource: { kind: "device", scope: "msp:acme" } });
const json: string = bundle(files);
const enforced: EnginePolicy = EnginePolicy.fromBundle(json);
const violations: InvariantViolation[] = policy.checkInvariants([{ id: "ana", assignments: [] }]);
void [failed, v, enforced.revision === policy.revision, violations[0]?.found];

// @ts-expect-error: role files are `{name, text}`
bundle([{ name: "roles.yaml" }]);
