//! Proxy mode's legs over TLS (RFC 3261 §26.2.1; docs/sip.md, "Over
//! what"): the real binary relays a caller's UDP INVITE to a next hop that
//! speaks TLS and asks for a client certificate (a carrier's SBC with
//! mutual TLS), played here by rustls on a blocking socket. The next hop's
//! certificate must chain to `proxy.tls_ca` and name its host; switchboard
//! shows `proxy.tls_client_cert`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::tls::{Ca, Issued};
use common::{Server, example_data};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

const WAIT: Duration = Duration::from_secs(10);

/// A TLS next hop that requires a client certificate from `client_ca`.
fn sbc_config(server: &Issued, client_ca: &Ca) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(client_ca.cert_pem().as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("a CA");
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("a verifier");
    let chain: Vec<_> = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("server PEM");
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).expect("server key");
    Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("a server config"),
    )
}

/// Reads one SIP message (headers and a Content-Length body) off `stream`.
fn read_message(stream: &mut impl Read, buffered: &mut Vec<u8>) -> Option<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffered[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    let name = name.trim().to_ascii_lowercase();
                    (name == "content-length" || name == "l").then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + length;
            if buffered.len() >= total {
                let message = String::from_utf8_lossy(&buffered[..total]).into_owned();
                buffered.drain(..total);
                return Some(message);
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buffered.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return None,
        }
    }
}

/// A response to `request`: its Vias, From, To (with a tag), Call-ID, CSeq.
fn answer(request: &str, status: &str) -> String {
    common::response_to(
        request,
        status,
        Some("sbc"),
        "Contact: <sip:phone@127.0.0.1:5999>\r\n",
    )
}

/// What the SBC saw: the INVITE, whether the client showed a certificate,
/// and the ACK.
struct Seen {
    invite: String,
    client_certificate: bool,
    ack: Option<String>,
}

/// Serves one connection: answers the INVITE 180 then 200, waits for the
/// ACK. `None` when the handshake failed.
fn sbc(listener: TcpListener, config: Arc<ServerConfig>) -> thread::JoinHandle<Option<Seen>> {
    thread::spawn(move || {
        let (socket, _) = listener.accept().ok()?;
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .ok()?;
        let connection = ServerConnection::new(config).ok()?;
        let mut tls = StreamOwned::new(connection, socket);
        let mut buffered = Vec::new();
        let invite = read_message(&mut tls, &mut buffered)?;
        let client_certificate = tls.conn.peer_certificates().is_some_and(|c| !c.is_empty());
        for status in ["180 Ringing", "200 OK"] {
            tls.write_all(answer(&invite, status).as_bytes()).ok()?;
        }
        tls.flush().ok()?;
        let ack = read_message(&mut tls, &mut buffered);
        Some(Seen {
            invite,
            client_certificate,
            ack,
        })
    })
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.display().to_string()
}

/// The server relaying to `sbc` over TLS, trusting `trusted` and showing
/// `client`.
fn start(dir: &Path, sbc: SocketAddr, trusted: &Ca, client: &Issued) -> Server {
    let next_hop = format!("sip:127.0.0.1:{};transport=tls", sbc.port());
    start_to(dir, &next_hop, trusted, client)
}

/// As `start`, with the next hop's URI given.
fn start_to(dir: &Path, next_hop: &str, trusted: &Ca, client: &Issued) -> Server {
    let settings = format!(
        "proxy:\n  tls_ca: {}\n  tls_client_cert: {}\n  tls_client_key: {}\n",
        write(dir, "ca.pem", &trusted.cert_pem()),
        write(dir, "client.pem", &client.cert_pem),
        write(dir, "client.key", &client.key_pem),
    );
    Server::start_with(&[
        "--routing",
        &example_data(),
        "--config",
        &write(dir, "switchboard.yaml", &settings),
        "--mode",
        "proxy",
        "--next-hop",
        next_hop,
        "--contact-template",
        "sip:{number}@carrier.example;user=phone",
    ])
}

fn invite(caller: &UdpSocket, call_id: &str) -> String {
    let port = caller.local_addr().expect("address").port();
    format!(
        "INVITE sip:+18005550100@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+12125550199@127.0.0.1>;tag=caller\r\n\
         To: <sip:+18005550100@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+12125550199@127.0.0.1:{port}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The first message to `caller` whose start line starts with `start`.
fn expect(caller: &UdpSocket, start: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let mut buf = vec![0u8; 65_535];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(n) = caller.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(start) {
                return text;
            }
            seen.push(text.lines().next().unwrap_or_default().to_owned());
        }
    }
    panic!("no {start:?}; saw {seen:?}");
}

