//! A test rig for proxy mode with real SIP software (tests/proxy_sipp.rs,
//! tests/proxy_interop.rs): switchboard in proxy mode on loopback port 0
//! with routing data written at run time (a number whose user's phone is a
//! `sip:` URI at one port and whose `forward_to` is one at another, with
//! `on_no_answer: forward`), a short RFC 3261 T1 from a settings file, the
//! admin endpoint for `/metrics`, and SIPp processes run bounded with their
//! message traces kept for the checks and for failure messages.
//!
//! Included with `#[path]` by the test files that use it, beside `mod common`.

#![allow(dead_code)]

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Server, free_udp_port, http_get, metric_value, project_path, require};

/// The number every call dials.
pub const DIALED: &str = "+18005550188";

/// The Diversion a leg carries, naming the dialed number as switchboard
/// writes it for a caller on 127.0.0.1, with this reason.
pub fn diversion(reason: &str) -> String {
    format!("<sip:{DIALED}@127.0.0.1;user=phone>;reason={reason};counter=1")
}

/// A child process in a process group of its own, killed with its group
/// when dropped.
pub struct Process {
    pub child: Child,
    name: String,
}

impl Process {
    pub fn spawn(mut command: Command, name: &str) -> Process {
        let child = command
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process {
            child,
            name: name.to_owned(),
        }
    }

    /// Waits for the exit, killing the process (and failing) after `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if started.elapsed() > limit {
                self.kill();
                panic!("{} still running after {limit:?}: killed", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
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
pub fn udp_port_bound(port: u16) -> bool {
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

/// Whether something listens on 127.0.0.1:`port` over TCP.
pub fn tcp_port_listening(port: u16) -> bool {
    tcp_sockets(port)
        .iter()
        .any(|(local, _, state)| *local == port && state == "0A")
}

/// The TCP sockets in Linux's table with `port` at either end: local
/// port, remote port and state (`01` established, `0A` listening).
pub fn tcp_sockets(port: u16) -> Vec<(u16, u16, String)> {
    let port_of = |address: &str| {
        address
            .rsplit(':')
            .next()
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
    };
    fs::read_to_string("/proc/net/tcp")
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local = port_of(fields.get(1)?)?;
                    let remote = port_of(fields.get(2)?)?;
                    let state = fields.get(3)?.to_string();
                    (local == port || remote == port).then_some((local, remote, state))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Starts SIPp with these arguments, bounded by its own `-timeout`
/// (`timeout`, SIPp's spelling: `60s`) and `-timeout_error`; everything it
/// writes goes to `dir` as `NAME.*`, its messages to `NAME.messages.log`
/// unless `trace` is false (the load runs).
pub fn sipp(dir: &Path, name: &str, args: &[String], timeout: &str, trace: bool) -> Process {
    require("sipp", "sip-tester");
    let mut command = Command::new("sipp");
    command
        .args(args)
        .args(["-timeout", timeout, "-timeout_error", "-nostdin"])
        .args(["-trace_err", "-error_file"])
        .arg(dir.join(format!("{name}.errors.log")))
        .args(["-trace_screen", "-screen_file"])
        .arg(dir.join(format!("{name}.screen.log")));
    if trace {
        command
            .args(["-trace_msg", "-message_file"])
            .arg(dir.join(format!("{name}.messages.log")));
    }
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(File::create(dir.join(format!("{name}.stdout"))).expect("stdout file"))
        .stderr(File::create(dir.join(format!("{name}.stderr"))).expect("stderr file"));
    Process::spawn(command, &format!("SIPp {name}"))
}

/// A SIPp scenario shipped in `sipp-scenarios/`.
pub fn scenario(file: &str) -> String {
    project_path(&format!("sipp-scenarios/{file}"))
        .display()
        .to_string()
}

/// SIPp's errors, the end of its screen and of its message trace, for a
/// failure message.
pub fn report(dir: &Path, name: &str) -> String {
    let read =
        |suffix: &str| fs::read_to_string(dir.join(format!("{name}.{suffix}"))).unwrap_or_default();
    let tail = |text: &str, max: usize| {
        let start = text.floor_char_boundary(text.len().saturating_sub(max));
        text[start..].to_owned()
    };
    let errors = read("errors.log");
    format!(
        "--- {name} errors (start)\n{}\n--- {name} screen (end)\n{}\n--- {name} messages (end)\n{}\n--- {name} stderr\n{}",
        &errors[..errors.floor_char_boundary(3000)],
        tail(&read("screen.log"), 2500),
        tail(&read("messages.log"), 5000),
        read("stderr")
    )
}

/// The SIP messages a SIPp trace (`-trace_msg`) shows as received, in
/// order.
pub fn received(dir: &Path, name: &str) -> Vec<String> {
    let log = fs::read_to_string(dir.join(format!("{name}.messages.log"))).unwrap_or_default();
    log.split("----------------------------------------------- ")
        .filter_map(|block| {
            let (head, message) = block.split_once("\n\n")?;
            head.contains("message received").then(|| {
                message
                    .trim_start_matches(['\r', '\n'])
                    .trim_end()
                    .to_owned()
            })
        })
        .collect()
}

/// The values of every header line named `name` in `message`.
pub fn headers<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    message
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

/// switchboard in proxy mode with a phone and a forwarding number at free
/// ports named in the routing data.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub phone_port: u16,
    pub forwarding_port: u16,
    pub server: Server,
}

/// How a rig's switchboard is started.
pub struct RigOptions<'a> {
    pub ring_seconds: u32,
    pub t1_ms: u64,
    /// `--next-hop`, when every leg goes to one address.
    pub next_hop: Option<String>,
    /// `proxy.max_calls`, when not the default.
    pub max_calls: Option<usize>,
    /// The user part of the phone's URI (`phone`).
    pub phone_user: &'a str,
    /// `--diversion` (`header`).
    pub diversion: &'a str,
    /// Other `serve` arguments.
    pub extra: &'a [&'a str],
    /// More lines of the settings file's `proxy:` section (each indented
    /// two spaces, ending in a newline).
    pub proxy_settings: &'a str,
}

impl Default for RigOptions<'_> {
    fn default() -> Self {
        RigOptions {
            ring_seconds: 20,
            t1_ms: 50,
            next_hop: None,
            max_calls: None,
            phone_user: "phone",
            diversion: "header",
            extra: &[],
            proxy_settings: "",
        }
    }
}

