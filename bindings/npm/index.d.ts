// Type declarations for `rolescope` (the `node` and `bundler` entries; `rolescope/web` adds
// `init`/`initSync`, see web.d.ts): the engine module, which loads bundles and decides. The
// playground API (`Policy.compile`, `validate`, `bundle`, `runSuite`, `checkInvariants`) is
// `rolescope/compiler` (compiler.d.ts). Hand-written: the generated wasm-bindgen declarations type
// every object as `any`. The shapes follow the engine's serde types (engine/src/request.rs,
// decision.rs, diag.rs, suite.rs); bindings/npm/test/ checks them against the module.

/** A JSON value: attribute and context values. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Attributes or request context: names to JSON values, checked against the policy's declarations. */
export type Attributes = { [name: string]: JsonValue };

/** Why a decision came out the way it did (stable snake_case codes). */
export type Reason =
  | "allowed"
  | "no_matching_grant"
  | "explicit_deny"
  | "principal_inactive"
  | "out_of_scope"
  | "condition_false"
  | "unknown_action"
  | "unknown_resource_kind"
  | "unknown_principal"
  | "invalid_scope"
  | "invalid_attribute"
  | "invalid_request"
  /** HTTP: path normalization refused the target (`..`, an encoded `/`, `//`, `;`, ...). */
  | "invalid_path"
  /** HTTP: no route of the policy's route table matches the method and path. */
  | "no_route"
  /** HTTP: the route needs a principal and none was given. */
  | "unauthenticated";

/** Why a delegation question was answered as it was. */
export type AssignReason =
  | "allowed"
  | "principal_inactive"
  | "unknown_principal"
  | "invalid_request"
  | "unknown_role"
  | "not_assignable"
  | "invalid_scope"
  | "level_not_allowed"
  | "no_delegation_rule"
  | "not_permitted"
  | "rank_exceeds_own";

// ---------------------------------------------------------------------------------------------
// Inputs (the engine's wire types; unknown fields are rejected)

/** A role file given as text. `name` is what diagnostics point at. */
export interface RoleFile {
  name: string;
  text: string;
}

/** A role held at a scope. */
export interface Assignment {
  /** Role name. */
  role: string;
  /** The scope node the role is held at, e.g. `msp:acme` or `msp:acme/org:o1`. */
  scope: string;
  /**
   * For a role held above the tenant level: which tenants it reaches. `"all"`: every
   * descendant of `scope`, including later ones; a list: only those (paths, absolute or
   * relative to `scope`). Absent (the old form): every tenant, except for roles with
   * `tenant_access: listed`, which then reach none.
   */
  tenants?: "all" | string[];
}

/** Anything but `active` is denied everything. */
export type PrincipalStatus = "active" | "suspended" | "deleted";

/** Who asks. */
export interface Principal {
  /** Identifier (subject). */
  id?: string;
  /** `active` when absent. */
  status?: PrincipalStatus;
  /** Typed attributes, checked against the policy's `attributes.principal`. */
  attributes?: Attributes;
  /** Role assignments. */
  assignments?: Assignment[];
}

/** What is acted on. */
export interface Resource {
  /** Resource kind, declared under `resources:`. */
  kind: string;
  /** Identifier (may be empty, e.g. for `create` on a collection). */
  id?: string;
  /** Scope path, e.g. `msp:acme/org:o1/site:s2`. */
  scope: string;
  /** Typed attributes, checked against the kind's declared attributes. */
  attributes?: Attributes;
}

/** A principal given inline, or the id of a principal filed with the policy (`principals:`). */
export type PrincipalRef = string | Principal;

/** May `principal` take `action` on `resource` in `context`? */
export interface Request {
  principal: PrincipalRef;
  action: string;
  resource: Resource;
  /** Request facts (channel, time, ...), checked against `attributes.context`. */
  context?: Attributes;
}

/** May `principal` assign `role` at `scope`? */
export interface AssignRequest {
  principal: PrincipalRef;
  role: string;
  scope: string;
  context?: Attributes;
}

// ---------------------------------------------------------------------------------------------
// Results (plain objects)

/** A decision: what `check` and `decide` return. */
export interface Verdict {
  allowed: boolean;
  reason: Reason;
  /** For request errors: what exactly was wrong. */
  detail?: string;
}

/** What `checkReport` and `explain` return instead of a report when the request is malformed. */
export interface InvalidRequest {
  allowed: false;
  reason: "invalid_request";
  detail: string;
}

/** A rule that decided a decision, with its source location. */
export interface MatchedRule {
  effect: "grant" | "deny";
  /** The role that declares the rule (absent for policy-wide denies). */
  role?: string;
  /** The assignment through which the role applied: `role@scope`. */
  assignment?: string;
  condition?: string;
  description?: string;
  /** `file:line:col` of the rule. */
  source: string;
}

