// Type declarations for `rolescope/gate`: UI gating helpers over a loaded policy.

import type {
  Attributes,
  Explanation,
  HttpDecision,
  HttpRequest,
  InvalidRequest,
  Policy,
  Principal,
  Resource,
  Verdict,
} from "../index.js";

/** An HTTP request as a route table sees it (the package's `HttpRequest`). */
export type GateHttpRequest = HttpRequest;

/** What the policy's route table and the engine make of an HTTP request (`HttpDecision`). */
export type GateHttpDecision = HttpDecision;

/** Options of a gate. */
export interface GateOptions {
  /** Request facts (channel, time, ...) used by every decision of the gate. */
  context?: Attributes;
}

/** One principal's view of a policy, prepared once for a page. */
export interface Gate {
  /** The policy the gate decides with. */
  readonly policy: Policy;
  /** The principal as given. */
  readonly principal: Principal;
  /** The principal's id. @throws {Error} after `free()` */
  readonly id: string;
  /** May the principal take `action` on `resource`? Malformed input is `false`. */
  can(action: string, resource: Resource): boolean;
  /** The decision with its reason (`detail` for malformed input). */
  decide(action: string, resource: Resource): Verdict;
  /**
   * The actions allowed on each resource, aligned with `resources` (one module call for all);
   * `actions` limits the answer to those actions. A resource the policy does not know gets `[]`.
   */
  allowedActions(resources: Resource[], actions?: string[]): string[][];
  /** Why the principal may or may not: every step of the decision. */
  explain(action: string, resource: Resource): Explanation | InvalidRequest;
  /**
   * What the policy's route table says about an HTTP request by this principal (the gateway's
   * and the edge worker's question). @throws {Error} if the module has no route support
   */
  authorizeHttp(request: GateHttpRequest): GateHttpDecision;
  /** Release the prepared principal; the gate throws afterwards. */
  free(): void;
}

/**
 * Prepare `principal` once and answer a page's questions with it.
 * @throws {TypeError} if `policy` is not a Policy or `principal` not a principal object
 * @throws {string} if the policy refuses the principal (malformed assignments, ...)
 */
export function createGate(policy: Policy, principal: Principal, options?: GateOptions): Gate;
