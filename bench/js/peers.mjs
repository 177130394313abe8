//! The node part of `cargo xtask bench` (issue #8): rolescope's npm package (bindings/pkg, built
//! by `cargo xtask wasm`) vs @cedar-policy/cedar-wasm, @casl/ability and casbin (npm) on the
//! bench scenarios (a), (b), (c), the Node batch (1 principal x 100 tenants x 4 actions) and
//! (d) (100 resources x 10 actions), after checking that every peer gives rolescope's answer on
//! every benchmarked request; and the size part (the `.wasm` files and CASL's bundle).
//!
//! Run: `npm ci --prefix bench/js && node bench/js/peers.mjs --out target/bench [--quick]`.
//! Writes node.md + node.json and size.md + size.json into `--out`.

import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

import { root } from "../../bindings/npm/testing.mjs";

import { CASBIN_MODEL } from "./lib/casbin.mjs";
import { CASL_MODEL } from "./lib/casl.mjs";
import { CEDAR_MODEL } from "./lib/cedar.mjs";
import { fmtOps, fmtRatio, fmtTime, measure, sinkValue } from "./lib/harness.mjs";
import { checkAgreement, nodeModules, setUp } from "./lib/setup.mjs";
import { sizeReport } from "./lib/size.mjs";

function parseArgs(argv) {
  const o = { out: null, quick: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--quick") o.quick = true;
    else if (argv[i] === "--out" && i + 1 < argv.length) o.out = argv[++i];
    else throw new Error(`unknown argument \`${argv[i]}\` (usage: node bench/js/peers.mjs --out DIR [--quick])`);
  }
  if (o.out === null) throw new Error("--out DIR is required (usage: node bench/js/peers.mjs --out DIR [--quick])");
  return o;
}

/** Per-decision goal of the issue for rolescope in Node, and the batch goal. */
const DECISION_GOAL_NS = 400;
const BATCH_GOAL_NS = 50_000;
const goalOf = (c) => (c.kind === "decision" ? DECISION_GOAL_NS : c.id === "batch" ? BATCH_GOAL_NS : null);

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  // the command as run from the repository root (an --out inside the repository made relative)
  const shown = process.argv.slice(2).map((a, i, all) => (all[i - 1] === "--out" && !relative(root, resolve(a)).startsWith("..") ? relative(root, resolve(a)) : a));
  const command = `node bench/js/peers.mjs ${shown.join(" ")}`;
  const timing = opts.quick ? { warmupMs: 20, sampleMs: 20, samples: 3 } : { warmupMs: 300, sampleMs: 250, samples: 9 };

  const { sc, rolescope, peers, versions } = await setUp();
  // before any timing: every path of every peer answers every case as rolescope does
  checkAgreement(sc, rolescope, peers);
  console.log(`agreement: ${peers.length} implementations x ${sc.cases.length} cases, every answer equal to rolescope's`);

  const rows = [];
  for (const c of sc.cases) {
    console.log(`\n${c.title}`);
    let base = null;
    for (const peer of peers) {
      for (const p of peer.ops[c.id]) {
        const m = measure(p.fn, timing);
        base ??= m.ns; // rolescope's first path comes first: the comparator
        const goal = peer === rolescope ? goalOf(c) : null;
        const row = {
          case: c.id,
          title: c.title,
          peer: peer.name,
          path: p.path,
          median_ns: Math.round(m.ns * 10) / 10,
          min_ns: Math.round(m.min * 10) / 10,
          max_ns: Math.round(m.max * 10) / 10,
          ops_per_s: Math.round(1e9 / m.ns),
          ratio_to_rolescope: Math.round((m.ns / base) * 1000) / 1000,
          comparator: rows.every((r) => r.case !== c.id),
          goal_ns: goal,
          met: goal === null ? null : m.ns <= goal,
          calls_per_sample: m.calls,
          samples: m.samples,
        };
        rows.push(row);
        console.log(`  ${peer.name.padEnd(10)} ${fmtTime(m.ns).padStart(10)} ${fmtRatio(m.ns / base).padStart(8)}  ${p.path}`);
      }
    }
  }

  const comparator = (id) => rows.find((r) => r.case === id && r.comparator);
  const fastest = (id) => rows.filter((r) => r.case === id && r.peer === "rolescope").sort((a, b) => a.median_ns - b.median_ns)[0];
  const goals = [];
  for (const c of sc.cases.filter((x) => goalOf(x) !== null)) {
    const r = comparator(c.id);
    goals.push({
      goal: `${c.id}: rolescope in Node, ${r.path}`,
      target: `≤ ${fmtTime(goalOf(c))}`,
      result: fmtTime(r.median_ns),
      met: r.median_ns <= goalOf(c),
    });
    const f = fastest(c.id);
    if (f !== r) {
      goals.push({ goal: `${c.id}: rolescope in Node, fastest path: ${f.path}`, target: `≤ ${fmtTime(goalOf(c))}`, result: fmtTime(f.median_ns), met: f.median_ns <= goalOf(c) });
    }
  }

  const out = resolve(opts.out);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "node.json"), `${JSON.stringify({ part: "node", quick: opts.quick, command, versions, timing, rows, goals }, null, 2)}\n`);
  writeFileSync(join(out, "node.md"), nodeMarkdown({ command, opts, timing, sc, rows, goals }));

  const size = sizeReport(nodeModules);
  const sizeVersions = { rolescope: versions.rolescope, "@cedar-policy/cedar-wasm": versions["@cedar-policy/cedar-wasm"], "@casl/ability": versions["@casl/ability"] };
  writeFileSync(join(out, "size.json"), `${JSON.stringify({ part: "size", versions: sizeVersions, rows: size.rows, goals: [size.goal], xtask_size_json: size.xtask }, null, 2)}\n`);
  writeFileSync(join(out, "size.md"), sizeMarkdown({ command, size }));
  console.log(`\nwritten: ${["node.md", "node.json", "size.md", "size.json"].map((f) => join(opts.out, f)).join(", ")} (sink ${sinkValue()})`);
}

