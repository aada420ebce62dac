//! `sipload run` (load, one JSON line), `sipload verify` (answers against a
//! calls file's expectations) and `sipload handshakes` (new TLS connections per
//! second, one JSON line). Exit status: 0 all answered / all match, 3 some
//! timed out (run, handshakes), 2 usage errors, 1 anything else.

use clap::{CommandFactory, Parser, error::ErrorKind};
use sipload::cli::{self, Cli, Command, HandshakesArgs, RunArgs, Transport, VerifyArgs};
use sipload::load::{self, Setup};
use sipload::{csv, handshakes, report, sys, verify};
use std::process::ExitCode;
use std::time::Duration;

fn usage(msg: String) -> ! {
    Cli::command().error(ErrorKind::ValueValidation, msg).exit()
}

fn run(a: RunArgs) -> ExitCode {
    let target = cli::resolve(&a.target, a.allow_non_loopback).unwrap_or_else(|e| usage(e));
    let duration = cli::seconds("--duration", a.duration).unwrap_or_else(|e| usage(e));
    if let Some(r) = a.rate
        && !(r.is_finite() && r > 0.0)
    {
        usage(format!(
            "--rate must be a positive number of requests per second, not {r}"
        ));
    }
    let window = a
        .window
        .unwrap_or(if a.rate.is_some() { 10_000 } else { 100 }) as usize;
    if window < usize::from(a.threads) {
        usage(format!(
            "--window ({window}) must be at least --threads ({})",
            a.threads
        ));
    }
    if window / usize::from(a.threads) >= sipload::message::MAX_SLOTS {
        usage(format!(
            "--window is at most {} per thread",
            sipload::message::MAX_SLOTS - 1
        ));
    }
    let tls = a.tls.client(a.transport, true).unwrap_or_else(|e| usage(e));
    let Some(rows) = calls(a.calls.as_deref()) else {
        return ExitCode::from(1);
    };
    let setup = Setup {
        target,
        transport: a.transport,
        sockets: usize::from(a.sockets),
        threads: usize::from(a.threads),
        window,
        rate: a.rate,
        duration,
        requests: a.requests,
        timeout: Duration::from_millis(a.timeout_ms),
        tick: Duration::from_micros(a.tick_us),
        once: false,
        tls,
    };
    sys::install_stop_handler();
    let out = match load::execute(&setup, &rows, || ()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sipload: {e}");
            return ExitCode::from(1);
        }
    };
    let summary = report::summary(&setup, &out, sys::cpu_times());
    println!("{summary}");
    if out.stats.timeouts > 0 {
        eprintln!(
            "sipload: {} of {} requests timed out",
            out.stats.timeouts, out.stats.sent
        );
    }
    ExitCode::from(report::exit_code(&out) as u8)
}

/// The rows of `path`, or the default row; None (the error printed) when the
/// file cannot be used.
fn calls(path: Option<&std::path::Path>) -> Option<Vec<csv::Row>> {
    match path {
        Some(path) => match csv::load(path) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("sipload: {e}");
                None
            }
        },
        None => Some(csv::default_rows()),
    }
}

fn verify(a: VerifyArgs) -> ExitCode {
    let target = cli::resolve(&a.target, a.allow_non_loopback).unwrap_or_else(|e| usage(e));
    let tls = a.tls.client(a.transport, true).unwrap_or_else(|e| usage(e));
    let mut rows = match csv::load(&a.calls) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sipload: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(n) = a.limit {
        rows.truncate(n);
    }
    let expects: Result<Vec<_>, _> = rows.iter().map(verify::expectation).collect();
    let expects = match expects {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sipload: {}: {e}", a.calls.display());
            return ExitCode::from(1);
        }
    };
    let setup = Setup {
        target,
        transport: a.transport,
        sockets: 1,
        threads: 1,
        window: a.window as usize,
        rate: None,
        // Bounded by the rows: each is sent once and answered or timed out.
        duration: Duration::from_secs(1_000_000),
        requests: None,
        timeout: Duration::from_millis(a.timeout_ms),
        tick: Duration::from_micros(50),
        once: true,
        tls,
    };
    sys::install_stop_handler();
    let out = match load::execute(&setup, &rows, || verify::Collector::new(rows.len())) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sipload: {e}");
            return ExitCode::from(1);
        }
    };
    let got = out
        .sinks
        .into_iter()
        .next()
        .map(|c| c.got)
        .unwrap_or_default();
    if verify::report(&rows, &expects, &got) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn handshakes(a: HandshakesArgs) -> ExitCode {
    let target = cli::resolve(&a.target, a.allow_non_loopback).unwrap_or_else(|e| usage(e));
    let duration = cli::seconds("--duration", a.duration).unwrap_or_else(|e| usage(e));
    // No resumption: every connection pays for a full handshake.
    let tls = a
        .tls
        .client(Transport::Tls, false)
        .unwrap_or_else(|e| usage(e));
    let Some(rows) = calls(a.calls.as_deref()) else {
        return ExitCode::from(1);
    };
    let setup = Setup {
        target,
        transport: Transport::Tls,
        sockets: 1,
        threads: 1,
        window: 1,
        rate: None,
        duration,
        requests: a.requests,
        timeout: Duration::from_millis(a.timeout_ms),
        tick: Duration::from_micros(50),
        once: false,
        tls,
    };
    sys::install_stop_handler();
    let h = match handshakes::execute(&setup, &rows) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("sipload: {e}");
            return ExitCode::from(1);
        }
    };
    let mut summary = report::summary(&setup, &h.outcome, sys::cpu_times());
    report::add_handshakes(&mut summary, &h);
    println!("{summary}");
    if h.outcome.stats.timeouts > 0 {
        eprintln!(
            "sipload: {} of {} INVITEs timed out",
            h.outcome.stats.timeouts, h.outcome.stats.sent
        );
    }
    match report::exit_code(&h.outcome) {
        0 if h.failures > 0 => ExitCode::from(1),
        c => ExitCode::from(c as u8),
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(a) => run(a),
        Command::Verify(a) => verify(a),
        Command::Handshakes(a) => handshakes(a),
    }
}
