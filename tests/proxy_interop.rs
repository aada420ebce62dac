//! Proxy mode (issue #21) with SIP software nobody on this project wrote,
//! on loopback and bounded in time:
//!
//! - Kamailio 5.6 (`tm`'s `t_relay`, `tests/interop/kamailio-relay.cfg`)
//!   as the next hop behind switchboard (switchboard → Kamailio → SIPp
//!   UAS), and as the carrier trunk in front of it (SIPp UAC → Kamailio →
//!   switchboard → SIPp UAS);
//! - baresip as the caller (it dials switchboard, switchboard rings the
//!   phone, a SIPp UAS) and as the phone (a SIPp UAC calls, switchboard
//!   relays to baresip, which answers by itself).
//!
//! Over UDP, and over TLS: baresip as the caller on switchboard's TLS
//! listener, and as the phone behind a `transport=tls` next hop whose
//! certificate switchboard verifies (`proxy.tls_ca`). TCP legs are driven
//! with SIPp in tests/proxy_sipp.rs, mutual TLS in tests/proxy_tls.rs.
//!
//! SIPp, Kamailio and baresip are required (`apt-get install -y sip-tester
//! kamailio baresip-core`): without them these tests fail and say so.

mod common;
#[path = "common/proxy_rig.rs"]
mod proxy_rig;

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::kamailio::Kamailio;
use common::{UdpClient, free_udp_port, project_path, require};
use proxy_rig::{DIALED, Process, Rig, RigOptions, diversion, headers, wait_listening};

/// A process still running after this is killed and the test fails.
const HARD_LIMIT: Duration = Duration::from_secs(90);

fn relay_config() -> std::path::PathBuf {
    project_path("tests/interop/kamailio-relay.cfg")
}

/// switchboard with Kamailio as its next hop.
fn behind_kamailio(ring_seconds: u32) -> (Rig, Kamailio) {
    let kamailio = Kamailio::start(&relay_config(), &[]);
    let rig = Rig::start(RigOptions {
        ring_seconds,
        next_hop: Some(format!("sip:{};transport=udp", kamailio.addr)),
        ..RigOptions::default()
    });
    (rig, kamailio)
}

/// switchboard with Kamailio as the trunk in front of it.
fn kamailio_in_front(ring_seconds: u32) -> (Rig, Kamailio) {
    let rig = Rig::start(RigOptions {
        ring_seconds,
        ..RigOptions::default()
    });
    let kamailio = Kamailio::start(
        &relay_config(),
        &[format!("TRUNK_TO=\"sip:{}\"", rig.server.udp)],
    );
    (rig, kamailio)
}

fn report(rig: &Rig, kamailio: &Kamailio, names: &[&str]) -> String {
    format!("{}\n--- kamailio\n{}", rig.report(names), kamailio.log())
}

/// switchboard → Kamailio → the phone: the call is answered, the phone
/// gets the caller's ACK (switchboard relays it to Kamailio, which sends it
/// on by its Request-URI) and the first leg's Diversion; the INVITE went
/// through both proxies (three Vias).
#[test]
fn kamailio_as_the_next_hop_the_phone_answers() {
    let (rig, kamailio) = behind_kamailio(20);
    let mut phone = rig.uas("phone", "proxy_uas_answer.xml", rig.phone_port, &[]);
    let (caller, took) = rig.call(200, "phone");
    let phone_status = phone.wait(HARD_LIMIT);
    let report = || report(&rig, &kamailio, &["caller", "phone"]);
    assert!(caller.success(), "caller: {caller}\n{}", report());
    assert!(
        phone_status.success(),
        "phone: {phone_status}\n{}",
        report()
    );
    let invite = rig.invite_at("phone");
    assert_eq!(headers(&invite, "Via").len(), 3, "{invite}");
    assert_eq!(headers(&invite, "Diversion"), [diversion("follow-me")]);
    rig.wait_idle(Duration::from_secs(15));
    eprintln!("switchboard -> Kamailio -> phone: answered in {took:?}");
}

