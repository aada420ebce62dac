//! SIP over TLS against the real binary (docs/security.md, "TLS"):
//! `openssl s_client` and a rustls client send INVITEs over TLS and get
//! their 302s; mutual TLS trusts a peer by its certificate (and its name);
//! certificates rotate under a running server without a failed call; a
//! bad pair changes nothing but the log and the failure counter; silent
//! and slow handshakes are cut at the deadline; the connection caps hold.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::tls::{RELOAD_WAIT, ServerFiles, TlsClient, replace_file, tls_invite};
use common::{Server, example_data, header, http_get, metric_value, require, status};

/// Settings in which loopback is not on the trust list and untrusted
/// peers get a 403: what a peer's certificate changes is then visible.
fn untrusted_loopback_settings(dir: &std::path::Path, extra: &str) -> String {
    let path = dir.join("switchboard.yaml");
    std::fs::write(
        &path,
        format!("trust: [192.0.2.0/24]\nuntrusted: reject\n{extra}"),
    )
    .expect("write settings");
    path.display().to_string()
}

fn start(files: &ServerFiles, extra: &[&str]) -> Server {
    let mut args: Vec<String> = vec!["--routing".into(), example_data()];
    args.extend(files.args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(&args)
}

const RELOADS_OK: &str = "switchboard_tls_certificate_reloads_total{result=\"ok\"}";
const RELOADS_FAILED: &str = "switchboard_tls_certificate_reloads_total{result=\"failed\"}";

/// One sample of a fresh `/metrics` scrape; 0 when it is not exported.
fn sample(admin: SocketAddr, name: &str) -> f64 {
    metric_value(&http_get(admin, "/metrics").1, name).unwrap_or(0.0)
}

/// Polls `done` every 100 ms; fails with `never` after [`RELOAD_WAIT`].
fn wait_until(never: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + RELOAD_WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{never}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tls_addr(server: &Server) -> SocketAddr {
    server.tls.expect("a TLS listener")
}

/// One INVITE over a new TLS connection: the answer's status.
fn call(server: &Server, files: &ServerFiles, call_id: &str) -> Result<u16, String> {
    let mut client = TlsClient::connect(tls_addr(server), &files.ca.cert_pem(), None)?;
    let port = client
        .stream
        .sock
        .local_addr()
        .map_err(|e| e.to_string())?
        .port();
    let answer = client.exchange(&tls_invite("+18005550100", "+16505550123", call_id, port))?;
    Ok(status(&answer))
}

/// `openssl s_client` sends `request` over TLS; what came back before the
/// first complete response (or the deadline).
fn s_client(addr: SocketAddr, ca: &std::path::Path, extra: &[&str], request: &[u8]) -> String {
    require("openssl", "openssl");
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(ca)
        .args(["-servername", "localhost"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(request).expect("write the request");
    stdin.flush().expect("flush");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut text = String::new();
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            text.push_str(&line);
            line.clear();
            if text.contains("\r\n\r\n") {
                break;
            }
        }
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    text
}

#[test]
fn openssl_s_client_invite_over_tls_gets_a_302_naming_tls() {
    let files = ServerFiles::new();
    let server = start(
        &files,
        &[
            "--contact-template",
            "sip:{number}@{source_host};transport={transport}",
        ],
    );
    let request = tls_invite("+18005550100", "+16505550123", "s-client-1", 5061);
    let answer = s_client(tls_addr(&server), &files.ca_file, &[], &request);
    assert_eq!(status(&answer), 302, "{answer}");
    assert_eq!(
        header(&answer, "Contact"),
        Some("<sip:+14155550101@127.0.0.1;transport=tls>")
    );
    assert!(
        header(&answer, "Via").is_some_and(|v| v.starts_with("SIP/2.0/TLS 127.0.0.1:5061")),
        "{answer}"
    );
    // The same template over UDP says udp: the placeholder follows the
    // transport the request came on.
    let udp = common::UdpClient::new();
    let answer = udp.exchange(
        server.udp,
        &common::invite("+18005550100", "+16505550123", "udp-1", udp.port()),
    );
    assert_eq!(
        header(&answer, "Contact"),
        Some("<sip:+14155550101@127.0.0.1;transport=udp>")
    );
}

#[test]
fn answers_go_back_on_the_connection_batched_and_pipelined() {
    let files = ServerFiles::new();
    let server = start(&files, &["--admin", "127.0.0.1:0"]);
    let mut client =
        TlsClient::connect(tls_addr(&server), &files.ca.cert_pem(), None).expect("handshake");
    let port = client.stream.sock.local_addr().expect("bound").port();
    let mut burst = Vec::new();
    for i in 0..20 {
        burst.extend(tls_invite(
            "+18005550100",
            "+16505550123",
            &format!("pipe-{i}"),
            port,
        ));
    }
    client.send(&burst).expect("send");
    let answers = client.read_responses(20).expect("twenty answers");
    assert!(answers.iter().all(|a| status(a) == 302), "{answers:?}");
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(
            header(answer, "Call-ID"),
            Some(format!("pipe-{i}").as_str())
        );
    }
    let (_, scrape) = http_get(server.admin.expect("admin"), "/metrics");
    assert_eq!(
        metric_value(&scrape, "switchboard_tls_connections"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&scrape, "switchboard_tls_handshakes_total{result=\"ok\"}"),
        Some(1.0)
    );
    let expiry = scrape
        .lines()
        .find(|l| l.starts_with("switchboard_tls_certificate_expiry_seconds{"))
        .expect("the expiry gauge");
    assert!(expiry.contains(&files.issued.serial), "{expiry}");
    let seconds: f64 = expiry.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (29.0 * 86_400.0..=30.0 * 86_400.0).contains(&seconds),
        "{seconds}"
    );
}

#[test]
fn start_logs_the_certificate_and_refuses_a_bad_pair() {
    let files = ServerFiles::new();
    let log = files.dir.path().join("server.log");
    let mut args: Vec<String> = vec!["--routing".into(), example_data()];
    args.extend(files.args());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_logging(&refs, &log);
    drop(server);
    let text = std::fs::read_to_string(&log).expect("the log");
    let line = text
        .lines()
        .find(|l| l.contains("TLS certificate loaded"))
        .unwrap_or_else(|| panic!("no certificate line: {text}"));
    for needle in [
        "CN=localhost",
        "localhost",
        &files.issued.serial,
        "days_left",
        "29",
    ] {
        assert!(line.contains(needle), "{needle} missing: {line}");
    }

    // A key that is not the certificate's: the server does not start.
    let other = files.ca.server(&["localhost"], 30);
    std::fs::write(&files.key, &other.key_pem).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .args(&args[..2])
        .args(["--listen", "127.0.0.1:0"])
        .args(&args[2..])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not the key of the certificate"),
        "{stderr}"
    );
}

