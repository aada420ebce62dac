//! The failover chain (`on_no_answer: forward`) and the `Diversion` header
//! followed by real SIP software nobody on this project wrote, all on
//! loopback and bounded in time:
//!
//! - Kamailio 5.6 as a stateful proxy that asks switchboard and then tries
//!   the 302's Contacts one after the other by q
//!   (`tests/interop/kamailio-serial-forking.cfg`), copying the 302's
//!   `Diversion` onto each INVITE it sends on. A SIPp UAS is the user's
//!   phone (a `sip:` phone at its port), another the number's forwarding
//!   target (a `sip:` `forward_to`), a SIPp UAC places the call;
//! - baresip placing a call straight at switchboard: it follows the 302 to
//!   the first Contact and never tries the next.
//!
//! SIPp, Kamailio and baresip are required (`apt-get install -y sip-tester
//! kamailio baresip-core`): without them these tests fail and say so.

mod common;

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::kamailio::Kamailio;
use common::{Server, UdpClient, free_udp_port, project_path, require};

/// The number every call dials; the UAS scenarios check the `Diversion`
/// naming it.
const DIALED: &str = "+18005550188";

/// A process still running after this is killed and the test fails.
const HARD_LIMIT: Duration = Duration::from_secs(90);

/// How long a ringing phone rings before the proxy moves on, in the test
/// where it rings out.
const RING_OUT: Duration = Duration::from_secs(2);

/// The proxy's ring timer in the tests where it must not matter: a call
/// that waited for it took at least this long.
const NEVER_RINGS_OUT: Duration = Duration::from_secs(30);

/// A child process in a process group of its own, killed with its group
/// when dropped.
struct Process {
    child: Child,
    name: String,
}

impl Process {
    fn spawn(mut command: Command, name: &str) -> Process {
        let child = command
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process {
            child,
            name: name.to_owned(),
        }
    }

