//! A deliberately small HTTP/1.1 client over `std::net::TcpStream`: it sends exactly the bytes a
//! test writes (the attack suite needs malformed requests no real client would send) and parses
//! one response.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One parsed response.
#[derive(Clone, Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `reason` of a JSON error body.
    pub(crate) fn reason(&self) -> String {
        self.json().get("reason").and_then(|r| r.as_str()).unwrap_or("").to_owned()
    }

    /// Status, reason and body, for assertion messages.
    pub(crate) fn summary(&self) -> String {
        format!("{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

/// What came back from a raw exchange.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A complete response.
    Response(Response),
    /// The server closed the connection without a (complete) response.
    Closed(Vec<u8>),
}

impl Outcome {
    /// The response, or a test failure naming `what`.
    #[track_caller]
    pub(crate) fn response(self, what: &str) -> Response {
        match self {
            Outcome::Response(r) => r,
            Outcome::Closed(bytes) => {
                panic!("{what}: connection closed without a response ({:?})", String::from_utf8_lossy(&bytes))
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decode a chunked body; `None` while it is incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Parse one response from `buf`; `None` while it is incomplete (unless `eof`).
fn parse(buf: &[u8], eof: bool, head_request: bool) -> Option<Response> {
    let head_end = find(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &buf[head_end + 4..];
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if get("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        if rest.len() < len {
            return None;
        }
        rest[..len].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return None;
    };
    Some(Response { status, headers, body })
}

/// Write `bytes` to `addr` and read one response (or the connection closing), waiting at most
/// `timeout` for each read.
pub(crate) fn exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Outcome {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_nodelay(true).unwrap();
    let head_request = bytes.starts_with(b"HEAD ");
    // a server may answer (and close) before reading everything: that is not a failure
    let _ = stream.write_all(bytes);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(r) = parse(&buf, false, head_request) {
                    return Outcome::Response(r);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("no response from {addr} within {timeout:?} (got {:?})", String::from_utf8_lossy(&buf))
            }
            // a reset after the server answered and closed
            Err(_) => break,
        }
    }
    match parse(&buf, true, head_request) {
        Some(r) => Outcome::Response(r),
        None => Outcome::Closed(buf),
    }
}

/// A well-formed request: `method target` with `headers` (a `Host` and `Connection: close`
/// are added unless given) and an optional body (with its `Content-Length`).
pub(crate) fn request_bytes(method: &str, target: &str, headers: &[(&str, &str)], body: Option<&str>) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        out.push_str("Host: localhost\r\n");
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("connection")) {
        out.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        out.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    out.push_str("\r\n");
    if let Some(b) = body {
        out.push_str(b);
    }
    out.into_bytes()
}

/// Send a well-formed request and return the response.
#[track_caller]
pub(crate) fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
    exchange(addr, &request_bytes(method, target, headers, None), Duration::from_secs(20))
        .response(&format!("{method} {target}"))
}

/// `GET target` on `addr` (admin endpoints, the upstream's log).
#[track_caller]
pub(crate) fn get(addr: SocketAddr, target: &str) -> Response {
    send(addr, "GET", target, &[])
}

/// The status of `GET target`, or 0 when nothing answers.
pub(crate) fn try_status(addr: SocketAddr, target: &str) -> u16 {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { return 0 };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(&request_bytes("GET", target, &[], None)).is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    parse(&buf, true, false).map_or(0, |r| r.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lengths_and_chunks() {
        let r = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi", false, false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nhi", false, false).is_none());
        let c =
            parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n1\r\n!\r\n0\r\n\r\n", false, false);
        assert_eq!(c.unwrap().body, b"hi!");
        assert!(parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n", false, false).is_none());
    }
}
