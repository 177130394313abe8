//! TLS for the end-to-end tests, all made at test time: a private CA and its certificates
//! (rcgen), an HTTPS front for the demo upstream (tokio-rustls; optionally requiring a client
//! certificate), and HTTPS clients for the gateway's TLS listener (HTTP/1.1 and HTTP/2 through
//! hyper, and raw bytes over TLS for the attack suite).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::http::Response;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate and its key as PEM files.
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// A private CA made at test time; its PEM file is `ca`.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub(crate) ca: PathBuf,
    dir: PathBuf,
}

impl Ca {
    /// A new CA named `name`, its files in `dir`.
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca, issuer.pem()).unwrap();
        Self { issuer, ca, dir: dir.to_path_buf() }
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by this CA, written as
    /// `<file>.pem` and `<file>.key`.
    pub(crate) fn issue(&self, file: &str, names: &[&str]) -> Pair {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pair = Pair { cert: self.dir.join(format!("{file}.pem")), key: self.dir.join(format!("{file}.key")) };
        // key first, then the certificate: a watcher that sees the certificate change finds a
        // matching key
        std::fs::write(&pair.key, key.serialize_pem()).unwrap();
        std::fs::write(&pair.cert, cert.pem()).unwrap();
        pair
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }
}

/// The DER of the first certificate in a PEM file.
pub(crate) fn der(path: &Path) -> Vec<u8> {
    certs(path).first().map(|c| c.to_vec()).unwrap()
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path).unwrap().collect::<Result<_, _>>().unwrap()
}

fn key(path: &Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path).unwrap()
}

/// An HTTPS front for a plain HTTP server (the demo upstream): TLS with `server`'s certificate,
/// the plaintext copied both ways to `backend`. With `client_ca`, a client certificate issued
/// by it is required.
pub(crate) struct TlsFront {
    pub(crate) addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TlsFront {
    pub(crate) fn start(backend: SocketAddr, server: &Pair, client_ca: Option<&Ca>) -> Self {
        let builder =
            rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap();
        let builder = match client_ca {
            Some(ca) => builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider())
                    .build()
                    .unwrap(),
            ),
            None => builder.with_no_client_auth(),
        };
        let config = builder.with_single_cert(certs(&server.cert), key(&server.key)).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self { addr, runtime: Some(runtime) }
    }

    /// `https://localhost:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Which HTTP version a client asks for in ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    H1,
    H2,
}

fn client_config(ca: &Ca, version: Version) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    config.alpn_protocols = match version {
        Version::H1 => vec![b"http/1.1".to_vec()],
        Version::H2 => vec![b"h2".to_vec()],
    };
    config
}

/// One request over TLS (verified against `ca`, SNI `localhost`) with `version`; the negotiated
/// ALPN protocol and the response.
pub(crate) fn request(
    addr: SocketAddr,
    ca: &Ca,
    version: Version,
    req: http::Request<Full<Bytes>>,
) -> Result<(Option<Vec<u8>>, Response), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(ca, version)));
    rt.block_on(async move {
        let work = async {
            let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            let io = hyper_util::rt::TokioIo::new(tls);
            let res = match version {
                Version::H1 => {
                    let (mut send, conn) =
                        hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
                    tokio::spawn(conn);
                    send.send_request(req).await.map_err(|e| e.to_string())?
                }
                Version::H2 => {
                    let (mut send, conn) =
                        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                            .await
                            .map_err(|e| e.to_string())?;
                    tokio::spawn(conn);
                    send.send_request(req).await.map_err(|e| e.to_string())?
                }
            };
            let status = res.status().as_u16();
            let headers = res
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                .collect();
            let body = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
            Ok((alpn, Response { status, headers, body }))
        };
        tokio::time::timeout(Duration::from_secs(30), work).await.map_err(|_| "timed out".to_owned())?
    })
}

/// A request for `target` on `localhost` with `headers` (an HTTP/2 request names its host in
/// `:authority`, an HTTP/1.1 one in `Host`).
pub(crate) fn build(
    version: Version,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder().method(method);
    b = match version {
        Version::H1 => b.uri(target).header("host", "localhost"),
        Version::H2 => b.uri(format!("https://localhost{target}")).version(http::Version::HTTP_2),
    };
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

/// The DER of the certificate the TLS listener at `addr` presents.
pub(crate) fn presented(addr: SocketAddr, ca: &Ca) -> Result<Vec<u8>, String> {
    let config = Arc::new(client_config(ca, Version::H1));
    let mut conn =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).map_err(|e| e.to_string())?;
    let mut tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).ok_or_else(|| "no certificate".to_owned())
}

/// Exactly `bytes` over TLS with ALPN `http/1.1` (malformed requests no client sends); what
/// came back, read until the server closes or 5 s pass.
pub(crate) fn raw_h1(addr: SocketAddr, ca: &Ca, bytes: &[u8]) -> Vec<u8> {
    let config = Arc::new(client_config(ca, Version::H1));
    let conn = rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    stream.write_all(bytes).unwrap();
    stream.flush().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // one response is enough: stop at the end of its JSON body
                if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"}") {
                    break;
                }
            }
        }
    }
    out
}