impl Rig {
    pub fn start(options: RigOptions<'_>) -> Rig {
        let (phone_port, forwarding_port) = (free_udp_port(), free_udp_port());
        Rig::start_at(options, phone_port, forwarding_port)
    }

    /// With the phone and the forwarding number at these ports (a lossy
    /// relay's, say).
    pub fn start_at(options: RigOptions<'_>, phone_port: u16, forwarding_port: u16) -> Rig {
        let dir = test_dir();
        let data = routing_data(dir.path(), options.phone_user, phone_port, forwarding_port);
        let settings = dir.path().join("switchboard.yaml");
        fs::write(
            &settings,
            format!(
                "proxy:\n  t1_ms: {}\n{}{}flood:\n  rate: 0\n",
                options.t1_ms,
                options
                    .max_calls
                    .map_or(String::new(), |n| format!("  max_calls: {n}\n")),
                options.proxy_settings,
            ),
        )
        .expect("settings written");
        let ring = options.ring_seconds.to_string();
        let mut args = vec![
            "--config",
            settings.to_str().expect("a UTF-8 path"),
            "--routing",
            data.to_str().expect("a UTF-8 path"),
            "--mode",
            "proxy",
            "--ring-seconds",
            &ring,
            "--diversion",
            options.diversion,
            "--admin",
            "127.0.0.1:0",
        ];
        if let Some(hop) = &options.next_hop {
            args.extend(["--next-hop", hop.as_str()]);
        }
        args.extend(options.extra.iter().copied());
        let log = dir.path().join("switchboard.log");
        let server = Server::start_logging(&args, &log);
        Rig {
            dir,
            phone_port,
            forwarding_port,
            server,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A SIPp UAS running `scenario` (from `sipp-scenarios/`) at `port`,
    /// calling itself `name` (X-Answered-By), with these other arguments
    /// (one call and a message trace unless they say `-m`); returns once it
    /// listens.
    pub fn uas(&self, name: &str, scenario_file: &str, port: u16, extra: &[&str]) -> Process {
        let mut args: Vec<String> = vec![
            "-sf".into(),
            scenario(scenario_file),
            "-key".into(),
            "answerer".into(),
            name.into(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ];
        if !extra.contains(&"-m") {
            args.extend(["-m".into(), "1".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        // A load run (more than one call) keeps no message trace.
        let trace = !extra.contains(&"-m");
        let mut uas = sipp(self.path(), name, &args, "120s", trace);
        if extra.windows(2).any(|w| w == ["-t", "t1"]) {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !tcp_port_listening(port) {
                assert!(
                    Instant::now() < deadline,
                    "{name} does not listen on TCP {port}\n{}",
                    report(self.path(), name)
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            wait_listening(&mut uas, port, || report(self.path(), name));
        }
        uas
    }

    /// One call from a SIPp UAC (`proxy_uac.xml`) to `DIALED` at `to`,
    /// expecting `status` from `answerer` ("-" when not a 200); its exit
    /// status and how long it took.
    pub fn call_to(
        &self,
        to: std::net::SocketAddr,
        status: u16,
        answerer: &str,
    ) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let mut uac = sipp(
            self.path(),
            "caller",
            &[
                "-sf".into(),
                scenario("proxy_uac.xml"),
                "-s".into(),
                DIALED.into(),
                "-set".into(),
                "expected_status".into(),
                status.to_string(),
                "-set".into(),
                "expected_answerer".into(),
                answerer.into(),
                "-d".into(),
                "300".into(),
                "-i".into(),
                "127.0.0.1".into(),
                "-p".into(),
                free_udp_port().to_string(),
                "-m".into(),
                "1".into(),
                "-recv_timeout".into(),
                "30000".into(),
                to.to_string(),
            ],
            "60s",
            true,
        );
        let status = uac.wait(Duration::from_secs(90));
        (status, started.elapsed())
    }

    /// As [`Rig::call_to`], straight at switchboard.
    pub fn call(&self, status: u16, answerer: &str) -> (ExitStatus, Duration) {
        self.call_to(self.server.udp, status, answerer)
    }

    /// The first INVITE the SIPp process `name` received.
    pub fn invite_at(&self, name: &str) -> String {
        received(self.path(), name)
            .into_iter()
            .find(|m| m.starts_with("INVITE "))
            .unwrap_or_else(|| panic!("{name} received no INVITE\n{}", self.report(&[name])))
    }

    /// A `/metrics` scrape.
    pub fn metrics(&self) -> String {
        let admin = self.server.admin.expect("started with --admin");
        let (code, body) = http_get(admin, "/metrics");
        assert_eq!(code, 200, "{body}");
        body
    }

    /// One sample of the scrape (0 when absent).
    pub fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.metrics(), sample).unwrap_or(0.0)
    }

    /// Waits (at most 2 s) until the sample reads `value` (the driver
    /// counts some things just after sending what the test saw), and
    /// returns what it reads last.
    pub fn metric_settles(&self, sample: &str, value: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let now = self.metric(sample);
            if now == value || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most `limit`) until no call is in flight; how long it took.
    pub fn wait_idle(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let in_flight = self.metric("switchboard_proxy_calls_in_flight");
            if in_flight == 0.0 {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{in_flight} calls still in flight after {limit:?}\n{}",
                self.metrics()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The SIPp logs of these processes and switchboard's log.
    pub fn report(&self, names: &[&str]) -> String {
        let mut text = String::new();
        for name in names {
            text.push_str(&report(self.path(), name));
            text.push('\n');
        }
        let log = fs::read_to_string(self.path().join("switchboard.log")).unwrap_or_default();
        let start = log.floor_char_boundary(log.len().saturating_sub(3000));
        text.push_str("--- switchboard log (end)\n");
        text.push_str(&log[start..]);
        text
    }
}

/// A temporary directory for one test's files, kept (and named on
/// stderr) when `PROXY_TEST_KEEP` is set, for looking at the traces.
pub fn test_dir() -> tempfile::TempDir {
    let keep = std::env::var_os("PROXY_TEST_KEEP").is_some();
    let dir = tempfile::Builder::new()
        .prefix("proxy-test")
        .disable_cleanup(keep)
        .tempdir()
        .expect("a temporary directory");
    if keep {
        eprintln!("files kept in {}", dir.path().display());
    }
    dir
}

/// Waits until `process` listens on UDP `port` (failing after 20 s or when
/// it exits first).
pub fn wait_listening(process: &mut Process, port: u16, report: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !udp_port_bound(port) {
        if let Some(status) = process.child.try_wait().expect("wait") {
            panic!("{} exited at start ({status})\n{}", process.name, report());
        }
        assert!(
            Instant::now() < deadline,
            "{} does not listen on {port}",
            process.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Routing data where `DIALED` is dana's number, `on_no_answer: forward`,
/// dana's phone a SIP URI for `user` at `phone` and the number's
/// `forward_to` one at `forwarding`, both on 127.0.0.1 (proxy mode without
/// a next hop sends each leg to its target's host).
pub fn routing_data(dir: &Path, user: &str, phone: u16, forwarding: u16) -> PathBuf {
    let data = format!(
        r#"
accounts:
  - id: proxied
    users:
      - id: dana
        phone: "sip:{user}@127.0.0.1:{phone}"
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
