//! The enforcing HTTP gateway: a hyper 1.x reverse proxy that authorizes every request through
//! the wasmtime host of the engine module before forwarding it.
//!
//! - `config`: the YAML configuration and its environment overrides.
//! - `identity`: JWT verification and the claims-to-principal mapping.
//! - `enforce`: the one engine call per request (principals prepared per token and revision).
//! - The request path, one phase per module: `conn` + `frame` (framing), `pipeline` (identity,
//!   lookups, decision and its record, shared by every front), `forward` (the upstream);
//!   `proxy` is the gateway front that runs them in order; `authz` (`mode: authorize`) answers
//!   a proxy's authorization sub-request with the same phases, and `ext_authz` is Envoy's
//!   ext_authz gRPC service on its own listener.
//! - `reject`: the one mapping of every refusal to its status and body.
//! - `reload`: SIGHUP, file watch and URL polling of the bundle and key set.
//! - `directory`: the principal directory (subject -> principal), polled like bundles.
//! - `tls`: the listener's certificate (reloaded on change) and the upstream's TLS client.
//! - `admin`, `metrics`, `decision_log`: operations.

mod admin;
mod authz;
mod body;
mod config;
mod conn;
mod decision_log;
mod directory;
mod enforce;
mod ext_authz;
mod forward;
mod frame;
mod identity;
mod lru;
mod mint;
mod pipeline;
mod proxy;
mod reject;
mod reload;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::config::Limits;
pub use self::config::{ConfigError, GatewayConfig};
use self::conn::{ConnFlags, Tracked};
use self::decision_log::DecisionLog;
use self::directory::Directory;
pub use self::directory::{DirectoryError, PrincipalDirectory, sign_directory};
use self::enforce::Enforcer;
use self::forward::UpstreamClient;
use self::identity::Identity;
use self::metrics::Metrics;
pub use self::mint::{MintError, MintOptions, mint};
use self::reject::Rejection;
use self::reload::Reloader;
use self::tls::ListenerTlsState;
pub use self::tls::TlsError;
use crate::wasm_host::WasmEngine;

