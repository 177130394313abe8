// Type declarations for `rolescope/react`: the React binding of `rolescope/gate`.

import type { ReactElement, ReactNode } from "react";

import type { Attributes, Policy, Principal, Resource, Verdict } from "../index.js";
import type { Gate } from "./index.js";

export type { Gate, GateHttpDecision, GateHttpRequest, GateOptions } from "./index.js";
export { createGate } from "./index.js";

/** Either a ready gate, or a policy and a principal to make one for (freed on change/unmount). */
export type GateProviderProps =
  | { gate: Gate; policy?: undefined; principal?: undefined; context?: undefined; children?: ReactNode }
  | { gate?: undefined; policy: Policy; principal: Principal; context?: Attributes; children?: ReactNode };

/** Provides a gate to `<Can>`, `useCan` and `useGate` below it. */
export function GateProvider(props: GateProviderProps): ReactElement;

/** The gate of the nearest provider. @throws {Error} outside a `GateProvider` */
export function useGate(): Gate;

/** May the provider's principal take `action` on `resource`? (`false` for malformed input.) */
export function useCan(action: string, resource: Resource): boolean;

/** Props of `<Can>`. */
export interface CanProps {
  action: string;
  resource: Resource;
  /** Rendered when not allowed (default: nothing). */
  fallback?: ReactNode;
  /** Render `children` even when not allowed (a function child gets `allowed = false`). */
  passThrough?: boolean;
  children?: ReactNode | ((allowed: boolean, verdict: Verdict) => ReactNode);
}

/** Renders `children` when allowed, else `fallback`. */
export function Can(props: CanProps): ReactNode;