/// switchboard → Kamailio → the phone, which rings out: switchboard's
/// CANCEL goes through Kamailio (the phone answers it 200 and 487, and
/// Kamailio ACKs), then the forwarding target, also through Kamailio,
/// answers with `reason=no-answer` in its Diversion.
#[test]
fn kamailio_as_the_next_hop_the_phone_rings_out() {
    let (rig, kamailio) = behind_kamailio(1);
    let mut phone = rig.uas("phone", "proxy_uas_ring.xml", rig.phone_port, &[]);
    let mut forwarding = rig.uas(
        "forwarding",
        "proxy_uas_answer.xml",
        rig.forwarding_port,
        &[],
    );
    let (caller, took) = rig.call(200, "forwarding");
    let phone_status = phone.wait(HARD_LIMIT);
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    let report = || report(&rig, &kamailio, &["caller", "phone", "forwarding"]);
    assert!(caller.success(), "caller: {caller}\n{}", report());
    assert!(
        phone_status.success(),
        "phone: {phone_status}\n{}",
        report()
    );
    assert!(
        forwarding_status.success(),
        "forwarding: {forwarding_status}\n{}",
        report()
    );
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert_eq!(
        headers(&rig.invite_at("forwarding"), "Diversion"),
        [diversion("no-answer")]
    );
    eprintln!("switchboard -> Kamailio -> phone rang out -> forwarding: {took:?}");
}

/// SIPp UAC → Kamailio (the trunk) → switchboard → the phone: answered,
/// the 100/180/200 back through both, the ACK to the phone.
#[test]
fn kamailio_as_the_trunk_the_phone_answers() {
    let (rig, kamailio) = kamailio_in_front(20);
    let mut phone = rig.uas("phone", "proxy_uas_answer.xml", rig.phone_port, &[]);
    let (caller, took) = rig.call_to(kamailio.addr, 200, "phone");
    let phone_status = phone.wait(HARD_LIMIT);
    let report = || report(&rig, &kamailio, &["caller", "phone"]);
    assert!(caller.success(), "caller: {caller}\n{}", report());
    assert!(
        phone_status.success(),
        "phone: {phone_status}\n{}",
        report()
    );
    let invite = rig.invite_at("phone");
    assert_eq!(headers(&invite, "Via").len(), 3, "{invite}");
    assert_eq!(headers(&invite, "Diversion"), [diversion("follow-me")]);
    rig.wait_idle(Duration::from_secs(15));
    eprintln!("caller -> Kamailio -> switchboard -> phone: answered in {took:?}");
}

/// SIPp UAC → Kamailio → switchboard → a busy phone: switchboard fails
/// over at once to the forwarding target, which answers.
#[test]
fn kamailio_as_the_trunk_a_busy_phone_fails_over() {
    let (rig, kamailio) = kamailio_in_front(20);
    let mut phone = rig.uas("phone", "proxy_uas_busy.xml", rig.phone_port, &[]);
    let mut forwarding = rig.uas(
        "forwarding",
        "proxy_uas_answer.xml",
        rig.forwarding_port,
        &[],
    );
    let (caller, took) = rig.call_to(kamailio.addr, 200, "forwarding");
    let phone_status = phone.wait(HARD_LIMIT);
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    let report = || report(&rig, &kamailio, &["caller", "phone", "forwarding"]);
    assert!(caller.success(), "caller: {caller}\n{}", report());
    assert!(
        phone_status.success(),
        "phone: {phone_status}\n{}",
        report()
    );
    assert!(
        forwarding_status.success(),
        "forwarding: {forwarding_status}\n{}",
        report()
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        headers(&rig.invite_at("forwarding"), "Diversion"),
        [diversion("user-busy")]
    );
    eprintln!("caller -> Kamailio -> switchboard -> busy phone -> forwarding: {took:?}");
}

