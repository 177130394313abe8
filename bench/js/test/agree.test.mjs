// The agreement check of bench/js/peers.mjs fails when a peer answers differently from
// rolescope (and passes on the real peers), and the size part walks CASL's import graph.
// Run: `node --test bench/js/` (needs bindings/pkg from `cargo xtask wasm` and
// `npm ci --prefix bench/js`).

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { caslPeer, mspRules } from "../lib/casl.mjs";
import { assertAgree, measure } from "../lib/harness.mjs";
import { decodeMasks } from "../lib/rolescope.mjs";
import { checkAgreement, nodeModules, setUp } from "../lib/setup.mjs";
import { esmGraph, measureFiles } from "../lib/size.mjs";

test("assertAgree accepts equal answers (action lists as sets)", () => {
  assertAgree("peer", "req", true, true);
  assertAgree("peer", "req", false, false);
  assertAgree("peer", "req", ["view", "update"], ["update", "view"]);
  assertAgree("peer", "req", [["view"], []], [["view"], []]);
});

test("assertAgree throws on every kind of wrong answer, naming the peer and the request", () => {
  const wrong = [
    [true, false, /rolescope says allow, peer says false/],
    [false, true, /rolescope says deny, peer says true/],
    [true, "true", /not an answer/],
    [["view"], ["view", "delete"]],
    [["view"], []],
    [[["view"], []], [["view"], ["view"]], /row 1/],
    [[["view"], []], [["view"]], /2 rows, peer 1/],
    [[["view"]], ["view"]],
  ];
  for (const [expected, got, message] of wrong) {
    assert.throws(() => assertAgree("peer", "the request", expected, got), (err) => {
      assert.match(err.message, /^peer disagrees with rolescope on the request: /);
      if (message) assert.match(err.message, message);
      return true;
    });
  }
});

test("decodeMasks reads bit i as actions[i]", () => {
  assert.deepEqual(decodeMasks(new Uint32Array([0b101, 0, 0b10]), ["view", "update", "delete"]), [["view", "delete"], [], ["update"]]);
});

test("measure returns a positive median within the samples' range", () => {
  const m = measure(() => true, { warmupMs: 5, sampleMs: 5, samples: 3 });
  assert.ok(m.ns > 0 && m.min <= m.ns && m.ns <= m.max && m.calls >= 1 && m.samples === 3);
});

const real = await setUp();

test("the real peers agree with rolescope on every benchmarked request", () => {
  const expected = checkAgreement(real.sc, real.rolescope, real.peers);
  // the expected answers come from rolescope: both answers of (a) and (b) occur
  assert.equal(expected["a.allowed"], true);
  assert.equal(expected["a.denied"], false);
  assert.equal(expected["b.own"], true);
  assert.equal(expected["b.other"], false);
  assert.equal(expected.d.length, 100);
});

test("a peer with one wrong answer fails the check", () => {
  for (const peer of real.peers.filter((p) => p !== real.rolescope)) {
    for (const c of real.sc.cases) {
      const flipped = (answer) => (typeof answer === "boolean" ? !answer : answer.length === 0 || Array.isArray(answer[0]) ? [...answer.slice(1), []] : answer.slice(1));
      const [first, ...rest] = peer.ops[c.id];
      const broken = { name: `${peer.name}-broken`, ops: { ...peer.ops, [c.id]: [{ ...first, fn: () => flipped(first.fn()) }, ...rest] } };
      assert.throws(
        () => checkAgreement(real.sc, real.rolescope, [real.rolescope, broken]),
        new RegExp(`^Error: ${peer.name}-broken \\(.*\\) disagrees with rolescope on ${c.id.replace(".", "\\.")}: `),
        `${peer.name} on ${c.id}`,
      );
    }
  }
});

test("CASL rules missing a role's grants fail the check", () => {
  const noInstaller = (user) => mspRules({ ...user, assignments: user.assignments.filter((a) => a.role !== "installer") });
  const broken = caslPeer(real.sc, { rules: { msp: noInstaller, site24x7: () => [] } });
  assert.throws(() => checkAgreement(real.sc, real.rolescope, [broken]), /^Error: CASL \(.*\) disagrees with rolescope on /);
});

test("CASL's import graph includes its @ucast dependencies; gzip shrinks", () => {
  const files = esmGraph(join(nodeModules, "@casl", "ability", "dist", "esm", "index.mjs"));
  assert.ok(files.some((f) => f.includes(join("@ucast", "core"))), files.join("\n"));
  const m = measureFiles(files);
  assert.ok(m.gz > 0 && m.gz < m.raw);
});
