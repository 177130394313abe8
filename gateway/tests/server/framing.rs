//! Framing and limits: ambiguous or oversized requests are refused before anything is
//! forwarded (some by hyper itself, checked here), timeouts close slow clients, the upstream's
//! failures map to 502/504, and shutdown drains requests in flight.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::{Setup, Upstream, raw, request, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_and_oversized_requests_are_refused() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let gw = start(s.config(
        upstream.addr,
        "enforce: false\nlimits: { max_header_bytes: 8192, max_body_bytes: 100, header_timeout: 300ms }\n",
    ))
    .await;
    let addr = gw.local_addr();
    let send = |req: String| async move { raw(addr, &req).await };

    let a = send(format!("GET /a HTTP/1.1\r\nHost: {addr}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"))
        .await
        .unwrap();
    assert_eq!((a.status, a.reason().as_str()), (400, "duplicate_host"), "{a:?}");
    let a = send(format!(
        "GET /a HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\nConnection: close\r\n\r\n"
    ))
    .await
    .unwrap();
    assert_eq!((a.status, a.reason().as_str()), (400, "duplicate_authorization"));
    let a =
        send(format!("GET http://evil.example/a HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await.unwrap();
    assert_eq!((a.status, a.reason().as_str()), (400, "host_mismatch"));
    // an absolute-form target that agrees with Host is fine
    let a = send(format!("GET http://{addr}/ok HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    // two different Content-Lengths: hyper refuses the message (400, its own empty body)
    let a = send(format!(
        "POST /a HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd"
    ))
    .await;
    assert_eq!(a.map(|a| a.status), Some(400));
    // Content-Length with Transfer-Encoding, either order: refused (hyper would drop the
    // length and read the chunked body; the gateway sees the head itself)
    let smuggled = format!("GET /smuggled HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    for head in [
        format!("Content-Length: {}\r\nTransfer-Encoding: chunked", 5 + smuggled.len()),
        "Transfer-Encoding: chunked\r\nContent-Length: 3".to_owned(),
    ] {
        let a = send(format!("POST /te HTTP/1.1\r\nHost: {addr}\r\n{head}\r\n\r\n0\r\n\r\n{smuggled}")).await.unwrap();
        assert_eq!((a.status, a.reason().as_str()), (400, "ambiguous_framing"), "{head}: {a:?}");
    }
    assert!(upstream.seen().iter().all(|s| s.target != "/te" && s.target != "/smuggled"), "{:?}", upstream.seen());
    // a keep-alive connection: the flag belongs to the one request that had both
    let a = send(format!(
        "GET /first HTTP/1.1\r\nHost: {addr}\r\n\r\nGET /second HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    ))
    .await
    .unwrap();
    assert_eq!(a.status, 200);
    // a fragment in the target (dropped by the URI parser) is refused, as the engine refuses it
    let a = send(format!("GET /frag#/other HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await.unwrap();
    assert_eq!((a.status, a.reason().as_str()), (400, "invalid_path"), "{a:?}");
    assert!(upstream.seen().iter().all(|s| s.target != "/frag"));
    // a chunked body within the limit is streamed through, framed once
    let a = send(format!(
        "POST /chunked HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    ))
    .await
    .unwrap();
    assert_eq!(a.status, 200);
    let got = upstream.seen().into_iter().find(|s| s.target == "/chunked").unwrap();
    assert_eq!(got.body, b"abcde");
    assert!(got.header("content-length").is_none() || got.header("transfer-encoding").is_none(), "{got:?}");
    // a body over the limit: by its declared length, and streamed (chunked)
    let a = send(format!(
        "POST /big HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 101\r\nConnection: close\r\n\r\n{}",
        "x".repeat(101)
    ))
    .await
    .unwrap();
    assert_eq!((a.status, a.reason().as_str()), (413, "body_too_large"));
    let chunk = "x".repeat(80);
    let a = send(format!(
        "POST /big-chunked HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n50\r\n{chunk}\r\n50\r\n{chunk}\r\n0\r\n\r\n"
    ))
    .await
    .unwrap();
    assert_eq!((a.status, a.reason().as_str()), (413, "body_too_large"), "{a:?}");
    assert!(upstream.seen().iter().all(|s| s.target != "/big"), "an oversized body was forwarded");
    // headers over the limit: 431 from hyper
    let a =
        send(format!("GET /a HTTP/1.1\r\nHost: {addr}\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "y".repeat(9000)))
            .await;
    assert_eq!(a.map(|a| a.status), Some(431));
    // a client that never finishes its headers is cut off after header_timeout
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /slow-client HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "connection kept for {:?}", started.elapsed());
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"reason\":\"header_timeout\""), "{text}");
    // an idle keep-alive connection is closed without an answer
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut buf)).await.unwrap();
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
    assert!(upstream.seen().iter().all(|s| s.target != "/slow-client"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_map_to_502_and_504_and_shutdown_drains() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let gw =
        start(s.config(upstream.addr, "enforce: false\nlimits: { upstream_timeout: 500ms, shutdown_grace: 10s }\n"))
            .await;
    let a = request(gw.local_addr(), "GET", "/slow", &[]).await;
    assert_eq!(
        (a.status, a.reason().as_str(), a.json()["error"].as_str()),
        (504, "upstream_timeout", Some("gateway_timeout"))
    );
    gw.shutdown().await;

    // nothing listens on the upstream port
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gw = start(s.config(dead, "enforce: false\n")).await;
    let a = request(gw.local_addr(), "GET", "/x", &[]).await;
    assert_eq!(
        (a.status, a.reason().as_str(), a.json()["error"].as_str()),
        (502, "upstream_unavailable", Some("bad_gateway"))
    );
    gw.shutdown().await;

    // a request in flight when shutdown starts still gets its answer
    let gw = start(s.config(upstream.addr, "enforce: false\nlimits: { shutdown_grace: 10s }\n")).await;
    let addr = gw.local_addr();
    let in_flight = tokio::spawn(async move { request(addr, "GET", "/slow", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    gw.shutdown().await;
    let a = in_flight.await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(stopping.elapsed() >= Duration::from_secs(2), "shutdown did not wait for the request");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}
