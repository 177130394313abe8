// React binding of the UI gate: <GateProvider>, <Can>, useCan, useGate. No JSX (plain
// `createElement`), so it needs no build step; React is a peer dependency.

import { createContext, createElement, useContext, useEffect, useMemo } from "react";

import { createGate } from "./index.js";

const GateContext = createContext(null);
GateContext.displayName = "RolescopeGate";

/**
 * Provides a gate to the tree: either a ready `gate`, or a `policy` and a `principal` (a gate is
 * created for them and freed when they change or the provider unmounts).
 */
export function GateProvider({ gate, policy, principal, context, children }) {
  const own = useMemo(() => {
    if (gate) return null;
    if (!policy || !principal) return null;
    return createGate(policy, principal, context === undefined ? {} : { context });
  }, [gate, policy, principal, context]);
  useEffect(() => () => own?.free(), [own]);
  return createElement(GateContext.Provider, { value: gate ?? own }, children);
}

/** The gate of the nearest provider. @throws {Error} outside a GateProvider */
export function useGate() {
  const gate = useContext(GateContext);
  if (gate === null) throw new Error("rolescope: useGate/useCan/<Can> used outside a <GateProvider> with a gate");
  return gate;
}

/** May the provider's principal take `action` on `resource`? (`false` for malformed input.) */
export function useCan(action, resource) {
  return useGate().can(action, resource);
}

/**
 * Renders `children` when the principal may take `action` on `resource`, else `fallback`
 * (nothing by default). With `passThrough`, `children` always render; a function child gets
 * `(allowed, verdict)` either way (e.g. to render a disabled button with its reason).
 */
export function Can({ action, resource, fallback = null, passThrough = false, children }) {
  const gate = useGate();
  const verdict = gate.decide(action, resource);
  const allowed = verdict.allowed === true;
  if (typeof children === "function") {
    return allowed || passThrough ? children(allowed, verdict) : fallback;
  }
  return allowed || passThrough ? (children ?? null) : fallback;
}
