//! `sipload run` (load, one JSON line) and `sipload verify` (answers against a
//! calls file's expectations). Exit status: 0 all answered / all match, 3 some
//! timed out (run), 2 usage errors, 1 anything else.

use clap::{CommandFactory, Parser, error::ErrorKind};
use sipload::cli::{self, Cli, Command, RunArgs, VerifyArgs};
use sipload::load::{self, Setup};
use sipload::{csv, report, sys, verify};
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
    let rows = match &a.calls {
        Some(path) => match csv::load(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sipload: {e}");
                return ExitCode::from(1);
            }
        },
        None => csv::default_rows(),
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

fn verify(a: VerifyArgs) -> ExitCode {
    let target = cli::resolve(&a.target, a.allow_non_loopback).unwrap_or_else(|e| usage(e));
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

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(a) => run(a),
        Command::Verify(a) => verify(a),
    }
}
