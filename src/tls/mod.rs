//! SIP over TLS, the certificate side (RFC 3261 §26.2, RFC 5630, RFC 5922;
//! docs/security.md, "TLS"): the serving certificate checked before it
//! serves, peers trusted by their client certificate, and certificates
//! that reload from their files. Nothing here touches a socket: the
//! listener in `server::tls_accept` takes the configuration from here.

pub mod certificate;
pub mod client_auth;
pub mod client_config;
pub mod reloading;
pub mod server_config;

pub use certificate::{CertificateError, CertificateInfo};
pub use client_auth::TrustNames;
pub use reloading::{TlsHandle, TlsReloadOptions, TlsReloader};
pub use server_config::{Serving, TlsFiles};