/** A decision with names, locations and a human explanation. */
export interface DecisionReport {
  allowed: boolean;
  reason: Reason;
  /** The rules that decided it (empty when no rule did). */
  matched: MatchedRule[];
  explanation: string;
  /** The revision of the policy that decided (`sha256:...`). */
  revision: string;
}

/** One step of an explanation. */
export interface ExplainStep {
  /** What was looked at: `status`, `assignment`, `rank`, `grant`, `deny`. */
  step: string;
  message: string;
  /** Where the rule or role is defined. */
  source?: string;
  /** The rule's index in the compiled policy (stable for one revision). */
  rule?: number;
  role?: string;
  /** `covers`, `skipped`, `ignored`, `selected`, `matched`, `condition_true`, `condition_false`, ... */
  outcome: string;
}

/** A decision with the full trace of how it was reached. */
export interface Explanation {
  decision: DecisionReport;
  steps: ExplainStep[];
}

/** The answer to "may P assign role R at scope S?". */
export interface AssignDecision {
  allowed: boolean;
  reason: AssignReason;
  explanation: string;
}

/** An invariant that a set of principals breaks. */
export interface InvariantViolation {
  invariant: string;
  /** The scope node where it is broken (absent when no node of the level appears at all). */
  scope?: string;
  found: number;
  required: number;
  message: string;
}

export type Severity = "error" | "warning";

/** A position in a role file: 1-based line and column (0 when unknown). */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
  /** Byte offset into the text, when known. */
  offset?: number;
  /** Length in bytes of the spanned text (absent when unknown). */
  length?: number;
}

/** One validation error or warning. */
export interface Diagnostic {
  severity: Severity;
  /** Stable code such as `RS011` (see policies/README.md). */
  code: string;
  /** Lowercase message; user input appears in backticks. */
  message: string;
  hint?: string;
  location: SourceLocation;
}

/** What `validate` returns. */
export interface Validation {
  valid: boolean;
  /** Errors (when invalid) and warnings. */
  diagnostics: Diagnostic[];
}

/** What `Policy.compile`, `bundle` and `Policy.fromBundle` throw when the policy is invalid. */
export interface InvalidPolicy extends Validation {
  valid: false;
}

/** What `prepareResource` throws when the resource does not fit the policy. */
export interface PrepareError {
  reason: Reason;
  message: string;
}

/** A role as declared: what a UI needs to list roles. */
export interface RoleSummary {
  name: string;
  title: string | null;
  description: string | null;
  rank: number;
  assignable: boolean;
  /** Scope levels the role may be held at. */
  held_at: string[];
  /** Where the role is declared (`file:line:col`). */
  source: string;
}

/** Expected and actual outcome of one suite case. */
export interface CaseResult {
  /** Case name (matrix cells are named `name[principal resource action]`). */
  name: string;
  kind: "check" | "assign" | "invariants";
  principal: string;
  /** Action (or role, for `assign` cases). */
  action: string;
  /** Resource fixture name, or the scope for `assign` cases. */
  resource: string;
  /** `allow`/`deny`, or the expected violations. */
  expected: string;
  got: string;
  expected_reason?: string;
  reason: string;
  passed: boolean;
  explanation: string;
  /** Where the case is written. */
  source: string;
}

/** The outcome of running one suite. */
export interface SuiteReport {
  suite: string;
  file: string;
  cases: CaseResult[];
}

/** A rule the suite never exercised. */
export interface Uncovered {
  what: "role" | "grant" | "deny" | "condition";
  name: string;
  source: string;
}

/** What a suite exercised of the policy. */
export interface Coverage {
  policy: string;
  roles_total: number;
  roles_covered: number;
  rules_total: number;
  rules_covered: number;
  conditions_total: number;
  conditions_both_ways: number;
  percent: number;
  uncovered: Uncovered[];
}

/** What `runSuite` returns; `diagnostics` lists problems in the suite file itself. */
export interface SuiteRun {
  report: SuiteReport;
  diagnostics: Diagnostic[];
  coverage: Coverage;
}

// ---------------------------------------------------------------------------------------------
// The API

/** A principal prepared once (per token or page) for many decisions. */
export declare class PreparedPrincipal {
  private constructor();
  /** Release the memory now instead of at garbage collection. */
  free(): void;
  readonly id: string;
}

/** A resource prepared once (per row of a page) for many decisions. */
export declare class PreparedResource {
  private constructor();
  /** Release the memory now instead of at garbage collection. */
  free(): void;
  readonly id: string;
  readonly scope: string;
}

