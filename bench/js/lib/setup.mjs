// Everything bench/js/peers.mjs measures, set up and checked: rolescope and the three peers
// on the scenarios, and the agreement check that runs before any timing.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { caslPeer } from "./casl.mjs";
import { casbinPeer } from "./casbin.mjs";
import { cedarPeer } from "./cedar.mjs";
import { assertAgree } from "./harness.mjs";
import { loadRolescope, rolescopePeer, rolescopeVersion } from "./rolescope.mjs";
import { scenarios } from "./scenarios.mjs";
import { engineSha256 } from "./size.mjs";

/** bench/js/node_modules (where `npm ci --prefix bench/js` installs the peers). */
export const nodeModules = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules");

/** The installed version of an npm package (its package.json in node_modules). */
export function installedVersion(name) {
  return JSON.parse(readFileSync(join(nodeModules, name, "package.json"), "utf8")).version;
}

/** rolescope, its scenarios and every peer, ready to time. */
export async function setUp() {
  const loaded = loadRolescope();
  const sc = scenarios(loaded.deviceActions);
  const rolescope = rolescopePeer(loaded, sc);
  const peers = [rolescope, caslPeer(sc), cedarPeer(sc), await casbinPeer(sc)];
  const versions = {
    rolescope: `${rolescopeVersion()} (bindings/pkg, engine module sha256 ${engineSha256().slice(0, 12)})`,
    "@cedar-policy/cedar-wasm": installedVersion("@cedar-policy/cedar-wasm"),
    "@casl/ability": installedVersion("@casl/ability"),
    casbin: installedVersion("casbin"),
    node: process.version,
  };
  return { loaded, sc, rolescope, peers, versions };
}

/** A path's answer as a boolean or action lists (`decode` turns e.g. bitmasks into lists). */
const answerOf = (path) => (path.decode ? path.decode(path.fn()) : path.fn());

/**
 * The agreement check: rolescope's comparator path answers each case (the expected answer);
 * every other path of rolescope and every path of every peer must give the same answer, or this
 * throws naming the peer, the case and the difference. Returns the expected answers.
 */
export function checkAgreement(sc, rolescope, peers) {
  const expected = {};
  for (const c of sc.cases) {
    const paths = rolescope.ops[c.id];
    if (!paths?.length) throw new Error(`rolescope has no path for ${c.id}`);
    expected[c.id] = answerOf(paths[0]);
    for (const peer of peers) {
      const own = peer.ops[c.id];
      if (!own?.length) throw new Error(`${peer.name} has no path for ${c.id}: ${c.title}`);
      for (const p of own) assertAgree(`${peer.name} (${p.path})`, `${c.id}: ${c.title}`, expected[c.id], answerOf(p));
    }
  }
  return expected;
}
