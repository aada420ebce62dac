//! End to end over TLS, loopback only: the real `switchboard` binary with a
//! TLS listener on port 0 and a certificate made by `openssl req` in a
//! temporary directory, driven by the real `sipload` (run closed and open
//! loop, verify, handshakes, and a refused certificate). Every run is bounded
//! by its own `-d`/`-n` and `--timeout-ms`, and every child is killed after
//! `common::LIMIT` at the latest.
//!
//! `switchboard` is another package of the workspace, so cargo gives no
//! `CARGO_BIN_EXE_` for it: it is taken from the directory sipload was built
//! into (`cargo test --workspace` builds both), else built there by cargo.

mod common;

use common::{SIPLOAD, n, sipload, summary};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
/// calls.csv's first row: a 302 under config/routing.yaml.
const ROW_302: &str = "+18005550100;+16505550123;302;+14155550101;127.0.0.1;\n";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The switchboard binary of the same profile as this test's sipload.
fn switchboard() -> PathBuf {
    let dir = Path::new(SIPLOAD).parent().expect("sipload's directory");
    let bin = dir.join("switchboard");
    if !bin.exists() {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cargo.args(["build", "-p", "switchboard", "--manifest-path"]);
        cargo.arg(root().join("Cargo.toml"));
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("run cargo build -p switchboard");
        assert!(status.success(), "cargo build -p switchboard failed");
    }
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

/// A self-signed certificate for `localhost` and its key. `CA:FALSE`:
/// webpki (rustls) refuses a CA certificate as a server's own, and `openssl
/// req -x509` marks one as a CA unless told.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (the openssl package)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A running switchboard, stopped when dropped.
struct Server {
    child: Child,
    tls: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server(cert: &Path, key: &Path) -> Server {
    let mut child = Command::new(switchboard())
        .arg("serve")
        .arg("--routing")
        .arg(root().join("config/routing.yaml"))
        .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
        .args(["--workers", "1", "--tls-cert"])
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchboard");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let tls = loop {
        let line = lines
            .next()
            .expect("switchboard printed its listening lines")
            .expect("read stdout");
        if let Some(addr) = line.strip_prefix("listening on tls ") {
            break addr.to_string();
        }
    };
    assert!(!tls.ends_with(":0"), "the real port is printed: {tls}");
    Server { child, tls }
}

/// Every request answered with a 302, none timed out, every 302 ACKed.
fn all_302(out: &Output) -> Value {
    let v = summary(out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["transport"], "tls", "{v}");
    let sent = n(&v, "sent");
    assert!(sent > 0, "{v}");
    assert_eq!(n(&v, "answered"), sent, "{v}");
    assert_eq!(n(&v, "timeouts"), 0, "{v}");
    assert_eq!(n(&v, "errors"), 0, "{v}");
    assert_eq!(v["codes"]["302"].as_u64(), Some(sent), "only 302s: {v}");
    assert_eq!(n(&v, "acks"), sent, "{v}");
    v
}

#[test]
fn sipload_over_tls_against_switchboard() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = certificate(dir.path());
    let calls = dir.path().join("calls.csv");
    std::fs::write(&calls, ROW_302).expect("write calls");
    let (cert_s, calls_s) = (cert.to_str().expect("path"), calls.to_str().expect("path"));
    let s = server(&cert, &key);
    let target = s.tls.as_str();

    // Closed loop, pipelined over two verified connections.
    let out = sipload(&[
        "run",
        target,
        "-t",
        "tls",
        "--tls-ca",
        cert_s,
        "-f",
        calls_s,
        "-s",
        "2",
        "-w",
        "20",
        "-n",
        "3000",
        "-d",
        "20",
        "--timeout-ms",
        "5000",
    ]);
    assert_eq!(n(&all_302(&out), "sent"), 3000);

    // Open loop, unverified (the benchmark's option).
    let out = sipload(&[
        "run",
        target,
        "-t",
        "tls",
        "--tls-insecure",
        "-f",
        calls_s,
        "-r",
        "1000",
        "-d",
        "1",
        "--timeout-ms",
        "5000",
    ]);
    assert!(n(&all_302(&out), "sent") >= 900);

    // verify over TLS: every row of calls.csv as it says (302s, 404s, 480s).
    let csv = root().join("sipp-scenarios/calls.csv");
    let out = sipload(&[
        "verify",
        target,
        "-t",
        "tls",
        "--tls-ca",
        cert_s,
        "-f",
        csv.to_str().expect("path"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(" 0 mismatch"), "{text}");

    // Handshakes: a new connection each, every one answered.
    let out = sipload(&[
        "handshakes",
        target,
        "--tls-ca",
        cert_s,
        "-f",
        calls_s,
        "-n",
        "20",
        "-d",
        "20",
    ]);
    let v = all_302(&out);
    assert_eq!(v["mode"], "handshakes");
    assert_eq!(n(&v, "handshakes"), 20, "{v}");
    assert_eq!(n(&v, "handshake_failures"), 0, "{v}");
    assert!(
        v["rate_handshakes"].as_f64().is_some_and(|r| r > 0.0),
        "{v}"
    );

    // A certificate for another name is refused before any load.
    let out = sipload(&[
        "run",
        target,
        "-t",
        "tls",
        "--tls-ca",
        cert_s,
        "--tls-server-name",
        "sip.example.com",
        "-n",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("certificate"), "{err}");
    assert!(out.stdout.is_empty());
}