/** A compiled policy. Decisions never throw: malformed input denies with a reason. */
export declare class Policy {
  private constructor();
  /**
   * Load a bundle written by `rolescope build` (or `bundle` of `rolescope/compiler`).
   * @throws {InvalidPolicy}
   */
  static fromBundle(json: string): Policy;
  /** Release the memory now instead of at garbage collection. */
  free(): void;
  /** The policy's name. */
  readonly name: string;
  /** The content hash of the bundle (`sha256:...`). */
  readonly revision: string;
  /** Warnings found while compiling (a policy loaded from a bundle has none). */
  readonly warnings: Diagnostic[];
  /** Roles with titles, ranks and levels. */
  roles(): RoleSummary[];
  /**
   * Every rule of the policy by rule id (no `assignment`): where an {@link HttpDecision}'s
   * `rule` is looked up (effect, role, `file:line:col`). Read it once per policy.
   */
  rules(): MatchedRule[];
  /** Decide a request. */
  check(request: Request): Verdict;
  /** Decide a request and describe it. */
  checkReport(request: Request): DecisionReport | InvalidRequest;
  /** Decide a request with every step. */
  explain(request: Request): Explanation | InvalidRequest;
  /** Prepare a principal for many decisions. @throws {string} if it is malformed */
  preparePrincipal(principal: Principal): PreparedPrincipal;
  /** Prepare a resource for many decisions. @throws {PrepareError} (a string if malformed) */
  prepareResource(resource: Resource): PreparedResource;
  /** The fast path: may `principal` take `action` on a `kind` at `scope`? Malformed parts deny. */
  can(principal: PreparedPrincipal, action: string, kind: string, scope: string): boolean;
  /** The fastest path: prepared principal and resource, no context (declared defaults apply). */
  allowed(principal: PreparedPrincipal, action: string, resource: PreparedResource): boolean;
  /** Decide for a prepared principal on a resource, with an optional context. */
  decide(principal: PreparedPrincipal, action: string, resource: Resource, context?: Attributes | null): Verdict;
  /** The actions `principal` may take on `resource` (empty when malformed). */
  allowedActions(principal: PreparedPrincipal, resource: Resource, context?: Attributes | null): string[];
  /**
   * For many resources at once (one call per page render), aligned with `resources`; `actions`
   * limits the answer to those actions (all of each kind when empty). A resource the policy
   * does not know gets `[]`; if `resources` is not a list of resources the answer is `[]`.
   */
  allowedActionsBatch(
    principal: PreparedPrincipal,
    resources: Resource[],
    actions: string[],
    context?: Attributes | null,
  ): string[][];
  /**
   * The fast batch for a listing page: resources of one `kind` given by their scope paths (no
   * id; the kind's attribute defaults apply, as in `can`). One bitmask per scope, aligned with
   * `scopes`: bit `i` (`(mask >>> i) & 1`) is set when `actions[i]` is allowed. At most 32
   * actions (bits for the first 32 only). An unknown kind or action, a malformed scope or
   * context and an inactive principal set no bit. Each scope is parsed once per policy.
   */
  allowedMask(
    principal: PreparedPrincipal,
    kind: string,
    scopes: string[],
    actions: string[],
    context?: Attributes | null,
  ): Uint32Array;
  /** May the principal assign a role at a scope? */
  canAssign(request: AssignRequest): AssignDecision;
  /**
   * Map an HTTP request through the policy's route table (`routes:`) with the engine's path
   * normalization and decide it for `principal`, exactly as the gateway and the edge worker do.
   */
  authorizeHttp(principal: PreparedPrincipal, request: HttpRequest): HttpDecision;
  /** {@link Policy.authorizeHttp} for an anonymous caller: public routes only. */
  authorizeHttpAnonymous(request: HttpRequest): HttpDecision;
}

/** An HTTP request as a gateway or an edge worker received it. */
export interface HttpRequest {
  /** The method, case-sensitive; `HEAD` uses the `GET` routes. */
  method: string;
  /** The raw request target `path?query`, exactly as received (not decoded). */
  target: string;
  /** Headers as `[name, value]` pairs or an object; only headers a route reads are looked at. */
  headers?: [string, string][] | { [name: string]: string };
}

/** The decision on an HTTP request and what the request was mapped to. */
export interface HttpDecision {
  allowed: boolean;
  reason: Reason;
  /** A public route matched (anyone may call it). */
  public: boolean;
  /** The matched route, e.g. `GET /api/v1/orgs/{org}`. */
  route?: string;
  action?: string;
  kind?: string;
  /** The resource's scope path. */
  scope?: string;
  /** The tenant segment of the scope, e.g. `org:o1`. */
  tenant?: string;
  resourceId?: string;
  /** For refused or malformed requests: what exactly was wrong. */
  detail?: string;
  /**
   * The rule that decided (for an allow the grant, for `explicit_deny` the deny): its id in
   * {@link Policy.rules}.
   */
  rule?: number;
  /** The assignment the deciding rule came through, `role@scope` (absent for a policy-wide deny). */
  assignment?: string;
  /**
   * A default deny's (`no_matching_grant`, `out_of_scope`, `condition_false`) nearest
   * assignments of the principal to the question's scope, nearest first, at most 3
   * (`role@scope`); absent otherwise or when the principal has none.
   */
  nearest?: string[];
}