/// baresip, headless: its modules, a config directory in `dir` listening
/// on `listen` with one account `account` (a `<sip:...>` line with
/// parameters), and these menu commands (`-e`); its stdout lines come
/// through the returned channel.
fn baresip(
    dir: &Path,
    listen: &str,
    account: &str,
    commands: &[String],
) -> (Process, mpsc::Receiver<String>) {
    baresip_with(dir, listen, account, commands, "")
}

/// As [`baresip`], with more lines in its config file.
fn baresip_with(
    dir: &Path,
    listen: &str,
    account: &str,
    commands: &[String],
    config: &str,
) -> (Process, mpsc::Receiver<String>) {
    require("baresip", "baresip-core");
    let modules = Path::new("/usr/lib/baresip/modules");
    assert!(
        modules.join("menu.so").exists(),
        "baresip's modules are not in {}: `apt-get install -y baresip-core`",
        modules.display()
    );
    let conf = dir.join("baresip");
    fs::create_dir_all(&conf).expect("config dir");
    fs::write(
        conf.join("config"),
        format!(
            "sip_listen\t{listen}\nmodule_path\t{}\nmodule\tg711.so\n\
             module\taccount.so\nmodule\tmenu.so\n{config}",
            modules.display()
        ),
    )
    .expect("config written");
    fs::write(conf.join("accounts"), format!("{account}\n")).expect("accounts");
    let mut command = Command::new("baresip");
    command
        .arg("-f")
        .arg(&conf)
        .args(["-n", "127.0.0.1", "-t", "60"]);
    for c in commands {
        command.args(["-e", c]);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(dir.join("baresip.stderr")).expect("stderr file"));
    let mut process = Process::spawn(command, "baresip");
    let stdout = process.child.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    (process, lines)
}

/// Reads baresip's lines until one contains `wanted` (within `wait`);
/// everything read, or a panic naming it.
fn baresip_says(lines: &mpsc::Receiver<String>, wanted: &str, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut transcript = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            panic!(
                "baresip did not say {wanted:?} within {wait:?}; it said:\n{}",
                transcript.join("\n")
            );
        };
        let found = line.contains(wanted);
        transcript.push(line);
        if found {
            return transcript;
        }
    }
}

/// baresip dials the number at switchboard (proxy mode): switchboard
/// relays the call to the phone (a SIPp UAS), whose 200 reaches baresip
/// (`Call established`), and baresip's ACK, sent to the phone's Contact,
/// ends the phone's scenario. The forwarding target is never rung.
#[test]
fn baresip_calls_through_switchboard_and_the_phone_answers() {
    let rig = Rig::start(RigOptions::default());
    let forwarding = UdpClient::bind(&format!("127.0.0.1:{}", rig.forwarding_port));
    let mut phone = rig.uas("phone", "proxy_uas_answer.xml", rig.phone_port, &[]);
    let started = Instant::now();
    let (_baresip, lines) = baresip(
        rig.path(),
        "127.0.0.1:0",
        "<sip:caller@127.0.0.1>;regint=0",
        &[format!("/dial sip:{DIALED}@{}", rig.server.udp)],
    );
    let said = baresip_says(&lines, "Call established", Duration::from_secs(30));
    let took = started.elapsed();
    let phone_status = phone.wait(HARD_LIMIT);
    assert!(
        phone_status.success(),
        "the phone did not get baresip's ACK (exit {phone_status})\n{}\n{}",
        said.join("\n"),
        rig.report(&["phone"])
    );
    assert_eq!(
        headers(&rig.invite_at("phone"), "Diversion"),
        [diversion("follow-me")]
    );
    if let Some(datagram) = forwarding.receive_within(Duration::from_millis(500)) {
        panic!(
            "the forwarding target got a message:\n{}",
            String::from_utf8_lossy(&datagram)
        );
    }
    eprintln!("baresip -> switchboard -> phone: established in {took:?}");
}

