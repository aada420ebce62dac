//! `proxyload PROXY --phone-port PORT [--window N] [--duration SECS]`:
//! proxied calls in closed loop through a SIP proxy (see `proxied`). The
//! caller sends INVITEs to PROXY; the proxy must relay them to
//! 127.0.0.1:PORT, where the phone answers 180 and 200; the caller ACKs
//! the 200 through the proxy. N calls are kept in flight. Prints one JSON
//! line: calls answered, calls failed, seconds, calls per second, ACKs the
//! phone saw.

use clap::Parser;
use sipload::batch::{RecvBatch, SendBatch};
use sipload::proxied::{self, Ends, InFlight};
use sipload::{cli, sys};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "proxyload",
    about = "Proxied SIP calls in closed loop, caller and phone in one"
)]
struct Args {
    /// The proxy under test, host:port (loopback).
    proxy: String,
    /// The phone's UDP port on 127.0.0.1: the proxy's next hop.
    #[arg(long)]
    phone_port: u16,
    /// Calls in flight.
    #[arg(long, default_value_t = 200)]
    window: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// The number dialed.
    #[arg(long, default_value = "+18005550100")]
    dialed: String,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxyload: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let proxy = cli::resolve(&args.proxy, false)?;
    if !(args.duration > 0.0 && args.duration <= 3600.0) {
        return Err("--duration must be within (0, 3600] seconds".into());
    }
    let window = args.window.clamp(1, 100_000);
    let caller = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    caller.connect(proxy).map_err(|e| format!("connect: {e}"))?;
    let phone = UdpSocket::bind(("127.0.0.1", args.phone_port))
        .map_err(|e| format!("bind 127.0.0.1:{}: {e}", args.phone_port))?;
    for s in [&caller, &phone] {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        sys::set_buffers(s.as_raw_fd(), 4 << 20);
    }
    let ends = Ends {
        caller: caller.local_addr().map_err(|e| e.to_string())?.to_string(),
        phone: phone.local_addr().map_err(|e| e.to_string())?.to_string(),
        proxy: proxy.to_string(),
        dialed: args.dialed,
        run: std::process::id(),
    };
    sys::install_stop_handler();
    let mut rx = RecvBatch::new(64, true, false);
    let mut to_proxy = SendBatch::new();
    let mut to_caller = SendBatch::new();
    let mut calls = InFlight::default();
    let (mut answered, mut failed, mut acks) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.duration);
    for _ in 0..window {
        let n = calls.start(started);
        proxied::write_invite(to_proxy.buf(), &ends, n);
        to_proxy.finish();
    }
    to_proxy.flush(caller.as_raw_fd());
    let mut swept = started;
    let mut fds = [caller.as_raw_fd(), phone.as_raw_fd()].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // Bounded: the loop ends at `until` (or on a signal).
    while !sys::stop_requested() {
        let now = Instant::now();
        if now >= until {
            break;
        }
        sys::poll(&mut fds, Duration::from_millis(50)).map_err(|e| e.to_string())?;
        // The phone: answer INVITEs, count ACKs.
        loop {
            let got = rx
                .recv(phone.as_raw_fd(), libc::MSG_DONTWAIT)
                .map_err(|e| e.to_string())?;
            for i in 0..got {
                let message = rx.message(i);
                if message.starts_with(b"INVITE ") {
                    let invite = proxied::copied(message);
                    let (name, len) = rx.name(i);
                    for code in [180, 200] {
                        proxied::write_answer(to_caller.buf(), &ends, &invite, code);
                        to_caller.finish_to(name, len);
                    }
                } else if message.starts_with(b"ACK ") {
                    acks += 1;
                }
            }
            if got < 64 {
                break;
            }
        }
        to_caller.flush(phone.as_raw_fd());
        // The caller: ACK each 200 and start the next call.
        let now = Instant::now();
        loop {
            let got = rx
                .recv(caller.as_raw_fd(), libc::MSG_DONTWAIT)
                .map_err(|e| e.to_string())?;
            for i in 0..got {
                let message = rx.message(i);
                let Some(code) = proxied::status(message) else {
                    continue;
                };
                if code < 200 {
                    continue;
                }
                let response = proxied::copied(message);
                let Some(n) = response
                    .call_id
                    .map(proxied::value)
                    .and_then(proxied::call_number)
                else {
                    continue;
                };
                if calls.finish(n, now).is_none() {
                    continue; // a retransmission, or a call already expired
                }
                if code == 200 {
                    answered += 1;
                    if let Some(to) = response.to {
                        proxied::write_ack(to_proxy.buf(), &ends, n, to);
                        to_proxy.finish();
                    }
                } else {
                    failed += 1;
                }
                let next = calls.start(now);
                proxied::write_invite(to_proxy.buf(), &ends, next);
                to_proxy.finish();
            }
            if got < 64 {
                break;
            }
        }
        if now.duration_since(swept) >= Duration::from_millis(100) {
            swept = now;
            let expired = calls.expire(now);
            failed += expired as u64;
            for _ in 0..expired {
                let next = calls.start(now);
                proxied::write_invite(to_proxy.buf(), &ends, next);
                to_proxy.finish();
            }
        }
        to_proxy.flush(caller.as_raw_fd());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"answered\":{answered},\"failed\":{failed},\"in_flight\":{},\"seconds\":{seconds:.3},\"calls_per_second\":{:.1},\"acks_at_phone\":{acks}}}",
        calls.len(),
        answered as f64 / seconds
    );
    Ok(())
}
