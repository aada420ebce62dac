//! SIP over TLS between switchboard and real SIP software nobody on this
//! project wrote, all on loopback and bounded in time: Kamailio 5.6 with its
//! tls module (`tests/interop/kamailio-tls.cfg`) takes calls from a SIPp
//! caller over UDP, asks switchboard over TLS, and follows each 302 to a
//! SIPp UAS standing in for the phone network, which must see every
//! followed call at the number the routing rules chose.
//!
//! - Kamailio verifies switchboard's certificate against the test CA
//!   (`verify_certificate = yes`), and a certificate from another CA gets
//!   no call through: the verification is real;
//! - with mutual TLS (`--tls-client-ca`, `--tls-require-client-cert`) and
//!   loopback untrusted, the 302s come only because Kamailio's certificate
//!   made it trusted;
//! - switchboard's `/metrics` count the handshakes and the requests.
//!
//! SIPp (Debian has it without TLS, hence UDP on the caller's side),
//! Kamailio and its tls module are required (`apt-get install -y sip-tester
//! kamailio kamailio-tls-modules`): without them these tests fail and say so.

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use common::kamailio::Kamailio;
use common::sipp::{proxy_rows, report};
use common::tls::{Ca, ServerFiles};
use common::{
    Server, example_data, free_udp_port, http_get, metric_value, project_path, request, status,
};

/// A process still running after this is killed and the test fails (SIPp
/// gives up by itself after its `-timeout`, well before).
const HARD_LIMIT: Duration = Duration::from_secs(60);

/// Each pass through the rows of [`proxy_rows`]: 28 calls, 20 of them
/// followed to the phone network.
const ROUNDS: usize = 2;

/// Waits for `child`, killing it after [`HARD_LIMIT`].
fn wait(child: &mut Child, what: &str) -> ExitStatus {
    common::sipp::wait_bounded(child, what, HARD_LIMIT)
}

/// Starts SIPp with these arguments, bounded by its own `-timeout`.
fn sipp(dir: &Path, name: &str, args: &[String]) -> Child {
    common::sipp::start(dir, name, args, "30s")
}

/// Fails the test, naming the package, unless Kamailio's tls module is
/// installed: it is a package of its own (`kamailio-tls-modules`), and
/// without it Kamailio would only say that it cannot load `tls.so`.
fn require_tls_module() {
    let program = std::env::var("KAMAILIO").unwrap_or_else(|_| "kamailio".to_owned());
    let missing = || -> ! {
        panic!(
            "Kamailio's tls module (tls.so) not found: `scripts/test` installs it \
             (or `apt-get install -y kamailio-tls-modules`)"
        )
    };
    // `kamailio -I` names the directory it loads modules from.
    let Ok(info) = Command::new(&program).arg("-I").output() else {
        panic!(
            "`{program}` not found: `scripts/test` installs it \
             (or `apt-get install -y kamailio kamailio-tls-modules`, or set KAMAILIO)"
        );
    };
    let info = String::from_utf8_lossy(&info.stdout);
    let Some(dirs) = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Default paths to modules:"))
    else {
        missing()
    };
    if !dirs
        .split(':')
        .any(|d| Path::new(d.trim()).join("tls.so").is_file())
    {
        missing()
    }
}

/// Writes the tls module's file for Kamailio: it connects to switchboard
/// verifying its certificate against `ca`, showing `client` (certificate
/// and key files) when asked for one; its own TLS listener serves the
/// server certificate of `files` (nobody connects to it).
fn kamailio_tls_cfg(files: &ServerFiles, ca: &Path, client: Option<(PathBuf, PathBuf)>) -> PathBuf {
    let mut cfg = format!(
        "[server:default]\n\
         method = TLSv1.2+\n\
         verify_certificate = no\n\
         require_certificate = no\n\
         certificate = {}\n\
         private_key = {}\n\
         \n\
         [client:default]\n\
         method = TLSv1.2+\n\
         verify_certificate = yes\n\
         require_certificate = yes\n\
         ca_list = {}\n",
        files.cert.display(),
        files.key.display(),
        ca.display()
    );
    if let Some((cert, key)) = client {
        cfg.push_str(&format!(
            "certificate = {}\nprivate_key = {}\n",
            cert.display(),
            key.display()
        ));
    }
    let path = files.dir.path().join("kamailio-tls.cfg");
    fs::write(&path, cfg).expect("write Kamailio's tls.cfg");
    path
}

