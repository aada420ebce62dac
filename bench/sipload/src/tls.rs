//! SIP over TLS (RFC 3261 §26.3.1, `SIP/2.0/TLS` in the Via): a thin layer over
//! the TCP path. A [`TlsStream`] is a connected [`TcpStream`] and a rustls
//! client connection; it is a [`Wire`], so `tcp::run` drives it exactly as it
//! drives a plain connection (same framing, batching, `poll`).
//!
//! The handshake is done at connect time, blocking with a deadline, so a
//! refused certificate is reported before any load (as a refused connection
//! is). After it the socket is nonblocking and `Read`/`Write` move records
//! between rustls' buffers and the socket as far as it takes them:
//! `WouldBlock` means "wait for `poll`", as on TCP.
//!
//! The server certificate is checked against `--tls-ca`, or not at all with
//! `--tls-insecure` (benchmarks against a throwaway certificate: the signature
//! over the handshake is still verified, so the client does the same work as
//! a verifying one, only the chain is not).

use crate::tcp::Wire;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, ClientConnection, Resumption};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Longest a connect plus handshake may take (a server that accepts and then
/// says nothing must not hang the run).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a TLS client could not be set up.
#[derive(Debug)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    Ca(PathBuf, String),
    /// `--tls-server-name` is not a DNS name or an IP address.
    ServerName(String),
    /// rustls refused the configuration.
    Config(rustls::Error),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Ca(p, e) => write!(f, "--tls-ca {}: {e}", p.display()),
            TlsError::ServerName(n) => {
                write!(f, "--tls-server-name {n:?} is not a DNS name or IP address")
            }
            TlsError::Config(e) => write!(f, "TLS client configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// How the server's certificate is checked.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Against the certificates in this PEM file.
    Ca(PathBuf),
    /// Not at all (benchmarks only).
    Insecure,
}

/// A client configuration and the name it expects the server to prove.
#[derive(Clone, Debug)]
pub struct Client {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl Client {
    /// `resume`: whether session tickets may shorten later handshakes. The load
    /// run opens its connections once, so it does not matter there;
    /// `handshakes` turns it off to measure full handshakes only.
    pub fn new(trust: &Trust, server_name: &str, resume: bool) -> Result<Client, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let mut config = match trust {
            Trust::Ca(path) => builder
                .with_root_certificates(roots(path)?)
                .with_no_client_auth(),
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth(),
        };
        if !resume {
            config.resumption = Resumption::disabled();
        }
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
        Ok(Client {
            config: Arc::new(config),
            name,
        })
    }

    /// Connects to `target` and completes the handshake (blocking, within
    /// [`HANDSHAKE_TIMEOUT`]); Nagle off, as on TCP.
    pub fn connect(&self, target: SocketAddr) -> io::Result<TlsStream> {
        let mut tcp = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let mut conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(io::Error::other)?;
        while conn.is_handshaking() {
            // complete_io reports a TLS failure (a refused certificate, a
            // protocol alert) as InvalidData with rustls' words for it.
            conn.complete_io(&mut tcp).map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
                ),
                _ => io::Error::new(e.kind(), format!("TLS handshake: {e}")),
            })?;
        }
        tcp.set_read_timeout(None)?;
        tcp.set_write_timeout(None)?;
        Ok(TlsStream {
            tcp,
            conn,
            full: false,
        })
    }
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let bad = |e: String| TlsError::Ca(path.to_path_buf(), e);
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(roots)
}

/// `--tls-insecure`: any certificate chain is accepted, but the handshake
/// signature is verified with the provider's algorithms, so the client's CPU
/// per handshake is what a verifying client's is, minus the chain check.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// One TLS connection over a (after the handshake, nonblocking) TCP socket.
pub struct TlsStream {
    tcp: TcpStream,
    conn: ClientConnection,
    /// The last read stopped because the caller's buffer was full: rustls
    /// may still hold plaintext that no `poll` will announce.
    full: bool,
}

impl TlsStream {
    /// Sends close_notify, as far as the socket takes it now: the peer then
    /// sees a clean end rather than a truncation.
    pub fn close(mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
    }
}

impl Read for TlsStream {
    /// Decrypted bytes: whatever rustls holds, then records read from the
    /// socket until `buf` is full or the socket is empty (rustls keeps at most
    /// 16 KiB of plaintext, so it is emptied into `buf` between reads).
    /// `Ok(0)`: the server closed (close_notify); a close without it is an
    /// `UnexpectedEof` error.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.full = false;
        let mut got = 0;
        loop {
            match self.conn.reader().read(&mut buf[got..]) {
                Ok(0) => return Ok(got),
                Ok(n) => {
                    got += n;
                    if got == buf.len() {
                        self.full = true;
                        return Ok(got);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Hand over what came before the end; the next read reports it.
                Err(_) if got > 0 => return Ok(got),
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(&mut self.tcp) {
                // End of stream: rustls now knows; its reader says how it ended.
                Ok(_) => {}
                Err(e) if got > 0 && e.kind() == io::ErrorKind::WouldBlock => return Ok(got),
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Tell the server why (the alert rustls queued), then give up.
                let _ = self.conn.write_tls(&mut self.tcp);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}

impl Write for TlsStream {
    /// Encrypts as much of `buf` as rustls buffers (its limit bounds memory)
    /// and sends records as far as the socket takes them; what the socket
    /// refuses waits in rustls for [`Write::flush`] (the caller polls for
    /// POLLOUT while [`Wire::backlog`] says so).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_records()?;
        let n = self.conn.writer().write(buf)?;
        self.send_records()?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Sends every queued record; `WouldBlock` when the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

impl TlsStream {
    /// [`Write::flush`], with a full socket not an error.
    fn send_records(&mut self) -> io::Result<()> {
        match self.flush() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r,
        }
    }
}

impl Wire for TlsStream {
    const VIA: &'static str = "TLS";

    fn socket(&self) -> &TcpStream {
        &self.tcp
    }

    fn backlog(&self) -> bool {
        self.conn.wants_write()
    }

    fn pending(&self) -> bool {
        self.full
    }
}