mod metrics;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The engine module cannot be read.
    #[error("module: cannot read `{path}`: {source} (build it with `cargo xtask wasm`, or set `module`)")]
    ModuleFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The engine module was refused by the host.
    #[error("module: {0}")]
    Engine(#[from] crate::wasm_host::Error),
    /// An address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The decision log cannot be opened.
    #[error("decision_log: {0}")]
    DecisionLog(std::io::Error),
    /// A certificate, key or CA file (`tls`, `upstream_tls`) cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// `check-config`: the bundle or key set given in the configuration is refused.
    #[error("{field}: {message}")]
    Document {
        /// The field naming the document.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// What every request handler shares.
pub(crate) struct State {
    config: GatewayConfig,
    upstream: Uri,
    limits: Limits,
    enforcer: Option<Enforcer>,
    identity: Option<Identity>,
    /// The upstream client (with the client certificate, if any).
    client: UpstreamClient,
    /// The client for the bundle, key set and directory URLs.
    fetcher: UpstreamClient,
    directory: Option<Directory>,
    metrics: Metrics,
    log: DecisionLog,
}

impl State {
    /// The revision of the bundle in force.
    fn current_revision(&self) -> Option<String> {
        self.enforcer.as_ref().and_then(|e| e.engine().revision()).map(|r| r.as_str().to_owned())
    }
}

/// A running gateway: the proxy and admin listeners, the reloader. Stop it with
/// [`Gateway::shutdown`] (drains requests in flight).
pub struct Gateway {
    listen: SocketAddr,
    admin: SocketAddr,
    grpc: Option<SocketAddr>,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    proxy_task: JoinHandle<()>,
    other_tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("listen", &self.listen).field("admin", &self.admin).finish_non_exhaustive()
    }
}

fn read_module(config: &GatewayConfig) -> Result<WasmEngine, StartError> {
    let wasm = std::fs::read(&config.module)
        .map_err(|source| StartError::ModuleFile { path: config.module.clone(), source })?;
    Ok(WasmEngine::new(&wasm, crate::wasm_host::Config::default())?)
}

impl Gateway {
    /// Compile the engine module, load the bundle and key set (a refused bundle is logged and
    /// the gateway answers 503 until a valid one arrives), bind both addresses and serve.
    pub async fn start(config: GatewayConfig) -> Result<Self, StartError> {
        let engine = if config.enforce {
            let cfg = config.clone();
            let engine = tokio::task::spawn_blocking(move || read_module(&cfg)).await.map_err(|e| {
                StartError::ModuleFile { path: config.module.clone(), source: std::io::Error::other(e.to_string()) }
            })??;
            Some(engine)
        } else {
            None
        };
        Self::run(config, engine).await
    }

    /// [`Gateway::start`] on a module compiled already (`module` in the configuration is not
    /// read): the gateway shares its compiled code and epoch ticker and has its own bundle slot
    /// ([`WasmEngine::reconfigured`]). Replicas in one process, and tests, compile once.
    pub async fn start_with_engine(config: GatewayConfig, engine: &WasmEngine) -> Result<Self, StartError> {
        let engine = if config.enforce { Some(engine.reconfigured(engine.config().clone())?) } else { None };
        Self::run(config, engine).await
    }

    async fn run(config: GatewayConfig, engine: Option<WasmEngine>) -> Result<Self, StartError> {
        let enforcer = engine.map(|e| Enforcer::new(e, config.principals_from_bundle));
        let identity = config.jwt.as_ref().map(Identity::new);
        let log = DecisionLog::start(&config.decision_log, &config.decision_input).map_err(StartError::DecisionLog)?;
        let client = forward::client(&config.upstream_tls, true)?;
        let fetcher = forward::client(&config.upstream_tls, false)?;
        let listener_tls = config.tls.as_ref().map(ListenerTlsState::new).transpose()?;
        let directory = config.directory.as_ref().map(Directory::new);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let admin_listener = TcpListener::bind(config.admin_listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.admin_listen, source })?;
        let listen = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let admin =
            admin_listener.local_addr().map_err(|source| StartError::Bind { addr: config.admin_listen, source })?;
        let grpc_listener = match config.authorize.grpc_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?),
            None => None,
        };
        let grpc = grpc_listener.as_ref().and_then(|l| l.local_addr().ok());
        let state = Arc::new(State {
            upstream: config.upstream.clone(),
            limits: config.limits.clone(),
            config,
            enforcer,
            identity,
            client,
            fetcher,
            directory,
            metrics: Metrics::default(),
            log,
        });
        let mut reloader = Reloader::new(Arc::clone(&state));
        reloader.tick(true).await;
        let mut directory_poller = directory::Poller::new(Arc::clone(&state));
        if let Some(p) = directory_poller.as_mut() {
            p.tick(true).await;
        }
        let (stop, stop_rx) = watch::channel(false);

        let st = Arc::clone(&state);
        let proxy_task = match state.config.mode {
            config::Mode::Gateway => tokio::spawn(serve(
                listener,
                listener_tls.clone(),
                Arc::clone(&state),
                stop_rx.clone(),
                move |req, remote| proxy::handle(Arc::clone(&st), req, remote),
            )),
            config::Mode::Authorize => tokio::spawn(serve(
                listener,
                listener_tls.clone(),
                Arc::clone(&state),
                stop_rx.clone(),
                move |req, remote| authz::handle(Arc::clone(&st), req, remote),
            )),
        };
        let mut other_tasks = Vec::new();
        if let Some(l) = grpc_listener {
            other_tasks.push(tokio::spawn(ext_authz::serve(l, Arc::clone(&state), stop_rx.clone())));
        }
        let st = Arc::clone(&state);
        let admin_task =
            tokio::spawn(serve(admin_listener, None, Arc::clone(&state), stop_rx.clone(), move |req, _| {
                admin::handle(Arc::clone(&st), req)
            }));
        other_tasks.extend([admin_task, tokio::spawn(reloader.run(stop_rx.clone()))]);
        if let Some(p) = directory_poller {
            other_tasks.push(tokio::spawn(p.run(stop_rx.clone())));
        }
        if let Some(t) = listener_tls {
            other_tasks.push(tokio::spawn(t.watch(stop_rx)));
        }
        let scheme = if state.config.tls.is_some() { "https" } else { "http" };
        tracing::info!(%listen, %admin, ?grpc, scheme, mode = ?state.config.mode, enforce = state.enforcer.is_some(), "rolescope gateway serving");
        Ok(Self { listen, admin, grpc, state, stop, proxy_task, other_tasks })
    }

    /// The bound proxy address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The bound Envoy ext_authz gRPC address (`authorize.grpc_listen`), if any.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc
    }

    /// The revision of the bundle in force.
    pub fn revision(&self) -> Option<String> {
        self.state.current_revision()
    }

    /// Load a bundle now (as a reload does): validated off the request path, then swapped in;
    /// a refused bundle leaves the current one serving.
    pub async fn load_bundle(&self, bundle_json: &str) -> Result<String, String> {
        reload::load_bundle(&self.state, bytes::Bytes::copy_from_slice(bundle_json.as_bytes()), "api").await
    }

    /// The Prometheus text the admin address serves.
    pub fn metrics_text(&self) -> String {
        self.state.metrics.render()
    }

    /// Stop accepting, let requests in flight finish (at most `limits.shutdown_grace`), stop.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.proxy_task.await;
        for t in self.other_tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Accept connections on `listener` and serve each with `handler` until `stop`; then drain.