/// Kamailio with `kamailio-tls.cfg`, asking switchboard at `tls` over TLS
/// with the tls module's file `tls_cfg`.
fn start_kamailio(tls: SocketAddr, tls_cfg: &Path) -> Kamailio {
    require_tls_module();
    Kamailio::start(
        &project_path("tests/interop/kamailio-tls.cfg"),
        &[
            format!("REDIRECT_SERVER=\"sip:{tls};transport=tls\""),
            // Kamailio's own TLS listener, which it needs to open TLS
            // connections at all; nobody connects to it.
            format!("TLS_PORT={}", free_udp_port()),
            format!("TLS_CONFIG=\"{}\"", tls_cfg.display()),
        ],
    )
}

/// The arguments for switchboard serving TLS with `files`, its Contacts
/// at the phone network on `phone_port`, the admin endpoint on, and these.
fn switchboard_args(files: &ServerFiles, phone_port: u16, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--routing".into(),
        example_data(),
        "--contact-template".into(),
        format!("sip:{{number}}@127.0.0.1:{phone_port};user=phone"),
        "--admin".into(),
        "127.0.0.1:0".into(),
    ];
    args.extend(files.args());
    args.extend_from_slice(extra);
    args
}

fn start_switchboard(args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(&args)
}

/// Every row of [`proxy_rows`], [`ROUNDS`] times, from a SIPp caller over
/// UDP through Kamailio, which asks switchboard over TLS and follows the
/// 302s to a SIPp phone network on `phone_port`. Fails unless the caller
/// saw the expected answer to every call (for a followed call: the phone
/// network's 486 naming the number it was reached at) and the phone
/// network got every followed call. Returns how many calls were placed, and
/// how many of them were followed.
fn calls_through_kamailio(kamailio: &Kamailio, phone_port: u16) -> (usize, usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rows = proxy_rows();
    let followed = rows.iter().filter(|r| r.contains(";486;")).count();
    assert!(followed >= 5 && rows.len() > followed, "{rows:?}");
    let csv = dir.path().join("calls.csv");
    fs::write(&csv, format!("SEQUENTIAL\n{}\n", rows.join("\n"))).expect("write the calls");

    // The phone network: answers every call that reaches it, naming the
    // Request-URI user it was reached at.
    let mut uas = sipp(
        dir.path(),
        "uas",
        &[
            "-sf".into(),
            project_path("tests/interop/uas_phone_network.xml")
                .display()
                .to_string(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            phone_port.to_string(),
            "-m".into(),
            (followed * ROUNDS).to_string(),
        ],
    );
    let calls = rows.len() * ROUNDS;
    let mut uac = sipp(
        dir.path(),
        "uac",
        &[
            "-sf".into(),
            project_path("tests/interop/uac_via_proxy.xml")
                .display()
                .to_string(),
            "-inf".into(),
            csv.display().to_string(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            free_udp_port().to_string(),
            "-m".into(),
            calls.to_string(),
            "-r".into(),
            "20".into(),
            "-recv_timeout".into(),
            "10000".into(),
            kamailio.addr.to_string(),
        ],
    );
    let uac_status = wait(&mut uac, "the SIPp caller");
    let uas_status = wait(&mut uas, "the SIPp phone network");
    assert!(
        uac_status.success(),
        "the caller saw a wrong answer (exit {uac_status})\n{}\n--- kamailio\n{}",
        report(dir.path(), "uac"),
        kamailio.log()
    );
    assert!(
        uas_status.success(),
        "the phone network did not get every followed call (exit {uas_status})\n{}",
        report(dir.path(), "uas")
    );
    (calls, followed * ROUNDS)
}

/// A counter from switchboard's `/metrics`, 0 when absent.
fn counter(server: &Server, sample: &str) -> f64 {
    let (code, scrape) = http_get(server.admin.expect("an admin endpoint"), "/metrics");
    assert_eq!(code, 200, "{scrape}");
    metric_value(&scrape, sample).unwrap_or(0.0)
}

const HANDSHAKES_OK: &str = "switchboard_tls_handshakes_total{result=\"ok\"}";
const REDIRECTS: &str = "switchboard_requests_total{method=\"INVITE\",code=\"302\"}";

/// Checks switchboard's counts after `calls` calls through Kamailio, of
/// which `followed` got a 302: at least one handshake done and no failed
/// one, Kamailio's connection still open for the next call, and one
/// INVITE a call, with one 302 a followed call (nothing else sends
/// switchboard INVITEs that answer 302 or 404/480, and a reliable
/// transport has no retransmissions).
fn assert_counted(server: &Server, calls: usize, followed: usize) {
    let ok = counter(server, HANDSHAKES_OK);
    assert!(ok >= 1.0, "{HANDSHAKES_OK} = {ok}");
    let open = counter(server, "switchboard_tls_connections");
    assert!(open >= 1.0, "switchboard_tls_connections = {open}");
    for failed in [
        "timeout",
        "no_client_certificate",
        "bad_client_certificate",
        "peer_refused",
        "protocol",
    ] {
        let sample = format!("switchboard_tls_handshakes_total{{result=\"{failed}\"}}");
        assert_eq!(counter(server, &sample), 0.0, "{sample}");
    }
    assert_eq!(counter(server, REDIRECTS), followed as f64, "{REDIRECTS}");
    let answered: f64 = ["302", "404", "480"]
        .iter()
        .map(|code| {
            counter(
                server,
                &format!("switchboard_requests_total{{method=\"INVITE\",code=\"{code}\"}}"),
            )
        })
        .sum();
    assert_eq!(answered, calls as f64, "INVITEs answered 302, 404 or 480");
}

#[test]
fn kamailio_verifies_the_certificate_and_follows_the_302s_over_tls() {
    let files = ServerFiles::new();
    let phone_port = free_udp_port();
    let switchboard = start_switchboard(&switchboard_args(&files, phone_port, &[]));
    let tls = switchboard.tls.expect("a TLS listener");
    let kamailio = start_kamailio(tls, &kamailio_tls_cfg(&files, &files.ca_file, None));
    let (calls, followed) = calls_through_kamailio(&kamailio, phone_port);
    assert_counted(&switchboard, calls, followed);
    eprintln!(
        "{calls} calls through Kamailio asking switchboard over TLS: {followed} followed to \
         the phone network at the chosen number"
    );
}

#[test]
fn with_mutual_tls_kamailio_is_trusted_by_its_certificate() {
    let files = ServerFiles::new();
    // Loopback is not on the trust list and untrusted peers get a 403, so
    // a 302 can only come from trust given by Kamailio's certificate.
    let settings = files.dir.path().join("switchboard.yaml");
    fs::write(&settings, "trust: [192.0.2.0/24]\nuntrusted: reject\n").expect("write settings");
    let (cert, key) = files.write_client("kamailio", &files.ca.client(&["proxy.example"]));
    let phone_port = free_udp_port();
    let switchboard = start_switchboard(&switchboard_args(
        &files,
        phone_port,
        &[
            "--config".into(),
            settings.display().to_string(),
            "--tls-client-ca".into(),
            files.ca_file.display().to_string(),
            "--tls-require-client-cert".into(),
        ],
    ));
    let tls = switchboard.tls.expect("a TLS listener");

    // Untrusted where no certificate vouches for the peer: the same
    // INVITE over UDP from loopback is refused.
    let udp = common::UdpClient::new();
    let answer = udp.exchange(
        switchboard.udp,
        &common::invite("+18005550100", "+16505550123", "udp-untrusted", udp.port()),
    );
    assert_eq!(status(&answer), 403, "{answer}");

    let kamailio = start_kamailio(
        tls,
        &kamailio_tls_cfg(&files, &files.ca_file, Some((cert, key))),
    );
    let (calls, followed) = calls_through_kamailio(&kamailio, phone_port);
    assert_counted(&switchboard, calls, followed);
}

/// The final answer Kamailio gives one INVITE sent to it over UDP (10 s at
/// most; provisional answers skipped).
fn final_answer(kamailio: &Kamailio, dialed: &str) -> String {
    let caller = common::UdpClient::new();
    let invite = request(
        &[
            &format!("INVITE sip:{dialed}@{} SIP/2.0", kamailio.addr),
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-untrusted-ca;rport",
            "Max-Forwards: 70",
            "From: <sip:+16505550123@127.0.0.1:{port}>;tag=untrusted-ca",
            &format!("To: <sip:{dialed}@{}>", kamailio.addr),
            "Call-ID: untrusted-ca",
            "CSeq: 1 INVITE",
            "Contact: <sip:+16505550123@127.0.0.1:{port}>",
            "Content-Length: 0",
            "",
        ],
        caller.port(),
    );
    caller.send(kamailio.addr, &invite);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(bytes) = caller.receive_within(Duration::from_millis(500)) {
            let answer = String::from_utf8_lossy(&bytes).into_owned();
            if status(&answer) >= 200 {
                return answer;
            }
        }
    }
    panic!(
        "no final answer from Kamailio within 10 s\n--- kamailio\n{}",
        kamailio.log()
    );
}

#[test]
fn kamailio_refuses_a_certificate_from_another_ca() {
    // switchboard serves a certificate Kamailio's CA did not sign.
    let files = ServerFiles::new();
    let other = Ca::new("another CA");
    let other_ca = files.dir.path().join("other-ca.crt");
    fs::write(&other_ca, other.cert_pem()).expect("write the other CA");
    let phone = UdpSocket::bind("127.0.0.1:0").expect("a phone socket");
    let phone_port = phone.local_addr().expect("bound").port();
    let switchboard = start_switchboard(&switchboard_args(&files, phone_port, &[]));
    let tls = switchboard.tls.expect("a TLS listener");
    let kamailio = start_kamailio(tls, &kamailio_tls_cfg(&files, &other_ca, None));

    // The rule-1 number, which a verified connection follows to the phone.
    let answer = final_answer(&kamailio, "+18005550100");
    let code = status(&answer);
    let log = kamailio.log();
    assert!(
        code >= 400,
        "an answer over an unverified connection: {answer}\n--- kamailio\n{log}"
    );
    // Kamailio says why (OpenSSL's words): the refusal is its
    // verification, not some other failure to connect.
    assert!(
        log.contains("certificate verify failed"),
        "Kamailio did not report a failed verification\n--- kamailio\n{log}"
    );
    // Nothing reached the phone network, and switchboard saw Kamailio
    // refuse its certificate: no handshake done, no request read.
    phone
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    assert!(
        phone.recv_from(&mut buf).is_err(),
        "a call reached the phone"
    );
    assert_eq!(counter(&switchboard, HANDSHAKES_OK), 0.0);
    let refused = counter(
        &switchboard,
        "switchboard_tls_handshakes_total{result=\"peer_refused\"}",
    );
    assert!(refused >= 1.0, "Kamailio's refusal not counted: {refused}");
    assert_eq!(counter(&switchboard, REDIRECTS), 0.0);
    eprintln!("Kamailio refused a certificate from another CA: the caller got {code}");
}
