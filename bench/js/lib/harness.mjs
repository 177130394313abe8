// The measuring and checking half of bench/js/peers.mjs: the agreement check every peer passes
// before anything is timed, the timer, and number formatting.

/** A canonical form of an answer for comparison: booleans as they are, action lists as sets. */
function canonical(answer) {
  if (typeof answer === "boolean") return answer;
  if (Array.isArray(answer) && answer.every((a) => typeof a === "string")) return [...answer].sort();
  if (Array.isArray(answer) && answer.every(Array.isArray)) return answer.map(canonical);
  throw new TypeError(`not an answer (a boolean, a list of actions or a list of such lists): ${JSON.stringify(answer)}`);
}

const show = (v) => JSON.stringify(v);

/**
 * Throws unless `got` (a peer's answer) equals `expected` (rolescope's answer to the same
 * request): booleans must be equal, action lists equal as sets, and a batch (a list of action
 * lists, one per resource) equal row by row with as many rows. The message names the peer, the
 * request and the first difference.
 */
export function assertAgree(peer, request, expected, got) {
  const e = canonical(expected);
  let g;
  try {
    g = canonical(got);
  } catch (err) {
    throw new Error(`${peer} disagrees with rolescope on ${request}: ${err.message}`);
  }
  const fail = (what) => {
    throw new Error(`${peer} disagrees with rolescope on ${request}: ${what}`);
  };
  if (typeof e === "boolean") {
    if (g !== e) fail(`rolescope says ${e ? "allow" : "deny"}, ${peer} says ${show(got)}`);
    return;
  }
  if (Array.isArray(e) && e.every(Array.isArray)) {
    if (!Array.isArray(g) || !g.every(Array.isArray)) fail(`rolescope answers a batch, ${peer} answers ${show(got)}`);
    if (g.length !== e.length) fail(`rolescope answers ${e.length} rows, ${peer} ${g.length}`);
    for (let i = 0; i < e.length; i++) {
      if (show(e[i]) !== show(g[i])) fail(`row ${i}: rolescope allows ${show(e[i])}, ${peer} ${show(g[i])}`);
    }
    return;
  }
  if (show(e) !== show(g)) fail(`rolescope allows ${show(e)}, ${peer} ${show(g)}`);
}

/** Whatever a timed function returns goes here, so the JIT cannot drop the call. */
let sink = 0;
const consume = (r) => {
  sink = (sink + (r === true ? 1 : typeof r === "object" && r !== null ? r.length : 0)) | 0;
};
export const sinkValue = () => sink;

/**
 * Times `fn` (no arguments; returns the answer): a warm-up of `warmupMs`, a calibration to calls
 * per sample of about `sampleMs`, then `samples` samples. Returns the median ns per call with the
 * fastest and slowest sample and the calls per sample.
 */
export function measure(fn, { warmupMs, sampleMs, samples }) {
  const now = () => process.hrtime.bigint();
  // warm-up (lets the JIT optimize the call path) and a first estimate of the cost
  let calls = 0;
  const w0 = now();
  let elapsed = 0;
  do {
    consume(fn());
    calls++;
    elapsed = Number(now() - w0) / 1e6;
  } while (elapsed < warmupMs);
  const n = Math.max(1, Math.round((calls * sampleMs) / elapsed));
  const per = [];
  for (let s = 0; s < samples; s++) {
    const t = now();
    for (let i = 0; i < n; i++) consume(fn());
    per.push(Number(now() - t) / n);
  }
  per.sort((a, b) => a - b);
  return { ns: per[Math.floor(per.length / 2)], min: per[0], max: per[per.length - 1], calls: n, samples };
}

/** `1.2 µs`, `340 ns`, `12.3 ms`. */
export function fmtTime(ns) {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(ns >= 1e7 ? 1 : 2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(ns >= 1e4 ? 1 : 2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

/** Operations per second with thousands separators. */
export function fmtOps(ns) {
  const ops = 1e9 / ns;
  return ops >= 100 ? Math.round(ops).toLocaleString("en-US") : ops.toFixed(1);
}

/** A ratio to rolescope: `12.3x` (`0.52x` below 1). */
export function fmtRatio(r) {
  if (r >= 100) return `${Math.round(r).toLocaleString("en-US")}x`;
  if (r >= 10) return `${r.toFixed(1)}x`;
  return `${r.toFixed(2)}x`;
}
