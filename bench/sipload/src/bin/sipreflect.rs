//! `sipreflect ADDR [-t udp|tcp] [--duration SECS]`: the canned-302 responder
//! (see `reflect` and `canned`). Prints `listening on PROTO ADDR:PORT` once bound
//! (the real port when asked for port 0), then serves until the duration is over
//! or SIGINT/SIGTERM.

use clap::{CommandFactory, Parser, error::ErrorKind};
use sipload::cli::{self, ReflectCli, ReflectTransport as Transport};
use sipload::{reflect, sys};
use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::process::ExitCode;
use std::time::Instant;

fn usage(msg: String) -> ! {
    ReflectCli::command()
        .error(ErrorKind::ValueValidation, msg)
        .exit()
}

fn announce(proto: &str, addr: std::io::Result<std::net::SocketAddr>) -> Result<(), String> {
    let addr = addr.map_err(|e| format!("local address: {e}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {proto} {addr}")
        .and_then(|_| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

fn main() -> ExitCode {
    let a = ReflectCli::parse();
    let addr = cli::resolve(&a.addr, a.allow_non_loopback).unwrap_or_else(|e| usage(e));
    let duration = cli::seconds("--duration", a.duration).unwrap_or_else(|e| usage(e));
    sys::install_stop_handler();
    let until = Instant::now() + duration;
    let result = match a.transport {
        Transport::Udp => UdpSocket::bind(addr)
            .map_err(|e| format!("cannot bind udp {addr}: {e}"))
            .and_then(|s| {
                announce("udp", s.local_addr())?;
                reflect::serve_udp(&s, until).map_err(|e| e.to_string())
            }),
        Transport::Tcp => TcpListener::bind(addr)
            .map_err(|e| format!("cannot bind tcp {addr}: {e}"))
            .and_then(|l| {
                announce("tcp", l.local_addr())?;
                reflect::serve_tcp(&l, until).map_err(|e| e.to_string())
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipreflect: {e}");
            ExitCode::from(1)
        }
    }
}
