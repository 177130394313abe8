//! The HTTP face: `/api/**` to the store, `/__log` and `/__health` for tests and readiness.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::store::{Reply, Store};
use crate::{Error, Options};

/// Largest request body the demo accepts (it is a demo).
const MAX_BODY: usize = 1 << 20;

/// One server's state: the store and the request log.
#[derive(Debug)]
pub(crate) struct App {
    store: Mutex<Store>,
    log: Mutex<VecDeque<Value>>,
    log_limit: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panic while holding the lock cannot leave the store half-written in a way that
    // matters for a demo; keep serving
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The query string as (name, value) pairs, percent-decoded leniently (a filter only).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl App {
    pub(crate) fn new(options: &Options) -> Result<Self, Error> {
        let seed: Value =
            serde_json::from_str(crate::SEED).map_err(|e| Error::Seed(format!("the seed is not JSON: {e}")))?;
        Ok(Self {
            store: Mutex::new(Store::seeded(&seed)?),
            log: Mutex::new(VecDeque::new()),
            log_limit: options.log_limit,
        })
    }

    fn record(&self, req: &hyper::http::request::Parts, body: &[u8]) {
        if self.log_limit == 0 {
            return;
        }
        let headers: Vec<Value> =
            req.headers.iter().map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())])).collect();
        let target = req.uri.path_and_query().map_or_else(|| req.uri.to_string(), |pq| pq.as_str().to_owned());
        let entry = json!({
            "method": req.method.as_str(),
            "target": target,
            "headers": headers,
            "body": String::from_utf8_lossy(body),
        });
        let mut log = lock(&self.log);
        if log.len() >= self.log_limit {
            log.pop_front();
        }
        log.push_back(entry);
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        match (&parts.method, path.as_str()) {
            (&Method::GET, "/__health") => return json_response(200, &json!({ "status": "ok" })),
            (&Method::GET, "/__log") => {
                return json_response(200, &Value::Array(lock(&self.log).iter().cloned().collect()));
            }
            (&Method::DELETE, "/__log") => {
                lock(&self.log).clear();
                return json_response(200, &json!({ "cleared": true }));
            }
            _ => {}
        }
        let bytes = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.record(&parts, b"");
                return json_response(400, &json!({ "error": "bad_body", "detail": e.to_string() }));
            }
        };
        self.record(&parts, &bytes);
        if !path.starts_with("/api/") {
            return json_response(404, &json!({ "error": "not_found", "detail": format!("nothing at `{path}`") }));
        }
        let path = path.trim_end_matches('/');
        let body = if bytes.is_empty() {
            None
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => Some(v),
                Err(e) => return json_response(400, &json!({ "error": "bad_body", "detail": e.to_string() })),
            }
        };
        let reply = {
            let mut store = lock(&self.store);
            match parts.method {
                Method::GET | Method::HEAD => store.get(path, &query_pairs(parts.uri.query())),
                Method::POST => store.create(path, body),
                Method::PUT | Method::PATCH => store.update(path, body),
                Method::DELETE => store.delete(path),
                _ => Reply::error(405, "method_not_allowed", format!("`{}` is not supported", parts.method)),
            }
        };
        json_response(reply.status, &reply.body)
    }
}

/// Accept connections on `listener` forever, one task per connection.
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // out of descriptors or a reset before accept: wait a moment and go on
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(app.handle(req).await) }
            });
            // a client that goes away mid-request is not the server's problem
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// Bind `addr` and return the listener with its actual address (port 0 picks one).
pub(crate) fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), Error> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| Error::Bind(addr, e))?;
    listener.set_nonblocking(true).map_err(|e| Error::Bind(addr, e))?;
    let local = listener.local_addr().map_err(|e| Error::Bind(addr, e))?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_seed_loads() {
        let app = App::new(&Options::default()).unwrap();
        let store = lock(&app.store);
        assert_eq!(store.get("/api/v1/orgs/o1", &[]).status, 200);
        assert_eq!(store.get("/api/customers/c2/maintenance_windows/w21", &[]).body["created_by"], "op");
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_pairs(Some("a=b%20c&d&e=f+g&%zz=1")),
            vec![
                ("a".into(), "b c".into()),
                ("d".into(), "".into()),
                ("e".into(), "f g".into()),
                ("%zz".into(), "1".into())
            ]
        );
        assert!(query_pairs(None).is_empty());
    }
}