const cell = (s) => String(s).replace(/\|/g, "\\|");

function nodeMarkdown({ command, opts, timing, sc, rows, goals }) {
  const L = [];
  L.push("## JavaScript (Node): rolescope's npm package vs cedar-wasm, CASL, casbin", "");
  L.push(`\`${command}\``, "");
  if (opts.quick) L.push("**`--quick` run: a smoke test, the numbers are not results.**", "");
  L.push(
    `Every implementation answered every benchmarked request as rolescope does (checked before timing). Method: each row is warmed up for ${timing.warmupMs} ms, then timed in ${timing.samples} samples of about ${timing.sampleMs} ms each (calls per sample calibrated from the warm-up); the median sample is shown (ns or µs per operation) with operations per second. "vs rolescope" divides by the first rolescope row of the same table: for one decision \`allowed\` (principal and resource prepared in advance, as every peer gets its per-request inputs - CASL's ability and subject, Cedar's entities, casbin's arguments - built in advance), for (c) \`allowedActions\`, for the batches the package's batch entry. The other rolescope rows are its other entry points. A goal applies to rolescope's rows.`,
    "",
  );
  const goalCell = (r) => (r.goal_ns === null ? "" : `≤ ${fmtTime(r.goal_ns)}: ${r.met ? "met" : "**missed**"}`);
  for (const c of sc.cases) {
    L.push(`### ${c.title}`, "");
    L.push("| implementation | call | median | ops/s | vs rolescope | goal |", "| --- | --- | ---: | ---: | ---: | --- |");
    for (const r of rows.filter((x) => x.case === c.id)) {
      L.push(`| ${r.peer} | ${cell(r.path)} | ${fmtTime(r.median_ns)} | ${fmtOps(r.median_ns)} | ${fmtRatio(r.ratio_to_rolescope)} | ${goalCell(r)} |`);
    }
    L.push("");
  }
  L.push("### Goals", "", "| goal | target | result | |", "| --- | --- | --- | --- |");
  for (const g of goals) L.push(`| ${cell(g.goal)} | ${g.target} | ${g.result} | ${g.met ? "met" : "**missed**"} |`);
  const ratio = (peer, id) => {
    const r = rows.find((x) => x.case === id && x.peer === peer);
    return r ? fmtRatio(r.ratio_to_rolescope) : "-";
  };
  L.push(
    "",
    `Ratios on the headline (a) allowed decision: CASL ${ratio("CASL", "a.allowed")}, cedar-wasm ${ratio("cedar-wasm", "a.allowed")}, casbin ${ratio("casbin", "a.allowed")}; on the Node batch: CASL ${ratio("CASL", "batch")}, cedar-wasm ${ratio("cedar-wasm", "batch")}, casbin ${ratio("casbin", "batch")}.`,
    "",
  );
  L.push("### How each is modelled", "");
  L.push(
    "- **rolescope**: `engine/benches/msp.yaml` ((a), (c), (d), batch) and `policies/site24x7-msp/roles.yaml` ((b)) compiled to bundles by `rolescope/compiler` and loaded with `Policy.fromBundle`; principal prepared once (`preparePrincipal`); for one decision the resource prepared once (`prepareResource`) too; the batches through `allowedMask` (one bitmask per resource; used when the package has it, else `allowedActionsBatch` comes first); the ana of engine/benches/decide.rs (10 assignments over o0, o10, ..., o90, roles cycling network_admin, observer, installer, helpdesk, network_admin).",
    `- **CASL**: ${CASL_MODEL}.`,
    `- **cedar-wasm**: ${CEDAR_MODEL}.`,
    `- **casbin**: ${CASBIN_MODEL}.`,
    "- Rank (`combine: highest_rank`) changes no answer here (one assignment per tenant); CASL applies it anyway when building rules, the Cedar and casbin models do not.",
    "",
  );
  return `${L.join("\n")}\n`;
}