fn caller() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    socket
}

/// A call through a server whose next hop is the mTLS SBC, named by
/// `next_hop` (given the SBC's address): the caller's 200, then its ACK;
/// what the SBC saw. Our Via on the INVITE says `TLS`.
fn call_through(next_hop: impl Fn(SocketAddr) -> String, call_id: &str) -> Seen {
    let dir = tempfile::tempdir().expect("a directory");
    let (sbc_ca, our_ca) = (Ca::new("carrier CA"), Ca::new("our CA"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let at = listener.local_addr().expect("address");
    let phone = sbc(
        listener,
        sbc_config(&sbc_ca.server(&["127.0.0.1"], 30), &our_ca),
    );
    let server = start_to(
        dir.path(),
        &next_hop(at),
        &sbc_ca,
        &our_ca.client(&["switchboard.example"]),
    );
    let caller = caller();
    caller
        .send_to(invite(&caller, call_id).as_bytes(), server.udp)
        .expect("send");
    let ok = expect(&caller, "SIP/2.0 200");
    assert!(ok.contains("tag=sbc"), "{ok}");
    let port = caller.local_addr().expect("address").port();
    let ack = format!(
        "ACK sip:phone@127.0.0.1:5999 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-ack;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+12125550199@127.0.0.1>;tag=caller\r\n\
         To: <sip:+18005550100@127.0.0.1>;tag=sbc\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n"
    );
    caller.send_to(ack.as_bytes(), server.udp).expect("send");
    let seen = phone
        .join()
        .expect("the SBC thread")
        .expect("a TLS session");
    assert!(
        seen.invite
            .contains(&format!("Via: SIP/2.0/TLS {};branch=z9hG4bK", server.udp)),
        "{}",
        seen.invite
    );
    seen
}

/// The call reaches the SBC over mutual TLS, our Via says TLS, the
/// answers come back on the connection and go up to the caller, and the
/// caller's ACK goes down the same connection.
#[test]
fn a_call_is_relayed_to_a_next_hop_over_mutual_tls() {
    let seen = call_through(
        |at| format!("sip:127.0.0.1:{};transport=tls", at.port()),
        "tls-1",
    );
    assert!(
        seen.client_certificate,
        "switchboard showed its certificate"
    );
    let ack = seen.ack.expect("the ACK over the same connection");
    assert!(ack.starts_with("ACK sip:phone@127.0.0.1:5999 "), "{ack}");
}

/// A `sips:` next hop (RFC 3261 §26.2.2) is reached over TLS without a
/// transport parameter, its certificate verified as with `transport=tls`.
#[test]
fn a_sips_next_hop_is_reached_over_tls() {
    call_through(|at| format!("sips:127.0.0.1:{}", at.port()), "sips-1");
}

/// A next hop whose certificate does not chain to `proxy.tls_ca`: the
/// handshake fails, the leg fails at once as a transport error, and the
/// caller gets 500 (its only leg's local 503, §16.9, §16.7 step 6).
#[test]
fn a_next_hop_with_an_untrusted_certificate_is_not_called() {
    let dir = tempfile::tempdir().expect("a directory");
    let (sbc_ca, our_ca, other) = (Ca::new("carrier CA"), Ca::new("our CA"), Ca::new("other"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let at = listener.local_addr().expect("address");
    let phone = sbc(
        listener,
        sbc_config(&sbc_ca.server(&["127.0.0.1"], 30), &our_ca),
    );
    // Trusting another CA than the one that signed the SBC's certificate.
    let server = start(
        dir.path(),
        at,
        &other,
        &our_ca.client(&["switchboard.example"]),
    );
    let caller = caller();
    caller
        .send_to(invite(&caller, "tls-untrusted").as_bytes(), server.udp)
        .expect("send");
    let refused = expect(&caller, "SIP/2.0 5");
    assert!(refused.starts_with("SIP/2.0 500 "), "{refused}");
    assert!(
        phone.join().expect("the SBC thread").is_none(),
        "no session"
    );
}
