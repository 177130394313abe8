//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (valid policies, all cases passed, request decided)
  1  internal error (I/O, serialization)
  2  usage error (bad arguments, missing path, malformed request or assignments file)
  3  invalid policy or suite (diagnostics with errors; warnings too with --deny-warnings),
     or an assignment set breaks an invariant
  4  test failures (a case failed, a suite is malformed, coverage below --min-coverage)
  5  denied (`eval --exit-code` only), or decisions change (`replay --fail-on-change`)

Colour is used only when writing to a terminal and NO_COLOR is not set.";

/// Check, test and explain rolescope policies.
#[derive(Debug, Parser)]
#[command(name = "rolescope", version, about, after_help = EXIT_CODES, after_long_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate role files and report every error and warning with its location.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Run the `*_test.yaml` suites next to each policy.
    #[command(after_help = EXIT_CODES)]
    Test(TestArgs),
    /// Decide one request and print the decision report as JSON.
    #[command(after_help = EXIT_CODES)]
    Eval(EvalArgs),
    /// Decide one request and show every step of the evaluation; with `--log FILE --id ID`,
    /// explain a logged decision offline.
    #[command(after_help = EXIT_CODES)]
    Explain(ExplainArgs),
    /// Decide every request of a decision log again under a candidate policy and report what
    /// would change (allow -> deny, deny -> allow, by route, role and reason).
    #[command(after_help = EXIT_CODES)]
    Replay(ReplayArgs),
    /// Map one HTTP request through the policy's route table and decide it, as the gateway
    /// and the edge worker do; print the HTTP decision as JSON.
    #[command(after_help = EXIT_CODES)]
    Route(RouteArgs),
    /// Validate a policy and write it as a bundle (JSON) for the gateway and wasm hosts.
    #[command(after_help = EXIT_CODES)]
    Build(BuildArgs),
    /// Rewrite YAML role files and suites in the one layout (comments kept); `--check` only
    /// lists the files that are not in it.
    #[command(after_help = EXIT_CODES)]
    Fmt(FmtArgs),
    /// Write the JSON Schemas (draft-07) of role files and test suites, for editors.
    #[command(after_help = EXIT_CODES)]
    Schema(SchemaArgs),
    /// Write a new ed25519 key pair for signing bundles (`build --sign`).
    #[command(after_help = EXIT_CODES)]
    Keygen(KeygenArgs),
}

/// Output format of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CheckFormat {
    /// Diagnostics rendered with source snippets.
    Human,
    /// The diagnostics as data.
    Json,
}

/// Output format of `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TestFormat {
    /// One line per failing case, then `N passed, M failed`.
    Human,
    /// Every result as data.
    Json,
    /// JUnit XML (one testsuite per suite file).
    Junit,
    /// TAP version 13.
    Tap,
}

/// Output format of `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExplainFormat {
    /// Readable text.
    Human,
    /// The explanation as data.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Role files or folders. A folder is searched recursively; each folder that directly
    /// holds role files is one policy. Files given together compile as one policy.
    #[arg(value_name = "PATH", default_value = ".")]
    pub(crate) paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub(crate) format: CheckFormat,
    /// A YAML/JSON file of principals (a list, or a mapping id -> principal) to check against
    /// each policy's invariants; violations exit 3, a principal that cannot be read exits 2.
    #[arg(long, value_name = "FILE")]
    pub(crate) assignments: Option<PathBuf>,
    /// Treat warnings (lints, the old implicit `tenants` form) as errors: exit 3 when there
    /// are any (for CI).
    #[arg(long)]
    pub(crate) deny_warnings: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Policy folders (searched recursively), role files or suite files.
    #[arg(value_name = "PATH", default_value = ".")]
    pub(crate) paths: Vec<PathBuf>,
    /// Only report cases whose name contains this text.
    #[arg(long, value_name = "SUBSTR")]
    pub(crate) filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    pub(crate) format: TestFormat,
    /// Report, per policy, the share of roles and rules the suites exercised and list what
    /// they never did. (The JSON and JUnit outputs always carry it.)
    #[arg(long)]
    pub(crate) coverage: bool,
    /// Fail (exit 4) when a policy's suites exercise less than this share of its roles and
    /// rules, in percent (e.g. `--min-coverage 90`).
    #[arg(long, value_name = "PERCENT", value_parser = percent)]
    pub(crate) min_coverage: Option<f64>,
}

fn percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a percentage between 0 and 100")),
    }
}

