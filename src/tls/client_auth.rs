//! Peers trusted by their certificate: mutual TLS (RFC 5630 §3.2, RFC 5922
//! §7.2 for the names).
//!
//! With a client CA, the server asks every peer for a certificate. One that
//! chains to the CA (checked by rustls' WebPKI verifier: signature, dates,
//! the client-auth usage) makes the peer trusted like an address on the
//! trust list, and, when trust names are set, only if one of its DNS
//! subject alternative names is among them (RFC 5922 §7.1: a SIP peer is
//! named by its DNS SANs; case does not count, wildcards are not honoured).
//! A peer that offers no certificate is refused when one is required, and
//! otherwise served as untrusted; one whose certificate does not verify is
//! always refused.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::certificate::{CertificateError, dns_names, read_chain};

/// Who among the peers with a verified certificate is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustNames {
    /// Lower-cased; empty: every verified peer.
    names: Vec<String>,
}

impl TrustNames {
    pub fn new(names: &[String]) -> TrustNames {
        TrustNames {
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a peer whose chain verified, with `end_entity` first, is
    /// trusted.
    pub fn trusts(&self, end_entity: &CertificateDer<'_>) -> bool {
        if self.names.is_empty() {
            return true;
        }
        let Ok((_, cert)) = X509Certificate::from_der(end_entity) else {
            return false;
        };
        dns_names(&cert)
            .iter()
            .any(|name| self.names.iter().any(|t| t.eq_ignore_ascii_case(name)))
    }
}

/// The verifier asking peers for a certificate chained to the CAs in
/// `ca_path`; a peer without one is refused when `required`.
pub fn verifier(
    ca_path: &Path,
    required: bool,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, CertificateError> {
    let mut roots = RootCertStore::empty();
    for ca in read_chain(ca_path)? {
        roots
            .add(ca)
            .map_err(|e| CertificateError::BadCertificate {
                path: ca_path.to_owned(),
                problem: e.to_string(),
            })?;
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder
        .build()
        .map_err(|e| CertificateError::BadCertificate {
            path: ca_path.to_owned(),
            problem: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn cert_naming(names: &[&str]) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn no_names_trusts_every_verified_peer() {
        assert!(TrustNames::new(&[]).trusts(&cert_naming(&["anything.example"])));
    }

    #[test]
    fn names_match_dns_sans_without_regard_to_case() {
        let names = TrustNames::new(&["Trunk.Carrier.example".to_owned()]);
        assert!(names.trusts(&cert_naming(&["other.example", "trunk.carrier.example"])));
        assert!(!names.trusts(&cert_naming(&["evil.example"])));
        // A wildcard in the certificate does not match a listed name.
        assert!(!names.trusts(&cert_naming(&["*.carrier.example"])));
        assert!(!names.trusts(&CertificateDer::from(vec![0x30, 0x03, 0x01])));
    }
}
