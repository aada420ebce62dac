//! TLS for the integration tests: a small PKI made with rcgen (a CA, the
//! server's certificate, clients' certificates), written as PEM files the
//! way an operator would have them, and a real TLS client (rustls over a
//! blocking socket) that speaks SIP and says which certificate it saw.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::ANSWER_TIMEOUT;

/// A certificate authority that signs servers' and clients' certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// The serial number as x509-parser and the server print it.
    pub serial: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("a CA key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("a CA certificate"),
        }
    }

    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for these names, valid from yesterday for
    /// `days` days (negative: expired).
    pub fn server(&self, names: &[&str], days: i64) -> Issued {
        self.issue(names, days, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate naming these DNS names.
    pub fn client(&self, names: &[&str]) -> Issued {
        self.issue(names, 30, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, names: &[&str], days: i64, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, *first);
        }
        let now = time::OffsetDateTime::now_utc();
        let start = now - time::Duration::days(1);
        params.not_before = if days < 0 {
            now + time::Duration::days(days - 30)
        } else {
            start
        };
        params.not_after = now + time::Duration::days(days);
        params.extended_key_usages = vec![usage];
        let serial: [u8; 8] = rand_bytes();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: serial_text(&serial),
        }
    }
}

/// Eight bytes from the clock and a counter: distinct serials per test run.
fn rand_bytes() -> [u8; 8] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut bytes = (nanos ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed)).to_be_bytes();
    // Positive and without a leading zero byte, so DER keeps all eight.
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    bytes
}

fn serial_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Writes `contents` to `path` the way deployment tools replace files:
/// a temporary file in the same directory, renamed over the old one.
pub fn replace_file(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, contents).expect("write a temporary file");
    std::fs::rename(&tmp, path).expect("rename over the file");
}

/// A server's certificate and key files and the CA that clients trust.
pub struct ServerFiles {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_file: PathBuf,
    pub issued: Issued,
}

impl ServerFiles {
    /// A CA, and a server certificate from it for `localhost` and
    /// 127.0.0.1, written to a temporary directory.
    pub fn new() -> ServerFiles {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = Ca::new("switchboard test CA");
        let issued = ca.server(&["localhost", "127.0.0.1"], 30);
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&cert, &issued.cert_pem).expect("write the certificate");
        std::fs::write(&key, &issued.key_pem).expect("write the key");
        std::fs::write(&ca_file, ca.cert_pem()).expect("write the CA");
        ServerFiles {
            dir,
            ca,
            cert,
            key,
            ca_file,
            issued,
        }
    }

    /// Writes an issued client certificate and key beside the others;
    /// their paths.
    pub fn write_client(&self, name: &str, issued: &Issued) -> (PathBuf, PathBuf) {
        let cert = self.dir.path().join(format!("{name}.crt"));
        let key = self.dir.path().join(format!("{name}.key"));
        std::fs::write(&cert, &issued.cert_pem).expect("write");
        std::fs::write(&key, &issued.key_pem).expect("write");
        (cert, key)
    }

    /// The arguments that serve TLS on 127.0.0.1 port 0 with these files.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--tls-listen".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

/// A SIP client over TLS.
pub struct TlsClient {
    pub stream: StreamOwned<ClientConnection, TcpStream>,
}

impl TlsClient {
    /// Connects and completes the handshake, trusting `ca_pem`, showing
    /// `client` (certificate and key PEM) when asked for one.
    pub fn connect(
        to: SocketAddr,
        ca_pem: &str,
        client: Option<&Issued>,
    ) -> Result<TlsClient, String> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("a CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = match client {
            Some(issued) => {
                let chain: Vec<_> = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .expect("client PEM");
                let key =
                    PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
            None => builder.with_no_client_auth(),
        };
        let name = ServerName::try_from("localhost").expect("a name");
        let connection =
            ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        let socket = TcpStream::connect(to).map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .expect("timeout");
        let mut stream = StreamOwned::new(connection, socket);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(TlsClient { stream })
    }

    /// The serial of the certificate the server showed.
    pub fn server_serial(&self) -> String {
        let chain = self
            .stream
            .conn
            .peer_certificates()
            .expect("a server chain");
        let (_, cert) =
            x509_parser::parse_x509_certificate(&chain[0]).expect("a readable certificate");
        cert.raw_serial_as_string()
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream.write_all(bytes).map_err(|e| e.to_string())?;
        self.stream.flush().map_err(|e| e.to_string())
    }

    /// Reads until `count` complete responses arrived, or fails with what
    /// ended the connection.
    pub fn read_responses(&mut self, count: usize) -> Result<Vec<String>, String> {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let responses = super::complete_responses(&String::from_utf8_lossy(&data));
            if responses.len() >= count {
                return Ok(responses);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(format!("closed after {} responses", responses.len())),
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Sends one request and reads its answer.
    pub fn exchange(&mut self, request: &[u8]) -> Result<String, String> {
        self.send(request)?;
        Ok(self.read_responses(1)?.remove(0))
    }
}

/// An INVITE over TLS: `Via: SIP/2.0/TLS`, a `sips:` Request-URI.
pub fn tls_invite(dialed: &str, caller: &str, call_id: &str, port: u16) -> Vec<u8> {
    super::request(
        &[
            &format!("INVITE sips:{dialed}@127.0.0.1 SIP/2.0"),
            &format!("Via: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bK-{call_id};rport"),
            "Max-Forwards: 70",
            &format!("From: <sips:{caller}@127.0.0.1>;tag=from-1"),
            &format!("To: <sips:{dialed}@127.0.0.1>"),
            &format!("Call-ID: {call_id}"),
            "CSeq: 1 INVITE",
            "Content-Length: 0",
            "",
        ],
        port,
    )
}

/// How long a TLS test waits for a reload to show.
pub const RELOAD_WAIT: Duration = Duration::from_secs(15);