#[test]
fn mutual_tls_trusts_a_peer_by_its_certificate() {
    let files = ServerFiles::new();
    let settings = untrusted_loopback_settings(files.dir.path(), "");
    let trunk = files.ca.client(&["trunk.carrier.example"]);
    let stranger = common::tls::Ca::new("another CA").client(&["trunk.carrier.example"]);
    let (trunk_cert, trunk_key) = files.write_client("trunk", &trunk);
    let (stranger_cert, stranger_key) = files.write_client("stranger", &stranger);
    let ca = files.ca_file.display().to_string();
    let server = start(&files, &["--config", &settings, "--tls-client-ca", &ca]);
    let addr = tls_addr(&server);
    let invite = tls_invite("+18005550100", "+16505550123", "mtls-1", 5061);

    // openssl with the CA-signed client certificate: trusted, a 302.
    let with_cert = s_client(
        addr,
        &files.ca_file,
        &[
            "-cert",
            &trunk_cert.display().to_string(),
            "-key",
            &trunk_key.display().to_string(),
        ],
        &invite,
    );
    assert_eq!(status(&with_cert), 302, "{with_cert}");
    // Without one: served, as an untrusted peer (403 here).
    let without = s_client(addr, &files.ca_file, &[], &invite);
    assert_eq!(status(&without), 403, "{without}");
    // With a certificate from another CA: the handshake is refused.
    let foreign = s_client(
        addr,
        &files.ca_file,
        &[
            "-cert",
            &stranger_cert.display().to_string(),
            "-key",
            &stranger_key.display().to_string(),
        ],
        &invite,
    );
    assert!(!foreign.contains("SIP/2.0"), "{foreign}");
    let rejected = TlsClient::connect(addr, &files.ca.cert_pem(), Some(&stranger))
        .and_then(|mut c| c.exchange(&invite));
    assert!(rejected.is_err(), "{rejected:?}");

    // The same over UDP from loopback: untrusted, so the certificate is
    // what made the difference.
    let udp = common::UdpClient::new();
    let answer = udp.exchange(
        server.udp,
        &common::invite("+18005550100", "+16505550123", "udp-mtls", udp.port()),
    );
    assert_eq!(status(&answer), 403);
}