/// baresip dials; the phone rings out; switchboard CANCELs it and the
/// forwarding target answers: baresip gets the forwarding target's 200.
/// Where a 302 left baresip at the first Contact (tests/chain.rs), proxy
/// mode takes it down the chain.
#[test]
fn baresip_calls_and_the_forwarding_number_answers_after_the_ring_time() {
    let rig = Rig::start(RigOptions {
        ring_seconds: 1,
        ..RigOptions::default()
    });
    let mut phone = rig.uas("phone", "proxy_uas_ring.xml", rig.phone_port, &[]);
    let mut forwarding = rig.uas(
        "forwarding",
        "proxy_uas_answer.xml",
        rig.forwarding_port,
        &[],
    );
    let started = Instant::now();
    let (_baresip, lines) = baresip(
        rig.path(),
        "127.0.0.1:0",
        "<sip:caller@127.0.0.1>;regint=0",
        &[format!("/dial sip:{DIALED}@{}", rig.server.udp)],
    );
    let said = baresip_says(&lines, "Call established", Duration::from_secs(30));
    let took = started.elapsed();
    let phone_status = phone.wait(HARD_LIMIT);
    let forwarding_status = forwarding.wait(HARD_LIMIT);
    let report = || {
        format!(
            "{}\n{}",
            said.join("\n"),
            rig.report(&["phone", "forwarding"])
        )
    };
    assert!(
        phone_status.success(),
        "phone: {phone_status}\n{}",
        report()
    );
    assert!(
        forwarding_status.success(),
        "forwarding: {forwarding_status}\n{}",
        report()
    );
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert_eq!(
        headers(&rig.invite_at("forwarding"), "Diversion"),
        [diversion("no-answer")]
    );
    eprintln!("baresip -> switchboard -> phone rang out -> forwarding: established in {took:?}");
}

/// baresip is the phone (it answers by itself, `answermode=auto`): a SIPp
/// UAC calls through switchboard, gets baresip's 200 (its Contact names the
/// account's user, `phone`), and its ACK reaches baresip (relayed by
/// switchboard), which then reports the call established.
#[test]
fn baresip_is_the_phone_and_answers() {
    let port = free_udp_port();
    let rig = Rig::start_at(RigOptions::default(), port, free_udp_port());
    let (mut baresip, lines) = baresip(
        rig.path(),
        &format!("127.0.0.1:{port}"),
        "<sip:phone@127.0.0.1>;regint=0;answermode=auto",
        &[],
    );
    wait_listening(&mut baresip, port, || {
        fs::read_to_string(rig.path().join("baresip.stderr")).unwrap_or_default()
    });
    let (caller, took) = rig.call(200, "phone");
    let said = baresip_says(&lines, "Call established", Duration::from_secs(10));
    assert!(
        caller.success(),
        "the caller did not get baresip's 200 (exit {caller})\n{}\n{}",
        said.join("\n"),
        rig.report(&["caller"])
    );
    let invite = proxy_rig::received(rig.path(), "caller");
    assert!(
        invite.iter().any(|m| m.starts_with("SIP/2.0 200")
            && headers(m, "Contact")
                .first()
                .is_some_and(|c| c.contains(&format!("@127.0.0.1:{port}")))),
        "{}",
        rig.report(&["caller"])
    );
    eprintln!("caller -> switchboard -> baresip: answered in {took:?}");
}