/// The request of `eval` and `explain`: a file, flags, or a file with flags on top.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// The policy: a folder of role files, a role file, or a bundle from `rolescope build`.
    /// Repeat it to compile several together (a policy and its overlays). Required, except for
    /// `explain --log` with `--bundles`.
    #[arg(long, value_name = "PATH")]
    pub(crate) policy: Vec<PathBuf>,
    /// A request file (YAML or JSON: principal, action, resource, context); `-` reads
    /// standard input. Flags given as well override its fields.
    #[arg(value_name = "REQUEST_FILE")]
    pub(crate) request: Option<PathBuf>,
    /// The id of a principal filed with the policy (`principals:`), or else of a principal
    /// fixture of the suites next to it.
    #[arg(long, value_name = "ID", conflicts_with = "principal_json")]
    pub(crate) principal: Option<String>,
    /// A principal given inline as JSON: `{"id": "ana", "assignments": [...]}`.
    #[arg(long, value_name = "JSON")]
    pub(crate) principal_json: Option<String>,
    /// The action.
    #[arg(long)]
    pub(crate) action: Option<String>,
    /// The resource kind.
    #[arg(long)]
    pub(crate) kind: Option<String>,
    /// The resource's scope path, e.g. `msp:acme/org:o1`.
    #[arg(long)]
    pub(crate) scope: Option<String>,
    /// The resource id.
    #[arg(long, value_name = "ID")]
    pub(crate) resource_id: Option<String>,
    /// A resource attribute (repeatable). The value is read as JSON when it parses
    /// (`tier=2`, `tags=["a"]`), else as a string.
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) resource_attr: Vec<String>,
    /// A context attribute (repeatable), read like `--resource-attr`.
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) context: Vec<String>,
    /// Ask a delegation question instead: may the principal assign ROLE at SCOPE
    /// (`--assign technician@msp:acme/org:o1`)?
    #[arg(long, value_name = "ROLE@SCOPE", conflicts_with_all = ["request", "action", "kind", "scope", "invariants"])]
    pub(crate) assign: Option<String>,
    /// Ask an invariant question instead: which of the policy's invariants do the principals in
    /// FILE (a list, or a mapping id -> principal) break?
    #[arg(long, value_name = "FILE", conflicts_with_all = ["request", "action", "kind", "scope", "principal", "principal_json"])]
    pub(crate) invariants: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    #[command(flatten)]
    pub(crate) request: RequestArgs,
    /// Decide many requests: FILE (`-`: standard input) holds one request per line (JSON);
    /// one decision report per line is printed, in order. A line that is not a request is
    /// answered `{"line": N, "error": ...}` and the others still run (exit 2 at the end).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["request", "principal", "principal_json", "action", "kind", "scope", "assign", "invariants"])]
    pub(crate) batch: Option<PathBuf>,
    /// Exit 0 when allowed and 5 when denied (by default a decision exits 0 either way).
    #[arg(long)]
    pub(crate) exit_code: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RouteArgs {
    /// The policy: a folder of role files (with its `routes:`), a role file, or a bundle.
    /// Repeat it to compile several together (a policy and its overlays).
    #[arg(long, value_name = "PATH", required = true)]
    pub(crate) policy: Vec<PathBuf>,
    /// The request line: `METHOD /raw/target?query` (not decoded; quote it).
    #[arg(value_name = "REQUEST")]
    pub(crate) request: String,
    /// The id of a principal filed with the policy (`principals:`). Without a principal the
    /// caller is anonymous (public routes only).
    #[arg(long, value_name = "ID", conflicts_with = "principal_json")]
    pub(crate) principal: Option<String>,
    /// A principal given inline as JSON: `{"id": "ana", "assignments": [...]}`.
    #[arg(long, value_name = "JSON")]
    pub(crate) principal_json: Option<String>,
    /// A request header `NAME: VALUE` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Exit 0 when allowed and 5 when denied (by default a decision exits 0 either way).
    #[arg(long)]
    pub(crate) exit_code: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    pub(crate) request: RequestArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExplainFormat::Human)]
    pub(crate) format: ExplainFormat,
    /// Explain a logged decision instead: a decision log (`rolescope-decision/1` JSON lines of
    /// the gateway or the edge worker); with `--id`.
    #[arg(long, value_name = "FILE", requires = "id", conflicts_with_all = ["request", "principal", "principal_json", "action", "kind", "scope", "assign", "invariants"])]
    pub(crate) log: Option<PathBuf>,
    /// The decision id (`decision_id`, the `X-Rolescope-Decision-Id` response header).
    #[arg(long, value_name = "DECISION_ID", requires = "log")]
    pub(crate) id: Option<String>,
    /// A folder of bundles (`rolescope build` output): the one of the record's revision is used.
    #[arg(long, value_name = "DIR", requires = "log")]
    pub(crate) bundles: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The decision log: `rolescope-decision/1` JSON lines (the gateway's or the edge worker's).
    #[arg(long, value_name = "FILE")]
    pub(crate) log: PathBuf,
    /// The candidate policy: a folder of role files, a role file, or a bundle. Repeat it to
    /// compile several together (a policy and its overlays).
    #[arg(long, value_name = "PATH", required = true)]
    pub(crate) policy: Vec<PathBuf>,
    /// Exit 5 when any decision would change (for CI).
    #[arg(long)]
    pub(crate) fail_on_change: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExplainFormat::Human)]
    pub(crate) format: ExplainFormat,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// A policy folder (its role files), or role files that compile together.
    #[arg(value_name = "PATH", required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Where to write the bundle; `-` writes it to standard output.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    /// Sign the bundle with this ed25519 private key (PKCS#8 PEM, e.g. from `rolescope
    /// keygen`) and write a signed envelope (`rolescope-signed-bundle/1`) instead of the
    /// plain bundle. Repeat the flag to sign with several keys (key rotation).
    #[arg(long, value_name = "KEY.pem")]
    pub(crate) sign: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Folder to write `NAME.key.pem` (the private key, PKCS#8, readable by its owner only)
    /// and `NAME.pub.pem` (the public key, SPKI) to; created if missing. Existing key files
    /// are never overwritten.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// The key files' name.
    #[arg(long, default_value = "rolescope")]
    pub(crate) name: String,
}

#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// Folder to write `policy.schema.json` and `test.schema.json` to.
    #[arg(short, long, value_name = "DIR", default_value = "policies/schema")]
    pub(crate) output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct FmtArgs {
    /// Role files, suites or folders (searched recursively, as `check` does).
    #[arg(value_name = "PATH", default_value = ".")]
    pub(crate) paths: Vec<PathBuf>,
    /// Change nothing; exit 3 when a file is not formatted (for CI).
    #[arg(long)]
    pub(crate) check: bool,
}
