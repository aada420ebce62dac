//! The serving certificate (RFC 5630 §3.1, RFC 5922 §7.1): a PEM chain and
//! its private key, checked before they may serve.
//!
//! A pair is refused, with a message naming the file, when either file
//! cannot be read or holds no certificate or key, when the key is not the
//! certificate's, or when the certificate is expired or not yet valid: a
//! server must never start (or switch) to a certificate peers will refuse.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Why a certificate and key cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {problem}")]
    BadPem { path: PathBuf, problem: String },
    #[error("{path}: no PEM private key in it (-----BEGIN PRIVATE KEY-----)")]
    NoKey { path: PathBuf },
    #[error("{path}: the key cannot be used: {problem}")]
    BadKey { path: PathBuf, problem: String },
    #[error("the key in {key} is not the key of the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{path}: the certificate cannot be read: {problem}")]
    BadCertificate { path: PathBuf, problem: String },
    #[error("{path}: the certificate expired {ago} s ago (not after {not_after})")]
    Expired {
        path: PathBuf,
        ago: u64,
        not_after: String,
    },
    #[error("{path}: the certificate is not valid before {not_before}")]
    NotYetValid { path: PathBuf, not_before: String },
}

/// What the logs and metrics say of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject's distinguished name, as OpenSSL prints it.
    pub subject: String,
    /// The DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// The serial number, hex bytes with colons.
    pub serial: String,
    /// When it stops being valid.
    pub not_after: SystemTime,
    /// `not_after` as written in the certificate (RFC 2822-like).
    pub not_after_text: String,
}

impl CertificateInfo {
    /// Time left before it expires; zero once it has.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.not_after.duration_since(now).unwrap_or_default()
    }

    /// Seconds left before it expires, negative once it has (what the
    /// expiry alert compares with a threshold).
    pub fn seconds_left(&self, now: SystemTime) -> f64 {
        match self.not_after.duration_since(now) {
            Ok(left) => left.as_secs_f64(),
            Err(past) => -past.duration().as_secs_f64(),
        }
    }
}

/// A checked certificate chain and key, ready for rustls.
#[derive(Debug, Clone)]
pub struct ServingCertificate {
    pub key: Arc<CertifiedKey>,
    pub info: CertificateInfo,
}

/// Reads and checks a certificate chain and its key as of `now`.
pub fn load(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<ServingCertificate, CertificateError> {
    let chain = read_chain(cert_path)?;
    let key = read_key(key_path)?;
    let Some(end_entity) = chain.first() else {
        return Err(CertificateError::NoCertificate {
            path: cert_path.to_owned(),
        });
    };
    let info = inspect(end_entity).map_err(|problem| CertificateError::BadCertificate {
        path: cert_path.to_owned(),
        problem,
    })?;
    check_validity(cert_path, end_entity, now)?;
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| CertificateError::BadKey {
                path: key_path.to_owned(),
                problem: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(CertificateError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        // A key type whose public half rustls cannot derive: the
        // handshake itself will tell.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(CertificateError::BadCertificate {
                path: cert_path.to_owned(),
                problem: e.to_string(),
            });
        }
    }
    Ok(ServingCertificate {
        key: Arc::new(certified),
        info,
    })
}

/// Every certificate in a PEM file, in order.
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertificateError> {
    let bytes = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertificateError::BadPem {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(CertificateError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertificateError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => CertificateError::NoKey {
            path: path.to_owned(),
        },
        e => CertificateError::BadPem {
            path: path.to_owned(),
            problem: e.to_string(),
        },
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CertificateError> {
    std::fs::read(path).map_err(|source| CertificateError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Subject, DNS names, serial and expiry of a DER certificate.
pub fn inspect(der: &CertificateDer<'_>) -> Result<CertificateInfo, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    let not_after = UNIX_EPOCH
        + Duration::from_secs(u64::try_from(validity.not_after.timestamp()).unwrap_or(0));
    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        dns_names: dns_names(&cert),
        serial: cert.raw_serial_as_string(),
        not_after,
        not_after_text: validity.not_after.to_string(),
    })
}

/// The DNS subject alternative names of a parsed certificate.
pub(super) fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        })
        .collect()
}

