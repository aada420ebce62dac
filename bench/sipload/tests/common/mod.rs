//! What both end-to-end tests need: running the real `sipload` with a time
//! limit, and reading its JSON line.

#![allow(dead_code)]

use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SIPLOAD: &str = env!("CARGO_BIN_EXE_sipload");
/// The longest any child may run.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Runs `sipload ARGS`, killed after LIMIT.
pub fn sipload(args: &[&str]) -> Output {
    let mut child = Command::new(SIPLOAD)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sipload");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("sipload {args:?} ran longer than {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// The JSON line of a `run`, checked to be the only line on stdout.
pub fn summary(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one JSON line, got {text:?}; stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(lines[0]).expect("valid JSON")
}

pub fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}
