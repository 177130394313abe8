//! The demo upstream: a small in-memory MSP API that rolescope's gateway protects in the demo,
//! the end-to-end tests and the benchmarks.
//!
//! Everything under `/api/` is a generic REST store seeded for the seed policies' route tables
//! (`seed.json`: `/api/v1/...` for juniper-mist-msp's `msp:mist`, `/api/mtp/...` and
//! `/api/orgs/...` for jumpcloud-mtp's `msp:acme`, `/api/clients/...`, `/api/users`,
//! `/api/billing` for msp-panel's `msp:acme`, `/api/customers/...` for site24x7-msp's
//! `msp:zylker`, and the public `/api/status`): `GET` an item or a collection (query parameters filter a collection by field),
//! `POST` to a collection creates an item with a generated id, `PUT` / `PATCH` merge fields
//! into an item, `DELETE` removes it; anything unknown is a 404 with a JSON body. The upstream
//! never decides who may do what: it answers whatever reaches it, which is what makes it a
//! witness for the gateway's tests.
//!
//! `GET /__log` returns every request received (except `/__*`) as a JSON array of
//! `{method, target, headers: [[name, value], ...], body}`; `DELETE /__log` clears it;
//! `GET /__health` answers 200.
//!
//! Start it in-process with [`Background::start`] (tests) or run the binary
//! `rolescope-demo-upstream --listen 127.0.0.1:8081`.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod server;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The seed data: item paths mapped to JSON objects.
const SEED: &str = include_str!("../seed.json");

/// Errors starting the demo upstream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on `{0}`: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    /// The tokio runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The built-in seed data is malformed.
    #[error("invalid seed data: {0}")]
    Seed(String),
}

/// How to run the demo upstream.
#[derive(Clone, Debug)]
pub struct Options {
    /// The address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// How many requests the log keeps (oldest dropped first); 0 keeps none (benchmarks).
    pub log_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 8081)), log_limit: 100_000 }
    }
}

/// Serve on the current tokio runtime until the future is dropped. `on_bound` is called
/// with the bound address before the first connection is accepted.
pub async fn run(options: &Options, on_bound: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    let app = Arc::new(server::App::new(options)?);
    let (listener, addr) = server::bind(options.listen)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| Error::Bind(addr, e))?;
    on_bound(addr);
    server::serve(listener, app).await;
    Ok(())
}

/// A demo upstream running on its own thread and runtime; stopped when dropped.
#[derive(Debug)]
pub struct Background {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Bind `options.listen` and serve on a background thread.
    pub fn start(options: &Options) -> Result<Self, Error> {
        let app = Arc::new(server::App::new(options)?);
        let (listener, addr) = server::bind(options.listen)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("demo-upstream-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                    tokio::select! {
                        () = server::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
                runtime.shutdown_background();
            })
            .map_err(Error::Runtime)?;
        Ok(Self { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
