// UI gating on top of a rolescope policy: one principal prepared once, then the questions a page
// asks while it renders. Framework-free; works with any entry of the package (`rolescope`,
// `rolescope/web`, `rolescope/bundler`) because it only calls the policy object it is given.
// Every error denies: a malformed resource or action hides the control, it never shows it.

/** Is `value` a plain object (not a class instance, not an array)? */
function isPlainObject(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * A gate for one principal on one policy.
 *
 * @param {import("../index.js").Policy} policy a loaded policy (`Policy.fromBundle` / `compile`)
 * @param {import("../index.js").Principal} principal who is looking at the page
 * @param {{ context?: import("../index.js").Attributes }} [options] request facts every
 *   decision of this gate uses (channel, time, ...)
 * @returns {import("./index.js").Gate}
 */
export function createGate(policy, principal, options = {}) {
  if (policy === null || typeof policy !== "object" || typeof policy.preparePrincipal !== "function") {
    throw new TypeError("createGate: `policy` must be a rolescope Policy");
  }
  if (!isPlainObject(principal)) {
    throw new TypeError("createGate: `principal` must be a principal object ({ id, status?, assignments, attributes? })");
  }
  const context = options.context ?? null;
  // Throws (a message) when the principal is malformed: a page must not render as someone it
  // cannot decide for.
  let prepared = policy.preparePrincipal(principal);
  const live = () => {
    if (prepared === null) throw new Error("this gate was freed");
    return prepared;
  };

  /** @type {import("./index.js").Gate} */
  const gate = {
    policy,
    principal,
    get id() {
      return live().id;
    },
    decide(action, resource) {
      return policy.decide(live(), action, resource, context);
    },
    can(action, resource) {
      return policy.decide(live(), action, resource, context).allowed === true;
    },
    allowedActions(resources, actions = []) {
      if (!Array.isArray(resources)) throw new TypeError("allowedActions: `resources` must be an array");
      // One call into the module for the whole page.
      const rows = policy.allowedActionsBatch(live(), resources, actions, context);
      // The batch answers [] when `resources` is not a list; keep the rows aligned either way.
      return resources.map((_, i) => (Array.isArray(rows[i]) ? rows[i] : []));
    },
    explain(action, resource) {
      live();
      const request = { principal, action, resource };
      if (context !== null) request.context = context;
      return policy.explain(request);
    },
    authorizeHttp(request) {
      if (typeof policy.authorizeHttp !== "function") {
        throw new Error("this rolescope module has no authorizeHttp (HTTP route tables): update the package");
      }
      return policy.authorizeHttp(live(), { method: request.method, target: request.target, headers: request.headers ?? [] });
    },
    free() {
      if (prepared !== null) {
        prepared.free();
        prepared = null;
      }
    },
  };
  return gate;
}