#[test]
fn trust_names_narrow_which_certificates_are_trusted() {
    let files = ServerFiles::new();
    let settings = untrusted_loopback_settings(files.dir.path(), "");
    let ca = files.ca_file.display().to_string();
    let server = start(
        &files,
        &[
            "--config",
            &settings,
            "--tls-client-ca",
            &ca,
            "--tls-trust-name",
            "Trunk.Carrier.example",
        ],
    );
    let addr = tls_addr(&server);
    let ask = |issued: &common::tls::Issued, id: &str| {
        let mut client =
            TlsClient::connect(addr, &files.ca.cert_pem(), Some(issued)).expect("handshake");
        let answer = client
            .exchange(&tls_invite("+18005550100", "+16505550123", id, 5061))
            .expect("an answer");
        status(&answer)
    };
    assert_eq!(
        ask(&files.ca.client(&["trunk.carrier.example"]), "named"),
        302
    );
    assert_eq!(
        ask(&files.ca.client(&["pbx.customer.example"]), "other"),
        403
    );
}

#[test]
fn a_required_client_certificate_refuses_peers_without_one() {
    let files = ServerFiles::new();
    let ca = files.ca_file.display().to_string();
    let server = start(
        &files,
        &[
            "--tls-client-ca",
            &ca,
            "--tls-require-client-cert",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let addr = tls_addr(&server);
    let invite = tls_invite("+18005550100", "+16505550123", "required", 5061);
    let without = s_client(addr, &files.ca_file, &[], &invite);
    assert!(!without.contains("SIP/2.0"), "{without}");
    let refused =
        TlsClient::connect(addr, &files.ca.cert_pem(), None).and_then(|mut c| c.exchange(&invite));
    assert!(refused.is_err(), "{refused:?}");
    let trunk = files.ca.client(&["trunk.carrier.example"]);
    let mut client = TlsClient::connect(addr, &files.ca.cert_pem(), Some(&trunk)).expect("ok");
    assert_eq!(status(&client.exchange(&invite).expect("answer")), 302);
    let (_, scrape) = http_get(server.admin.expect("admin"), "/metrics");
    let refused = metric_value(
        &scrape,
        "switchboard_tls_handshakes_total{result=\"no_client_certificate\"}",
    )
    .expect("the counter");
    assert!(refused >= 2.0, "{scrape}");
}

#[test]
fn certificates_rotate_under_load_without_a_failed_call() {
    let files = ServerFiles::new();
    let log = files.dir.path().join("server.log");
    let mut args: Vec<String> = vec!["--routing".into(), example_data()];
    args.extend(files.args());
    args.extend(["--admin".into(), "127.0.0.1:0".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_logging(&refs, &log);
    let addr = tls_addr(&server);
    let ca_pem = files.ca.cert_pem();
    let first_serial = files.issued.serial.clone();

    // A connection opened before the rotation, kept open through it.
    let mut early = TlsClient::connect(addr, &ca_pem, None).expect("handshake");
    assert_eq!(early.server_serial(), first_serial);

    // Calls on new connections all through the rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let caller = {
        let (stop, ok, failed, ca_pem) = (stop.clone(), ok.clone(), failed.clone(), ca_pem.clone());
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let result = TlsClient::connect(addr, &ca_pem, None).and_then(|mut c| {
                    let port = c
                        .stream
                        .sock
                        .local_addr()
                        .map_err(|e| e.to_string())?
                        .port();
                    c.exchange(&tls_invite(
                        "+18005550100",
                        "+16505550123",
                        &format!("rot-{i}"),
                        port,
                    ))
                });
                match result {
                    Ok(answer) if status(&answer) == 302 => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        errors.push(format!("{other:?}"));
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            errors
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    // Rotate: a new certificate and key, renamed over the old files.
    let next = files.ca.server(&["localhost", "127.0.0.1"], 60);
    replace_file(&files.key, &next.key_pem);
    replace_file(&files.cert, &next.cert_pem);
    wait_until("the new certificate never served", || {
        let client = TlsClient::connect(addr, &ca_pem, None).expect("handshake");
        client.server_serial() == next.serial
    });
    std::thread::sleep(Duration::from_millis(300));

    // A broken pair written over the good one: a key of another
    // certificate. Nothing changes but the log and the failure counter.
    let admin = server.admin.expect("admin");
    let failed_before = sample(admin, RELOADS_FAILED);
    let stray = files.ca.server(&["localhost"], 60);
    replace_file(&files.key, &stray.key_pem);
    wait_until("the bad pair was never refused", || {
        sample(admin, RELOADS_FAILED) > failed_before
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let errors = caller.join().expect("the caller thread");
    assert!(errors.is_empty(), "failed calls: {errors:?}");
    assert!(ok.load(Ordering::Relaxed) > 10, "too few calls to tell");
    assert_eq!(failed.load(Ordering::Relaxed), 0);

    let after = TlsClient::connect(addr, &ca_pem, None).expect("handshake");
    assert_eq!(after.server_serial(), next.serial, "the bad pair served");
    // The connection from before the rotation still answers, on its
    // certificate.
    let port = early.stream.sock.local_addr().expect("bound").port();
    let answer = early
        .exchange(&tls_invite("+18005550100", "+16505550123", "early", port))
        .expect("the early connection still answers");
    assert_eq!(status(&answer), 302);
    assert_eq!(early.server_serial(), first_serial);

    // SIGHUP reloads the files whatever their bytes: back to a good pair.
    replace_file(&files.key, &next.key_pem);
    let good_before = sample(admin, RELOADS_OK);
    wait_until("the good pair did not come back", || {
        sample(admin, RELOADS_OK) > good_before
    });
    let settled = sample(admin, RELOADS_OK);
    Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    wait_until("SIGHUP did not reload the certificate", || {
        sample(admin, RELOADS_OK) > settled
    });
    drop(early);
    drop(after);
    drop(server);
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(text.contains("TLS certificate reloaded"), "{text}");
    assert!(
        text.contains("TLS certificate reload refused; the last good certificate keeps serving"),
        "{text}"
    );
    assert!(text.contains("is not the key of the certificate"), "{text}");
}

#[test]
fn an_expired_certificate_is_refused_on_reload() {
    let files = ServerFiles::new();
    let server = start(&files, &["--admin", "127.0.0.1:0"]);
    let admin = server.admin.expect("admin");
    let expired = files.ca.server(&["localhost"], -1);
    replace_file(&files.key, &expired.key_pem);
    replace_file(&files.cert, &expired.cert_pem);
    wait_until("the expired pair was never refused", || {
        sample(admin, RELOADS_FAILED) >= 1.0
    });
    assert_eq!(call(&server, &files, "after-expired"), Ok(302));
    let client = TlsClient::connect(tls_addr(&server), &files.ca.cert_pem(), None).expect("ok");
    assert_eq!(client.server_serial(), files.issued.serial);
}

#[test]
fn silent_and_slow_handshakes_are_cut_at_the_deadline() {
    let files = ServerFiles::new();
    let dir = tempfile::tempdir().expect("dir");
    let settings = dir.path().join("switchboard.yaml");
    std::fs::write(&settings, "tls:\n  handshake_ms: 700\n").expect("write");
    let server = start(
        &files,
        &[
            "--config",
            &settings.display().to_string(),
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let addr = tls_addr(&server);
    let closed_within = |stream: &mut TcpStream, limit: Duration| {
        let started = Instant::now();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let took = started.elapsed();
        assert!(took < limit, "still open after {took:?}");
    };
    // Silent: connects and sends nothing.
    let mut silent = TcpStream::connect(addr).expect("connect");
    closed_within(&mut silent, Duration::from_secs(5));

    // Slow: a real ClientHello, one byte every 100 ms (a handshake of
    // hundreds of bytes would take tens of seconds).
    let hello = client_hello();
    let mut slow = TcpStream::connect(addr).expect("connect");
    let writer = {
        let mut slow = slow.try_clone().expect("clone");
        std::thread::spawn(move || {
            for byte in hello {
                if slow.write_all(&[byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    closed_within(&mut slow, Duration::from_secs(5));
    let _ = writer.join();

    let (_, scrape) = http_get(server.admin.expect("admin"), "/metrics");
    assert_eq!(
        metric_value(
            &scrape,
            "switchboard_tls_handshakes_total{result=\"timeout\"}"
        ),
        Some(2.0),
        "{scrape}"
    );
    // Served as usual afterwards.
    assert_eq!(call(&server, &files, "after-slow"), Ok(302));
}

/// The first bytes a rustls client sends: a real ClientHello.
fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut hello = Vec::new();
    connection.write_tls(&mut hello).expect("a ClientHello");
    hello
}

#[test]
fn tls_connections_count_in_the_tcp_connection_caps() {
    let files = ServerFiles::new();
    let dir = tempfile::tempdir().expect("dir");
    let settings = dir.path().join("switchboard.yaml");
    std::fs::write(&settings, "limits:\n  tcp_max_connections_per_ip: 3\n").expect("write");
    let server = start(&files, &["--config", &settings.display().to_string()]);
    let addr = tls_addr(&server);
    let ca_pem = files.ca.cert_pem();
    let tcp = TcpStream::connect(server.tcp).expect("a TCP connection");
    let first = TlsClient::connect(addr, &ca_pem, None).expect("first TLS connection");
    let second = TlsClient::connect(addr, &ca_pem, None).expect("second TLS connection");
    // Three open from this address (one TCP, two TLS): the fourth is
    // closed at once, before any handshake.
    let refused = TlsClient::connect(addr, &ca_pem, None)
        .and_then(|mut c| c.exchange(&tls_invite("+18005550100", "+1650555012", "cap", 5061)));
    assert!(refused.is_err(), "{refused:?}");
    drop((tcp, first));
    // Room again: a new one is served.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match call(&server, &files, "cap-after") {
            Ok(302) => break,
            other => assert!(Instant::now() < deadline, "never served again: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(second);
}

#[test]
fn handshakes_take_flood_tokens() {
    let files = ServerFiles::new();
    let dir = tempfile::tempdir().expect("dir");
    let settings = dir.path().join("switchboard.yaml");
    // Loopback neither exempt nor refilling fast: two handshakes, then none.
    std::fs::write(
        &settings,
        "flood:\n  rate: 1\n  burst: 2\n  exempt: [192.0.2.0/24]\n",
    )
    .expect("write");
    let server = start(
        &files,
        &[
            "--config",
            &settings.display().to_string(),
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let addr = tls_addr(&server);
    let ca_pem = files.ca.cert_pem();
    let first = TlsClient::connect(addr, &ca_pem, None).expect("first handshake");
    let second = TlsClient::connect(addr, &ca_pem, None).expect("second handshake");
    let third = TlsClient::connect(addr, &ca_pem, None);
    assert!(third.is_err(), "a third handshake within the second");
    let (_, scrape) = http_get(server.admin.expect("admin"), "/metrics");
    assert_eq!(
        metric_value(
            &scrape,
            "switchboard_tls_handshakes_total{result=\"rate_limited\"}"
        ),
        Some(1.0),
        "{scrape}"
    );
    drop((first, second));
}

#[test]
fn tls_listens_on_ipv6_too() {
    common::require_ipv6_loopback();
    let files = ServerFiles::new();
    let mut args: Vec<String> = vec!["--routing".into(), example_data()];
    args.extend(files.args());
    args.extend(["--tls-listen".into(), "[::1]:0".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .args(&refs)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let v6 = loop {
        let line = lines.next().expect("a line before exit").expect("readable");
        if let Some(addr) = line.strip_prefix("listening on tls [") {
            break format!("[{addr}")
                .parse::<SocketAddr>()
                .expect("an address");
        }
    };
    let mut client = TlsClient::connect(v6, &files.ca.cert_pem(), None).expect("handshake");
    let answer = client
        .exchange(&tls_invite("+18005550100", "+16505550123", "v6", 5061))
        .expect("an answer");
    assert_eq!(status(&answer), 302);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn settings_refuse_half_a_tls_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--routing",
            &example_data(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--tls-listen", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tls.listen needs tls.cert and tls.key"),
        "{stderr}"
    );
}
