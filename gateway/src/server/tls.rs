//! TLS both ways, on rustls (ring; no OpenSSL): the listener's certificate (PEM files, swapped
//! in when they change on disk, a refused pair leaving the current one serving; ALPN `h2` and
//! `http/1.1`), and the client side the upstream and document fetches use (the platform's
//! roots plus an optional CA file, SNI and verification always on, an optional client
//! certificate for mTLS to the upstream).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use super::config::{ListenerTls, UpstreamTls};

/// A certificate, key or CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TlsError {
    field: &'static str,
    message: String,
}

impl TlsError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(field: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::new(field, format!("{}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::new(field, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError::new(field, format!("{}: no PEM certificate in it", path.display())));
    }
    Ok(certs)
}

fn private_key(field: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::new(field, format!("{}: {e}", path.display())))
}

/// The certificate chain and key of `cert_file` and `key_file`, checked to belong together.
fn certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = certificates("tls.cert_file", cert_file)?;
    let key = private_key("tls.key_file", key_file)?;
    let key = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| TlsError::new("tls.key_file", format!("{}: {e}", key_file.display())))?;
    Ok(key)
}

/// The listener's certificate, swappable while connections are accepted.
#[derive(Debug)]
struct Resolver {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The TLS side of a listener: the acceptor and the certificate it presents.
#[derive(Clone)]
pub(crate) struct ListenerTlsState {
    acceptor: tokio_rustls::TlsAcceptor,
    resolver: Arc<Resolver>,
    files: (PathBuf, PathBuf),
    poll_interval: Duration,
}

impl std::fmt::Debug for ListenerTlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerTlsState").field("files", &self.files).finish_non_exhaustive()
    }
}

/// The ALPN protocol id of HTTP/2.
pub(crate) const ALPN_H2: &[u8] = b"h2";

impl ListenerTlsState {
    /// Load the certificate and key (refused at start when they cannot be used).
    pub(crate) fn new(cfg: &ListenerTls) -> Result<Self, TlsError> {
        let key = certified_key(&cfg.cert_file, &cfg.key_file)?;
        let resolver = Arc::new(Resolver { current: ArcSwap::from_pointee(key) });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new("tls", e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![ALPN_H2.to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            resolver,
            files: (cfg.cert_file.clone(), cfg.key_file.clone()),
            poll_interval: cfg.poll_interval,
        })
    }

    pub(crate) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Load the files again; a pair that cannot be used is refused and the current one stays.
    fn reload(&self) -> Result<(), TlsError> {
        let key = certified_key(&self.files.0, &self.files.1)?;
        self.resolver.current.store(Arc::new(key));
        Ok(())
    }

    /// Watch the certificate and key files (mtime and size) until `stop`; swap on change, and
    /// on SIGHUP.
    pub(crate) async fn watch(self, mut stop: watch::Receiver<bool>) {
        let stamp = |p: &Path| -> Option<(SystemTime, u64)> {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        };
        let stamps = || (stamp(&self.files.0), stamp(&self.files.1));
        let mut seen = stamps();
        let mut ticker = super::reload::poll_ticker(self.poll_interval);
        let mut hangups = super::reload::Hangups::new();
        loop {
            let forced = tokio::select! {
                _ = stop.changed() => return,
                _ = ticker.tick() => false,
                _ = hangups.recv() => true,
            };
            let now = stamps();
            if now == seen && !forced {
                continue;
            }
            seen = now;
            match self.reload() {
                Ok(()) => tracing::info!(cert = %self.files.0.display(), "listener certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "listener certificate refused; the previous one keeps serving"),
            }
        }
    }
}

/// The client configuration for the upstream (`with_client_cert`) and for document fetches:
/// the platform's roots (unless turned off) plus the CA file, SNI and verification on.
pub(crate) fn client_config(cfg: &UpstreamTls, with_client_cert: bool) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    if cfg.platform_roots {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "a platform root certificate could not be read");
        }
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, "platform root certificates");
    }
    if let Some(ca) = &cfg.ca_file {
        for cert in certificates("upstream_tls.ca_file", ca)? {
            roots.add(cert).map_err(|e| TlsError::new("upstream_tls.ca_file", format!("{}: {e}", ca.display())))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new("upstream_tls", e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&cfg.client_cert, with_client_cert) {
        (Some((cert, key)), true) => builder
            .with_client_auth_cert(
                certificates("upstream_tls.client_cert_file", cert)?,
                private_key("upstream_tls.client_key_file", key)?,
            )
            .map_err(|e| TlsError::new("upstream_tls.client_key_file", e.to_string()))?,
        _ => builder.with_no_client_auth(),
    };
    // ALPN (`http/1.1`) is set by hyper-rustls's connector (`enable_http1`).
    Ok(config)
}

/// Whether `e` (or an error it wraps) is a certificate that was not accepted: the upstream's by
/// the gateway, or the gateway's client certificate by the upstream.
pub(crate) fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<rustls::Error>()
            && matches!(
                r,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::UnsupportedNameType
                    | rustls::Error::AlertReceived(
                        rustls::AlertDescription::BadCertificate
                            | rustls::AlertDescription::CertificateRequired
                            | rustls::AlertDescription::UnknownCA
                            | rustls::AlertDescription::CertificateUnknown
                    )
            )
        {
            return true;
        }
        // `io::Error::source` skips the error it wraps: step into it instead.
        source = match s.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    false
}