fn check_validity(
    path: &Path,
    der: &CertificateDer<'_>,
    now: SystemTime,
) -> Result<(), CertificateError> {
    let bad = |problem: String| CertificateError::BadCertificate {
        path: path.to_owned(),
        problem,
    };
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
    let validity = cert.validity();
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if now_secs > validity.not_after.timestamp() {
        return Err(CertificateError::Expired {
            path: path.to_owned(),
            ago: now_secs.abs_diff(validity.not_after.timestamp()),
            not_after: validity.not_after.to_string(),
        });
    }
    if now_secs < validity.not_before.timestamp() {
        return Err(CertificateError::NotYetValid {
            path: path.to_owned(),
            not_before: validity.not_before.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn provider() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    struct Pair {
        _dir: tempfile::TempDir,
        cert: PathBuf,
        key: PathBuf,
    }

    fn write_pair(cert_pem: &str, key_pem: &str) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        Pair {
            _dir: dir,
            cert,
            key,
        }
    }

    fn self_signed(names: &[&str], days: (i64, i64)) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = time_now();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn time_now() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }

    #[test]
    fn loads_a_good_pair_and_names_it() {
        let (cert, key) = self_signed(&["sip.example.com", "alt.example.com"], (-1, 30));
        let pair = write_pair(&cert, &key);
        let serving = load(&pair.cert, &pair.key, &provider(), SystemTime::now()).unwrap();
        assert_eq!(
            serving.info.dns_names,
            vec!["sip.example.com", "alt.example.com"]
        );
        let left = serving.info.remaining(SystemTime::now()).as_secs();
        assert!((29 * 86_400..=30 * 86_400).contains(&left), "{left}");
        assert!(!serving.info.serial.is_empty());
    }

    #[test]
    fn refuses_a_key_of_another_certificate() {
        let (cert, _) = self_signed(&["a.example"], (-1, 30));
        let (_, other_key) = self_signed(&["b.example"], (-1, 30));
        let pair = write_pair(&cert, &other_key);
        let err = load(&pair.cert, &pair.key, &provider(), SystemTime::now()).unwrap_err();
        assert!(matches!(err, CertificateError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn refuses_expired_and_future_certificates() {
        let (cert, key) = self_signed(&["a.example"], (-30, -1));
        let pair = write_pair(&cert, &key);
        let err = load(&pair.cert, &pair.key, &provider(), SystemTime::now()).unwrap_err();
        assert!(matches!(err, CertificateError::Expired { .. }), "{err}");

        let (cert, key) = self_signed(&["a.example"], (2, 30));
        let pair = write_pair(&cert, &key);
        let err = load(&pair.cert, &pair.key, &provider(), SystemTime::now()).unwrap_err();
        assert!(matches!(err, CertificateError::NotYetValid { .. }), "{err}");
    }

    #[test]
    fn refuses_missing_empty_and_garbled_files() {
        let (cert, key) = self_signed(&["a.example"], (-1, 30));
        let pair = write_pair("", &key);
        let err = load(&pair.cert, &pair.key, &provider(), SystemTime::now()).unwrap_err();
        assert!(
            matches!(err, CertificateError::NoCertificate { .. }),
            "{err}"
        );

        let pair = write_pair(&cert, "not a key\n");
        let err = load(&pair.cert, &pair.key, &provider(), SystemTime::now()).unwrap_err();
        assert!(matches!(err, CertificateError::NoKey { .. }), "{err}");

        let truncated = &cert[..cert.len() / 2];
        let pair = write_pair(truncated, &key);
        let err = load(&pair.cert, &pair.key, &provider(), SystemTime::now()).unwrap_err();
        assert!(
            matches!(
                err,
                CertificateError::BadPem { .. } | CertificateError::NoCertificate { .. }
            ),
            "{err}"
        );

        let err = load(
            Path::new("/nonexistent/cert.pem"),
            &pair.key,
            &provider(),
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(matches!(err, CertificateError::Read { .. }), "{err}");
    }
}