/// Plain TCP speaks HTTP/1.1; with `tls`, the handshake's ALPN picks HTTP/2 (`h2`) or
/// HTTP/1.1. Any front (the proxy, an authorization-only front, ...) plugs in as `handler`.
async fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<ListenerTlsState>,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<body::Body>> + Send + 'static,
{
    // HTTP/1.1 only, with upgrades (the tunnel of a declared upgrade, `forward::upgrade`).
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.limits.header_timeout)
        .max_buf_size(state.limits.max_header_bytes)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                if let Some(tls) = &tls {
                    tokio::spawn(serve_tls(
                        tcp,
                        remote,
                        tls.acceptor().clone(),
                        state.limits.clone(),
                        graceful.watcher(),
                        handler.clone(),
                    ));
                    continue;
                }
                // A second descriptor of the socket, to answer 408 after hyper gave up on it.
                let (tcp, spare) = match tcp.into_std() {
                    Ok(std) => {
                        let spare = std.try_clone().ok();
                        match TcpStream::from_std(std) {
                            Ok(tcp) => (tcp, spare),
                            Err(_) => continue,
                        }
                    }
                    Err(_) => continue,
                };
                let flags = Arc::new(ConnFlags::default());
                let io = Tracked::new(tcp, Arc::clone(&flags), state.limits.max_header_bytes, state.limits.write_timeout);
                let service = service(handler.clone(), remote, Some(Arc::clone(&flags)));
                let conn = graceful.watch(builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned());
                let within = state.limits.header_timeout;
                tokio::spawn(async move {
                    let Some(result) = first_bytes_within(conn, &flags, within).await else { return };
                    if let Err(e) = result {
                        let timeout = e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout);
                        if timeout && flags.mid_request() && let Some(mut spare) = spare {
                            use std::io::Write as _;
                            let _ = spare.write_all(&Rejection::HeaderTimeout.raw(&pipeline::new_id()));
                            let _ = spare.shutdown(std::net::Shutdown::Both);
                        }
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let grace = state.limits.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(?grace, "shutdown grace period over; closing the remaining connections");
    }
}

/// Serve an HTTP/1.1 connection, but drop it (closing it without an answer) when not one byte
/// arrived within `within`: with upgrades on, hyper waits for the first bytes before its header
/// timer starts.
async fn first_bytes_within<F: Future>(conn: F, flags: &ConnFlags, within: std::time::Duration) -> Option<F::Output> {
    tokio::pin!(conn);
    tokio::select! {
        r = &mut conn => Some(r),
        () = tokio::time::sleep(within) => if flags.read_any() { Some(conn.await) } else { None },
    }
}

/// The service of one connection: the head findings of `conn.rs` (when tracked) attached to
/// each request, then `handler`. An HTTP/2 request names its host in `:authority` only; it is
/// given the `Host` header an HTTP/1.1 request carries, so every check and the upstream see
/// one shape of request.
fn service<F, Fut>(
    handler: F,
    remote: SocketAddr,
    flags: Option<Arc<ConnFlags>>,
) -> impl hyper::service::Service<Request<Incoming>, Response = Response<body::Body>, Error = Infallible, Future: Send> + Clone
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<body::Body>> + Send + 'static,
{
    service_fn(move |mut req: Request<Incoming>| {
        if let Some(finding) = flags.as_ref().and_then(|f| f.take_finding()) {
            req.extensions_mut().insert(finding);
        }
        if req.version() == http::Version::HTTP_2
            && !req.headers().contains_key(http::header::HOST)
            && let Some(v) = req.uri().authority().and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(http::header::HOST, v);
        }
        let fut = handler(req, remote);
        async move { Ok::<_, Infallible>(fut.await) }
    })
}