    /// Waits for the exit, killing the process after [`HARD_LIMIT`].
    fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if started.elapsed() > HARD_LIMIT {
                self.kill();
                panic!("{} still running after {HARD_LIMIT:?}: killed", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether something listens on 127.0.0.1:`port` over UDP (Linux's
/// socket table: probing by binding the port would steal it).
fn udp_port_bound(port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    fs::read_to_string("/proc/net/udp")
        .map(|table| {
            table.lines().skip(1).any(|line| {
                line.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| local.ends_with(&suffix))
            })
        })
        .unwrap_or(false)
}

/// Starts SIPp with these arguments, bounded by its own `-timeout`;
/// everything it writes goes to `dir`, its messages to `NAME.messages.log`.
fn sipp(dir: &Path, name: &str, args: &[String]) -> Process {
    require("sipp", "sip-tester");
    let mut command = Command::new("sipp");
    command
        .args(args)
        .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
        .args(["-trace_err", "-error_file"])
        .arg(dir.join(format!("{name}.errors.log")))
        .args(["-trace_msg", "-message_file"])
        .arg(dir.join(format!("{name}.messages.log")))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(File::create(dir.join(format!("{name}.stdout"))).expect("stdout file"))
        .stderr(File::create(dir.join(format!("{name}.stderr"))).expect("stderr file"));
    Process::spawn(command, &format!("SIPp {name}"))
}

/// SIPp's errors and the end of its message trace, for a failure message.
fn report(dir: &Path, name: &str) -> String {
    let read =
        |suffix: &str| fs::read_to_string(dir.join(format!("{name}.{suffix}"))).unwrap_or_default();
    let errors = read("errors.log");
    let messages = read("messages.log");
    let start = messages.floor_char_boundary(messages.len().saturating_sub(6000));
    format!(
        "--- {name} errors (start)\n{}\n--- {name} messages (end)\n{}\n--- {name} stderr\n{}",
        &errors[..errors.floor_char_boundary(3000)],
        &messages[start..],
        read("stderr")
    )
}

/// Routing data where `DIALED` is dana's number, `on_no_answer: forward`,
/// dana's phone a SIP URI at `phone` and the number's `forward_to` one at
/// `forwarding`.
fn routing_data(dir: &Path, phone: u16, forwarding: u16) -> PathBuf {
    let data = format!(
        r#"
accounts:
  - id: chain
    users:
      - id: dana
        phone: "sip:phone@127.0.0.1:{phone}"
        numbers: ["{DIALED}"]
    numbers:
      - number: "{DIALED}"
        on_no_answer: forward
        forward_to: "sip:forwarding@127.0.0.1:{forwarding}"
"#
    );
    let path = dir.join("routing.yaml");
    fs::write(&path, data).expect("routing data written");
    path
}

/// switchboard (`--diversion header`) and Kamailio in front of it, with a
/// phone and a forwarding target at free ports named in the routing data.
struct Proxied {
    dir: tempfile::TempDir,
    phone_port: u16,
    forwarding_port: u16,
    kamailio: Kamailio,
    _switchboard: Server,
}

impl Proxied {
    /// With `kamailio-serial-forking.cfg` and this ring timer.
    fn start(ring_timeout: Duration) -> Proxied {
        Proxied::start_with(
            &project_path("tests/interop/kamailio-serial-forking.cfg"),
            ring_timeout,
        )
    }

    fn start_with(config: &Path, ring_timeout: Duration) -> Proxied {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (phone_port, forwarding_port) = (free_udp_port(), free_udp_port());
        let data = routing_data(dir.path(), phone_port, forwarding_port);
        let switchboard = Server::start_with(&[
            "--routing",
            data.to_str().expect("a UTF-8 path"),
            "--diversion",
            "header",
        ]);
        let kamailio = Kamailio::start(
            config,
            &[
                format!("REDIRECT_SERVER=\"sip:{}\"", switchboard.udp),
                format!("RING_TIMEOUT={}", ring_timeout.as_millis()),
            ],
        );
        Proxied {
            dir,
            phone_port,
            forwarding_port,
            kamailio,
            _switchboard: switchboard,
        }
    }

    /// A SIPp UAS running `scenario` (from `tests/interop/`) for one call at
    /// `port`, calling itself `name` (uas_answer.xml's X-Answered-By);
    /// returns once it listens.
    fn uas(&self, name: &str, scenario: &str, port: u16) -> Process {
        let mut uas = sipp(
            self.dir.path(),
            name,
            &[
                "-sf".into(),
                project_path(&format!("tests/interop/{scenario}"))
                    .display()
                    .to_string(),
                "-key".into(),
                "answerer".into(),
                name.into(),
                "-i".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-m".into(),
                "1".into(),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !udp_port_bound(port) {
            if let Some(status) = uas.child.try_wait().expect("wait") {
                panic!(
                    "SIPp {name} exited at start ({status})\n{}",
                    report(self.dir.path(), name)
                );
            }
            assert!(
                Instant::now() < deadline,
                "SIPp {name} does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        uas
    }

    /// The phone, running `scenario`.
    fn phone(&self, scenario: &str) -> Process {
        self.uas("phone", scenario, self.phone_port)
    }

    /// The forwarding target: answers, checking the Diversion.
    fn forwarding(&self) -> Process {
        self.uas("forwarding", "uas_answer.xml", self.forwarding_port)
    }

    /// One call from a SIPp UAC into Kamailio for `DIALED`, which must be
    /// answered by `expected` ("phone" or "forwarding"); its exit status
    /// and how long it took.
    fn call(&self, expected: &str) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let mut uac = sipp(
            self.dir.path(),
            "caller",
            &[
                "-sf".into(),
                project_path("tests/interop/uac_chain.xml")
                    .display()
                    .to_string(),
                "-s".into(),
                DIALED.into(),
                "-set".into(),
                "expected".into(),
                expected.into(),
                "-i".into(),
                "127.0.0.1".into(),
                "-p".into(),
                free_udp_port().to_string(),
                "-m".into(),
                "1".into(),
                "-recv_timeout".into(),
                "30000".into(),
                self.kamailio.addr.to_string(),
            ],
        );
        let status = uac.wait();
        (status, started.elapsed())
    }

    /// Every SIPp log and Kamailio's, for a failure message.
    fn report(&self) -> String {
        let mut text = String::new();
        for name in ["caller", "phone", "forwarding"] {
            text.push_str(&report(self.dir.path(), name));
            text.push('\n');
        }
        text.push_str("--- kamailio\n");
        text.push_str(&self.kamailio.log());
        text
    }
}

/// The phone rings (180) and never answers: Kamailio's ring timer CANCELs
/// it and the call goes on to the forwarding target, which answers; the
/// INVITE reaching it carries the 302's Diversion (uas_answer.xml checks
/// it: exactly one, naming the dialed number).
#[test]
fn kamailio_rings_the_forwarding_target_when_the_phone_rings_out() {
    let chain = Proxied::start(RING_OUT);
    let mut phone = chain.phone("uas_ring_no_answer.xml");
    let mut forwarding = chain.forwarding();
    let (caller, took) = chain.call("forwarding");
    let phone_status = phone.wait();
    let forwarding_status = forwarding.wait();
    assert!(
        caller.success(),
        "the caller did not get the forwarding target's 200 (exit {caller})\n{}",
        chain.report()
    );
    assert!(
        phone_status.success(),
        "the phone did not ring and get a CANCEL, with the Diversion (exit {phone_status})\n{}",
        chain.report()
    );
    assert!(
        forwarding_status.success(),
        "the forwarding target did not get the call with the Diversion (exit {forwarding_status})\n{}",
        chain.report()
    );
    assert!(
        took >= RING_OUT,
        "answered by the forwarding target after {took:?}: before the phone rang out\n{}",
        chain.report()
    );
    eprintln!("rang out after {RING_OUT:?}, answered by the forwarding target: {took:?}");
}

/// The phone is busy (486): the forwarding target gets the call at once,
/// long before the ring timer, with the Diversion.
#[test]
fn kamailio_rings_the_forwarding_target_at_once_when_the_phone_is_busy() {
    let chain = Proxied::start(NEVER_RINGS_OUT);
    let mut phone = chain.phone("uas_busy.xml");
    let mut forwarding = chain.forwarding();
    let (caller, took) = chain.call("forwarding");
    let phone_status = phone.wait();
    let forwarding_status = forwarding.wait();
    assert!(
        caller.success(),
        "the caller did not get the forwarding target's 200 (exit {caller})\n{}",
        chain.report()
    );
    assert!(
        phone_status.success(),
        "the phone did not get the call with the Diversion (exit {phone_status})\n{}",
        chain.report()
    );
    assert!(
        forwarding_status.success(),
        "the forwarding target did not get the call with the Diversion (exit {forwarding_status})\n{}",
        chain.report()
    );
    assert!(
        took < NEVER_RINGS_OUT / 2,
        "the busy phone's call took {took:?}: Kamailio waited for its timer\n{}",
        chain.report()
    );
    eprintln!("busy phone, answered by the forwarding target: {took:?}");
}

/// The phone answers: the call is the phone's, and nothing at all reaches
/// the forwarding target (a plain socket there, which would see any
/// INVITE, CANCEL or retransmission).
#[test]
fn kamailio_never_rings_the_forwarding_target_when_the_phone_answers() {
    let chain = Proxied::start(NEVER_RINGS_OUT);
    let forwarding = UdpClient::bind(&format!("127.0.0.1:{}", chain.forwarding_port));
    let mut phone = chain.phone("uas_answer.xml");
    let (caller, took) = chain.call("phone");
    let phone_status = phone.wait();
    assert!(
        caller.success(),
        "the caller did not get the phone's 200 (exit {caller})\n{}",
        chain.report()
    );
    assert!(
        phone_status.success(),
        "the phone did not answer the call with the Diversion (exit {phone_status})\n{}",
        chain.report()
    );
    if let Some(datagram) = forwarding.receive_within(Duration::from_secs(1)) {
        panic!(
            "the forwarding target got a message although the phone answered:\n{}\n{}",
            String::from_utf8_lossy(&datagram),
            chain.report()
        );
    }
    eprintln!("answered by the phone: {took:?}");
}

/// Without the config's `route(DIVERSION)` lines, the INVITEs Kamailio
/// sends on carry no Diversion: neither `uac_redirect` nor `tm` copies the
/// 302's by itself. (And the UAS scenarios' check bites.)
#[test]
fn kamailio_does_not_copy_the_diversion_by_itself() {
    let config = fs::read_to_string(project_path("tests/interop/kamailio-serial-forking.cfg"))
        .expect("the config");
    let calls = config
        .lines()
        .filter(|l| l.trim() == "route(DIVERSION);")
        .count();
    assert_eq!(calls, 2, "one in each failure_route");
    let stripped = config.replace("route(DIVERSION);", "# route(DIVERSION);");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("no-diversion.cfg");
    fs::write(&path, stripped).expect("config written");

    let chain = Proxied::start_with(&path, NEVER_RINGS_OUT);
    let mut phone = chain.phone("uas_busy.xml");
    let mut forwarding = chain.forwarding();
    // The call itself still goes through: SIPp marks a failed check at
    // the end of the call.
    let _ = chain.call("forwarding");
    let phone_status = phone.wait();
    let forwarding_status = forwarding.wait();
    for (name, status) in [("phone", phone_status), ("forwarding", forwarding_status)] {
        let errors = fs::read_to_string(chain.dir.path().join(format!("{name}.errors.log")))
            .unwrap_or_default();
        assert!(
            !status.success() && errors.contains("header Diversion: not found"),
            "the {name} got a Diversion that the script did not add (exit {status})\n{}",
            chain.report()
        );
    }
}

/// The 486 Busy Here a phone answers to `invite`.
fn busy_answer(invite: &str) -> String {
    let mut answer = String::from("SIP/2.0 486 Busy Here\r\n");
    for line in invite.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                answer.push_str(line);
                answer.push_str("\r\n");
            }
            "to" | "t" => {
                answer.push_str(line);
                answer.push_str(";tag=busy\r\n");
            }
            _ => {}
        }
    }
    answer.push_str("Content-Length: 0\r\n\r\n");
    answer
}

/// baresip dials the number straight at switchboard. It follows the 302
/// (libre's sipsess redirects to the first Contact header), so the phone
/// (q=1.0, listed first) gets the INVITE; the phone is busy, and baresip
/// ends the call there with 486: the forwarding target (q=0.5) never gets
/// anything. (Observed with baresip 1.0.0: it takes the first Contact
/// header whatever the q; it copies no Diversion either.)
#[test]
fn baresip_follows_the_302_to_the_first_contact_only() {
    require("baresip", "baresip-core");
    let modules = Path::new("/usr/lib/baresip/modules");
    assert!(
        modules.join("menu.so").exists(),
        "baresip's modules are not in {}: `apt-get install -y baresip-core`",
        modules.display()
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let phone = UdpClient::new();
    let forwarding = UdpClient::new();
    let data = routing_data(dir.path(), phone.port(), forwarding.port());
    let switchboard = Server::start_with(&[
        "--routing",
        data.to_str().expect("a UTF-8 path"),
        "--diversion",
        "header",
    ]);

    // Headless: no audio devices, no UI but the menu's commands (-e).
    let conf = dir.path().join("baresip");
    fs::create_dir(&conf).expect("config dir");
    fs::write(
        conf.join("config"),
        format!(
            "sip_listen\t127.0.0.1:0\nmodule_path\t{}\nmodule\tg711.so\n\
             module\taccount.so\nmodule\tmenu.so\n",
            modules.display()
        ),
    )
    .expect("config written");
    fs::write(conf.join("accounts"), "<sip:caller@127.0.0.1>;regint=0\n").expect("accounts");
    let mut command = Command::new("baresip");
    command
        .arg("-f")
        .arg(&conf)
        .args(["-n", "127.0.0.1", "-t", "60", "-e"])
        .arg(format!("/dial sip:{DIALED}@{}", switchboard.udp))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(dir.path().join("baresip.stderr")).expect("stderr file"));
    let mut baresip = Process::spawn(command, "baresip");
    let stdout = baresip.child.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // What baresip printed so far, for failure messages.
    let said = |lines: &mpsc::Receiver<String>| lines.try_iter().collect::<Vec<_>>().join("\n");

    // The phone gets the INVITE and is busy.
    phone
        .socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = vec![0u8; 65_535];
    let (invite, sender) = loop {
        let Ok((n, sender)) = phone.socket.recv_from(&mut buf) else {
            panic!("no INVITE at the phone; baresip said:\n{}", said(&lines));
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("INVITE ") {
            break (text, sender);
        }
    };
    let request_line = invite.lines().next().unwrap_or("").to_owned();
    assert_eq!(
        request_line,
        format!("INVITE sip:phone@127.0.0.1:{} SIP/2.0", phone.port()),
        "{invite}"
    );
    phone.send(sender, busy_answer(&invite).as_bytes());

    // baresip gives up on the busy phone...
    let mut transcript = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            panic!(
                "baresip did not end the call; it said:\n{}",
                transcript.join("\n")
            );
        };
        let closed = line.contains("session closed");
        transcript.push(line);
        if closed {
            break;
        }
    }
    let transcript = transcript.join("\n");
    assert!(
        transcript.contains("session closed: 486 Busy Here"),
        "{transcript}"
    );
    // ... and tries nothing else: anything it sent on after the 486 would
    // have reached the forwarding target by now.
    if let Some(datagram) = forwarding.receive_within(Duration::from_secs(2)) {
        panic!(
            "baresip tried the forwarding target (q=0.5) after the busy phone:\n{}",
            String::from_utf8_lossy(&datagram)
        );
    }
    drop(baresip);
    eprintln!(
        "baresip: 302 followed to the first Contact ({request_line}), 486 there ended the call; \
         Diversion copied: {}",
        invite
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("diversion:"))
    );
}