/// baresip is the phone over TLS: it listens for SIP over TLS (on its
/// `sip_listen` port + 1, as baresip does) with a certificate for
/// 127.0.0.1 from a CA that switchboard trusts (`proxy.tls_ca`), and the
/// next hop says `transport=tls`. A SIPp caller on UDP gets baresip's 200,
/// and its ACK reaches baresip over the same TLS connection: baresip
/// reports the call established.
#[test]
fn baresip_is_the_phone_over_tls() {
    let ca = common::tls::Ca::new("phones' CA");
    let issued = ca.server(&["127.0.0.1"], 30);
    let port = free_udp_port();
    // baresip's TLS port follows its sip_listen port.
    let tls_port = port + 1;
    let dir = tempfile::tempdir().expect("a directory");
    let ca_path = dir.path().join("ca.pem");
    fs::write(&ca_path, ca.cert_pem()).expect("CA written");
    let proxy_settings = format!("  tls_ca: {}\n", ca_path.display());
    let next_hop = format!("sip:127.0.0.1:{tls_port};transport=tls");
    let rig = Rig::start_at(
        RigOptions {
            next_hop: Some(next_hop),
            proxy_settings: &proxy_settings,
            ..RigOptions::default()
        },
        free_udp_port(),
        free_udp_port(),
    );
    let certificate = rig.path().join("baresip-cert.pem");
    fs::write(
        &certificate,
        format!("{}{}", issued.cert_pem, issued.key_pem),
    )
    .expect("certificate written");
    let (mut baresip, lines) = baresip_with(
        rig.path(),
        &format!("127.0.0.1:{port}"),
        "<sip:phone@127.0.0.1>;regint=0;answermode=auto",
        &[],
        &format!("sip_certificate\t{}\n", certificate.display()),
    );
    wait_listening(&mut baresip, port, || {
        fs::read_to_string(rig.path().join("baresip.stderr")).unwrap_or_default()
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !proxy_rig::tcp_port_listening(tls_port) {
        assert!(
            Instant::now() < deadline,
            "baresip does not listen for TLS on {tls_port}\n{}",
            fs::read_to_string(rig.path().join("baresip.stderr")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (caller, took) = rig.call(200, "phone");
    let said = baresip_says(&lines, "Call established", Duration::from_secs(10));
    assert!(
        caller.success(),
        "the caller did not get baresip's 200 over TLS (exit {caller})\n{}\n{}",
        said.join("\n"),
        rig.report(&["caller"])
    );
    assert_eq!(rig.metric("switchboard_proxy_outbound_connections"), 1.0);
    eprintln!("caller -> switchboard -> TLS -> baresip: answered in {took:?}");
}

/// baresip is the caller over TLS: it trusts the CA of switchboard's TLS
/// listener (`sip_cafile`), dials with `transport=tls`, and switchboard
/// relays the call to the SIPp phone over UDP; every answer goes back on
/// baresip's TLS connection, and baresip's ACK comes the same way.
#[test]
fn baresip_calls_over_tls_through_switchboard() {
    let ca = common::tls::Ca::new("switchboard's CA");
    let issued = ca.server(&["127.0.0.1", "localhost"], 30);
    let dir = tempfile::tempdir().expect("a directory");
    let write = |name: &str, contents: &str| {
        let path = dir.path().join(name);
        fs::write(&path, contents).expect("written");
        path.display().to_string()
    };
    let (cert, key, ca_path) = (
        write("cert.pem", &issued.cert_pem),
        write("key.pem", &issued.key_pem),
        write("ca.pem", &ca.cert_pem()),
    );
    let extra = [
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let rig = Rig::start(RigOptions {
        extra: &extra,
        ..RigOptions::default()
    });
    let tls = rig.server.tls.expect("a TLS listener");
    let mut phone = rig.uas("phone", "proxy_uas_answer.xml", rig.phone_port, &[]);
    let started = Instant::now();
    let (_baresip, lines) = baresip_with(
        rig.path(),
        "127.0.0.1:0",
        "<sip:caller@127.0.0.1;transport=tls>;regint=0",
        &[format!("/dial sip:{DIALED}@{tls};transport=tls")],
        &format!("sip_cafile\t{ca_path}\n"),
    );
    let said = baresip_says(&lines, "Call established", Duration::from_secs(30));
    let took = started.elapsed();
    let phone_status = phone.wait(HARD_LIMIT);
    assert!(
        phone_status.success(),
        "the phone did not get baresip's ACK (exit {phone_status})\n{}\n{}",
        said.join("\n"),
        rig.report(&["phone"])
    );
    assert_eq!(
        headers(&rig.invite_at("phone"), "Diversion"),
        [diversion("follow-me")]
    );
    eprintln!("baresip -> TLS -> switchboard -> phone: established in {took:?}");
}