function sizeMarkdown({ command, size }) {
  const L = [];
  L.push("## Size: rolescope's WebAssembly module vs cedar-wasm and CASL", "");
  L.push(`\`${command}\``, "");
  L.push(
    `Bytes of each file as installed (several files: concatenated, as a bundle would hold them), raw and compressed with \`${size.rows[0].gzip}\`. "vs rolescope" divides by rolescope's engine module (the first row). The budget applies to the engine module, the only module an application that loads bundles ships.`,
    "",
  );
  L.push("| package | what | raw | gzip -9 | vs rolescope (raw) | vs rolescope (gz) | budget |", "| --- | --- | ---: | ---: | ---: | ---: | --- |");
  const kb = (b) => `${(b / 1024).toFixed(1)} KiB`;
  size.rows.forEach((r, i) => {
    const budget = i === 0 ? `≤ 120 KB gz: ${size.goal.met ? "met" : "**missed**"}` : "";
    L.push(`| ${r.name} | ${cell(r.what)} | ${kb(r.raw)} | ${kb(r.gz)} | ${fmtRatio(r.ratio_raw)} | ${fmtRatio(r.ratio_gz)} | ${budget} |`);
  });
  L.push("", "Files:", "");
  for (const r of size.rows) L.push(`- ${r.name}, ${r.what}: ${r.files.map((f) => `\`${f}\``).join(", ")}`);
  if (size.xtask) {
    const same = size.xtask.sha256 === size.sha256 ? "the same module as the first row" : "a different build from the first row";
    L.push("", `\`cargo xtask wasm\` recorded \`${size.xtask.file}\` (${same}) at ${size.xtask.raw.toLocaleString("en-US")} bytes raw, ${size.xtask.gz.toLocaleString("en-US")} gz (target/wasm/size.json).`);
  }
  return `${L.join("\n")}\n`;
}

main().catch((err) => {
  console.error(`bench/js/peers.mjs: ${err.stack ?? err}`);
  process.exit(1);
});
