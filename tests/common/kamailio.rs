//! Running Kamailio (Debian package `kamailio`) for a test: on loopback, its
//! pid file, runtime files and log in a temporary directory, stopped when
//! dropped. Required, not optional: a missing binary fails the test with
//! the install command.
//!
//! Kamailio forks its workers; killing the main process alone would leave
//! them running. It is started in a process group of its own, and the whole
//! group is stopped: SIGTERM, then SIGKILL for whatever is left.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{UdpClient, request};

pub struct Kamailio {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts Kamailio with `config` on a free loopback port (passed as the
    /// `SIP_PORT` define, with `LISTEN_IP=127.0.0.1`) and these other
    /// `-A` defines; returns once it answers an OPTIONS, whatever the answer.
    pub fn start(config: &Path, defines: &[String]) -> Kamailio {
        let program = std::env::var("KAMAILIO").unwrap_or_else(|_| "kamailio".to_owned());
        if Command::new(&program).arg("-v").output().is_err() {
            panic!(
                "`{program}` not found: `scripts/test` installs it \
                 (or `apt-get install -y kamailio`, or set KAMAILIO)"
            );
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = super::free_udp_port();
        let run = dir.path().display().to_string();
        let mut command = Command::new(&program);
        command
            .arg("-f")
            .arg(config)
            .args(["-DD", "-E", "--atexit=no", "-n", "2", "-m", "64", "-M", "8"])
            .args(["-Y", &run, "-w", &run, "-P", &format!("{run}/kamailio.pid")])
            .args([
                "-A",
                &format!("SIP_PORT={port}"),
                "-A",
                "LISTEN_IP=127.0.0.1",
            ]);
        for define in defines {
            command.args(["-A", define]);
        }
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("kamailio.log")).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let mut kamailio = Kamailio {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        kamailio.wait_until_answering();
        kamailio
    }

    fn wait_until_answering(&mut self) {
        let probe = UdpClient::new();
        let ping = request(
            &[
                &format!("OPTIONS sip:{} SIP/2.0", self.addr),
                "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-kamailio-up;rport",
                "Max-Forwards: 70",
                "From: <sip:test@127.0.0.1>;tag=up",
                "To: <sip:127.0.0.1>",
                "Call-ID: kamailio-up",
                "CSeq: 1 OPTIONS",
                "Content-Length: 0",
                "",
            ],
            probe.port(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("Kamailio exited at start ({status}):\n{}", self.log());
            }
            probe.send(self.addr, &ping);
            if probe.receive_within(Duration::from_millis(200)).is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Kamailio did not start:\n{}",
                self.log()
            );
        }
    }

    /// What Kamailio wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |name: &str| {
            let _ = Command::new("kill")
                .args([name, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The workers, and the main process if it did not stop.
        signal("-KILL");
        let _ = self.child.wait();
    }
}
