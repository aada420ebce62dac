//! SIP over TLS toward a next hop (RFC 3261 §26.2.1, RFC 5922 §7.2): the
//! client side proxy mode connects with. The next hop's certificate must
//! chain to the configured CAs (the system's bundle when none are named)
//! and name the host the next hop's URI gives; a client certificate is
//! presented when one is configured (mutual TLS with a carrier).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

use super::certificate::{self, CertificateError, read_chain};
use super::server_config::provider;

/// Debian's bundle of the system's trusted CAs (package ca-certificates).
pub const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What the client side is built from.
#[derive(Debug, Clone, Default)]
pub struct ClientFiles {
    /// CA certificates (PEM) the next hop's must chain to; the system's
    /// bundle when `None`.
    pub ca: Option<PathBuf>,
    /// A certificate chain and its key to present, both or neither.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Presents the one configured certificate whatever the server asks.
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for OneCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Reads and checks the files, and builds the client configuration.
pub fn build(files: &ClientFiles, now: SystemTime) -> Result<Arc<ClientConfig>, CertificateError> {
    let provider = provider();
    let ca_path = files.ca.as_deref().unwrap_or(Path::new(SYSTEM_CAS));
    let mut roots = RootCertStore::empty();
    for ca in read_chain(ca_path)? {
        // A bundle may hold a certificate webpki cannot use: skipped, as
        // long as one is left.
        let _ = roots.add(ca);
    }
    if roots.is_empty() {
        return Err(CertificateError::NoCertificate {
            path: ca_path.to_owned(),
        });
    }
    let bad = |path: &Path, problem: rustls::Error| CertificateError::BadCertificate {
        path: path.to_owned(),
        problem: problem.to_string(),
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(ca_path, e))?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let serving = certificate::load(cert, key, &provider, now)?;
            builder.with_client_cert_resolver(Arc::new(OneCertificate(serving.key)))
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    #[test]
    fn builds_from_a_ca_with_and_without_a_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["client.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let now = SystemTime::now();
        let ca_only = ClientFiles {
            ca: Some(cert_path.clone()),
            ..ClientFiles::default()
        };
        assert!(
            !build(&ca_only, now)
                .unwrap()
                .client_auth_cert_resolver
                .has_certs()
        );
        let mutual = ClientFiles {
            cert: Some(cert_path.clone()),
            key: Some(key_path),
            ..ca_only.clone()
        };
        assert!(
            build(&mutual, now)
                .unwrap()
                .client_auth_cert_resolver
                .has_certs()
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let no_ca = ClientFiles {
            ca: Some(empty),
            ..ClientFiles::default()
        };
        assert!(build(&no_ca, now).is_err());
    }
}
