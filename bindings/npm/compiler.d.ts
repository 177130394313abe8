// Type declarations for `rolescope/compiler` (the `node` and `bundler` entries;
// `rolescope/compiler/web` adds `init`/`initSync`, see compiler-web.d.ts): the playground's
// module. It compiles role files given as text (YAML or JSON) with diagnostics as data, runs
// test suites and writes bundles, and decides like the engine module (`rolescope`). It is a
// second WebAssembly module (the YAML parser and the validator do not fit the engine module's
// size budget); load it where policies are authored, and the engine module where they are
// enforced. Its `Policy`, `PreparedPrincipal` and `PreparedResource` belong to this module:
// do not mix them with the engine module's.

import type {
  AssignDecision,
  AssignRequest,
  Attributes,
  Diagnostic,
  DecisionReport,
  Explanation,
  HttpDecision,
  HttpRequest,
  InvalidRequest,
  InvariantViolation,
  MatchedRule,
  Principal,
  PreparedPrincipal,
  PreparedResource,
  Request,
  Resource,
  RoleFile,
  RoleSummary,
  SuiteRun,
  Validation,
  Verdict,
} from "./index.js";

export * from "./index.js";

/**
 * Validate role files without keeping a policy. Never throws for an invalid policy (the
 * diagnostics say what is wrong); throws a string if `files` is not `RoleFile[]`.
 */
export function validate(files: RoleFile[]): Validation;

/**
 * Compile role files into a bundle (JSON text) for `Policy.fromBundle` of `rolescope`, as
 * `rolescope build` writes it. @throws {InvalidPolicy} (a string if `files` is not `RoleFile[]`)
 */
export function bundle(files: RoleFile[]): string;

/**
 * A compiled policy, with the playground's extras (`compile`, `runSuite`, `checkInvariants`).
 * Decisions never throw: malformed input denies with a reason.
 */
export declare class Policy {
  private constructor();
  /**
   * Load a bundle written by `rolescope build` (or `bundle` of `rolescope/compiler`).
   * @throws {InvalidPolicy}
   */
  static fromBundle(json: string): Policy;
  /** Compile role files. @throws {InvalidPolicy} (a string if `files` is not `RoleFile[]`) */
  static compile(files: RoleFile[]): Policy;
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
  /** Every rule by rule id (no `assignment`): where an `HttpDecision`'s `rule` is looked up. */
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
  /** One kind at many scopes, a bitmask of `actions` per scope (see index.d.ts). */
  allowedMask(
    principal: PreparedPrincipal,
    kind: string,
    scopes: string[],
    actions: string[],
    context?: Attributes | null,
  ): Uint32Array;
  /** May the principal assign a role at a scope? */
  canAssign(request: AssignRequest): AssignDecision;
  /** An HTTP request through the route table, decided for `principal` (as the gateway does). */
  authorizeHttp(principal: PreparedPrincipal, request: HttpRequest): HttpDecision;
  /** {@link Policy.authorizeHttp} for an anonymous caller: public routes only. */
  authorizeHttpAnonymous(request: HttpRequest): HttpDecision;
  /** Which invariants a set of principals breaks. @throws {string} if a principal is malformed */
  checkInvariants(principals: Principal[]): InvariantViolation[];
  /** Run a test suite (YAML text) against this policy. */
  runSuite(name: string, text: string): SuiteRun;
}
