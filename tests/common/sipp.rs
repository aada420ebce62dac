//! Running SIPp in the interop tests: started bounded by its own
//! `-timeout` and waited for under a hard limit, its logs in a directory
//! and read back for failure messages, and the rows of `calls.csv` a proxy
//! in front of switchboard can follow.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{project_path, require};

/// Waits for `child`, killing it (and failing) after `limit`.
pub fn wait_bounded(child: &mut Child, what: &str, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts SIPp with these arguments, giving up by itself (and failing)
/// after `timeout` (SIPp's spelling: `60s`); everything it writes goes to
/// `dir` as `NAME.*`.
pub fn start(dir: &Path, name: &str, args: &[String], timeout: &str) -> Child {
    require("sipp", "sip-tester");
    Command::new("sipp")
        .args(args)
        .args(["-timeout", timeout, "-timeout_error", "-nostdin"])
        .args(["-trace_err", "-error_file"])
        .arg(dir.join(format!("{name}.errors.log")))
        .args(["-trace_screen", "-screen_file"])
        .arg(dir.join(format!("{name}.screen.log")))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(File::create(dir.join(format!("{name}.stdout"))).expect("stdout file"))
        .stderr(File::create(dir.join(format!("{name}.stderr"))).expect("stderr file"))
        .spawn()
        .expect("sipp starts")
}

/// SIPp's screen and error log, for a failure message.
pub fn report(dir: &Path, name: &str) -> String {
    let read =
        |suffix: &str| fs::read_to_string(dir.join(format!("{name}.{suffix}"))).unwrap_or_default();
    let screen = read("screen.log");
    let start = screen.floor_char_boundary(screen.len().saturating_sub(4000));
    let errors = read("errors.log");
    format!(
        "--- {name} screen (end)\n{}\n--- {name} errors (start)\n{}\n--- stderr\n{}",
        &screen[start..],
        &errors[..errors.floor_char_boundary(3000)],
        read("stderr")
    )
}

/// The rows of `sipp-scenarios/calls.csv` whose 302 names a number at the
/// default template's host (a proxy can follow those to the phone
/// network), and its 480 and 404 rows, as `uac_via_proxy.xml` expects them.
pub fn proxy_rows() -> Vec<String> {
    let csv = fs::read_to_string(project_path("sipp-scenarios/calls.csv")).expect("calls.csv");
    csv.lines()
        .skip(1)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|line| {
            let f: Vec<&str> = line.split(';').collect();
            match (f.get(2).copied(), f.get(4).copied()) {
                (Some("302"), Some("127.0.0.1")) => {
                    Some(format!("{};{};486;{};", f[0], f[1], f[3]))
                }
                (Some(code @ ("480" | "404")), _) => Some(format!("{};{};{code};;", f[0], f[1])),
                _ => None,
            }
        })
        .collect()
}