/// One TLS connection: the handshake (within `limits.header_timeout`), then HTTP/2 when ALPN
/// chose `h2`, else HTTP/1.1 on the plaintext side wrapped in `Tracked` (the same head checks
/// as plain connections; HTTP/2 frames are binary, so `Tracked` does not read them: hyper's h2
/// refuses connection-specific framing headers itself).
async fn serve_tls<F, Fut>(
    tcp: TcpStream,
    remote: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    limits: Limits,
    graceful: hyper_util::server::graceful::Watcher,
    handler: F,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<body::Body>> + Send + 'static,
{
    let stream = match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, %remote, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "TLS handshake timed out");
            return;
        }
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(tls::ALPN_H2);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256);
    let result = if h2 {
        let builder = builder.http2_only();
        let service = service(handler, remote, None);
        graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned()).await
    } else {
        let builder = builder.http1_only();
        let flags = Arc::new(ConnFlags::default());
        let io = Tracked::new(stream, Arc::clone(&flags), limits.max_header_bytes, limits.write_timeout);
        let service = service(handler, remote, Some(Arc::clone(&flags)));
        let conn = graceful.watch(builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned());
        let Some(result) = first_bytes_within(conn, &flags, limits.header_timeout).await else { return };
        result
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "TLS connection ended with an error");
    }
}

/// `check-config`: the configuration, the engine module, and the bundle and key set files it
/// names. Returns a one-line summary.
pub fn check_config(config: &GatewayConfig) -> Result<String, StartError> {
    let mut summary = match config.mode {
        config::Mode::Gateway => {
            format!("listen {} admin {} upstream {}", config.listen, config.admin_listen, config.upstream)
        }
        config::Mode::Authorize => format!(
            "authorize only: listen {} admin {}{}",
            config.listen,
            config.admin_listen,
            config.authorize.grpc_listen.map(|g| format!(" grpc {g}")).unwrap_or_default()
        ),
    };
    if config.enforce {
        let engine = read_module(config)?;
        summary.push_str(&format!("; module sha256 {}", engine.module_sha256()));
        if let Some(path) = &config.policy.file {
            let text = std::fs::read_to_string(path).map_err(|e| StartError::Document {
                field: "policy.file",
                message: format!("{}: {e}", path.display()),
            })?;
            // verified exactly as `serve` verifies every bundle it loads
            let json = reload::verified_bundle(&config.policy, &text)
                .map_err(|message| StartError::Document { field: "policy.file", message })?;
            let revision = engine
                .load(&json)
                .map_err(|e| StartError::Document { field: "policy.file", message: e.to_string() })?;
            if config.principals_from_bundle {
                reload::filed_principals(&json)
                    .map_err(|message| StartError::Document { field: "policy.file", message })?;
            }
            summary.push_str(&format!("; bundle revision {revision}"));
            if config.policy.trusted_keys.is_some() {
                summary.push_str(" (signature verified)");
            }
        }
    } else {
        summary.push_str("; enforcement OFF (passthrough)");
    }
    forward::client(&config.upstream_tls, true)?;
    if let Some(t) = &config.tls {
        ListenerTlsState::new(t)?;
        summary.push_str("; TLS listener (h2, http/1.1)");
    }
    if let Some(d) = &config.directory
        && let Some(path) = &d.file
    {
        let bytes = std::fs::read(path).map_err(|e| StartError::Document {
            field: "identity.directory.file",
            message: format!("{}: {e}", path.display()),
        })?;
        let n = directory::parse(&bytes, d.trusted_keys.as_deref())
            .map_err(|message| StartError::Document { field: "identity.directory.file", message })?
            .len();
        summary.push_str(&format!("; directory of {n} principal(s)"));
    }
    if let Some(jwt) = &config.jwt
        && let config::KeySource::File(path) = &jwt.keys
    {
        let bytes = std::fs::read(path).map_err(|e| StartError::Document {
            field: "identity.jwt.jwks_file",
            message: format!("{}: {e}", path.display()),
        })?;
        let n = Identity::new(jwt)
            .set_keys(&bytes)
            .map_err(|e| StartError::Document { field: "identity.jwt.jwks_file", message: e.to_string() })?;
        summary.push_str(&format!("; {n} verification key(s)"));
    }
    Ok(summary)
}
