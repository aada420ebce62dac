//! The rustls server configuration SIP over TLS serves with (RFC 3261
//! §26.2.1, RFC 5630): TLS 1.2 and 1.3 only, rustls' safe cipher suites,
//! the serving certificate, and, with a client CA, the request for a
//! client certificate.
//!
//! Built whole from the files each time they change: a connection takes
//! the configuration current when it is accepted and keeps it, so a new
//! certificate reaches new connections while open ones keep theirs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};

use super::certificate::{self, CertificateError, CertificateInfo};
use super::client_auth;

/// The files TLS serves from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub require_client_cert: bool,
}

impl TlsFiles {
    /// Every file, to watch and to compare.
    pub fn paths(&self) -> Vec<&PathBuf> {
        let mut paths = vec![&self.cert, &self.key];
        paths.extend(&self.client_ca);
        paths
    }
}

/// A configuration ready for connections, and what it serves.
#[derive(Debug, Clone)]
pub struct Serving {
    pub config: Arc<ServerConfig>,
    pub certificate: CertificateInfo,
}

/// The crypto every TLS connection uses: rustls' *ring* provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the files and builds the configuration from them.
pub fn build(files: &TlsFiles, now: SystemTime) -> Result<Serving, CertificateError> {
    let provider = provider();
    let serving = certificate::load(&files.cert, &files.key, &provider, now)?;
    let bad_config = |problem: rustls::Error| CertificateError::BadCertificate {
        path: files.cert.clone(),
        problem: problem.to_string(),
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(bad_config)?;
    let builder = match &files.client_ca {
        Some(ca) => builder.with_client_cert_verifier(client_auth::verifier(
            ca,
            files.require_client_cert,
            &provider,
        )?),
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_cert_resolver(Arc::new(OneCertificate(serving.key)));
    Ok(Serving {
        config: Arc::new(config),
        certificate: serving.info,
    })
}

/// The one certificate every client gets, whatever name it asks for: SIP
/// peers often send no SNI, or an address.
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}
