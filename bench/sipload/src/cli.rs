//! The command lines of `sipload` (`run`, `verify`) and `sipreflect`, and the
//! target checks they share: a target resolves to one address, on loopback
//! unless `--allow-non-loopback` (a load generator pointed at someone else's
//! machine is an attack).

use crate::tls::{Client, Trust};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "sipload",
    version,
    about = "SIP INVITE load generator and answer checker"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Send INVITEs (closed or open loop), match and ACK the answers, print one JSON line.
    Run(RunArgs),
    /// Send each row of a calls file once and compare the answer with its expected column.
    Verify(VerifyArgs),
    /// TLS handshake rate: one connection after another, each a full handshake
    /// (no resumption), one INVITE and its answer, then close; one JSON line.
    Handshakes(HandshakesArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over TLS (needs --tls-ca or --tls-insecure).
    Tls,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// What `sipreflect` serves (it has no TLS: the wire's limit is measured on
/// the plain transports).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReflectTransport {
    Udp,
    Tcp,
}

/// The TLS client options, shared by `run`, `verify` and `handshakes`.
#[derive(Args, Debug, Clone)]
pub struct TlsArgs {
    /// TLS: verify the server's certificate against the CA certificate(s) in this PEM file.
    #[arg(long, value_name = "PEM", conflicts_with = "tls_insecure")]
    pub tls_ca: Option<PathBuf>,
    /// TLS: accept ANY server certificate, unverified. For benchmarks against a
    /// throwaway certificate only: it gives no protection at all.
    #[arg(long)]
    pub tls_insecure: bool,
    /// TLS: the name the server's certificate must carry (and the SNI sent).
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    pub tls_server_name: String,
}

impl TlsArgs {
    /// The TLS client for `transport` (None unless TLS); the error is a
    /// sentence for the user.
    pub fn client(&self, transport: Transport, resume: bool) -> Result<Option<Client>, String> {
        if transport != Transport::Tls {
            if self.tls_ca.is_some() || self.tls_insecure {
                return Err("--tls-ca and --tls-insecure go with -t tls".into());
            }
            return Ok(None);
        }
        let trust = match (&self.tls_ca, self.tls_insecure) {
            (Some(ca), _) => Trust::Ca(ca.clone()),
            (None, true) => Trust::Insecure,
            (None, false) => {
                return Err(
                    "-t tls needs --tls-ca PEM (verify the server) or --tls-insecure (benchmarks)"
                        .into(),
                );
            }
        };
        Client::new(&trust, &self.tls_server_name, resume)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Server host:port (loopback only unless --allow-non-loopback).
    pub target: String,
    #[arg(short = 't', long, value_enum, default_value_t = Transport::Udp)]
    pub transport: Transport,
    /// UDP source sockets or TCP connections per thread (requests round-robin over them).
    #[arg(short = 's', long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub sockets: u16,
    /// Threads, each with its own sockets and an equal share of window, rate and requests.
    #[arg(short = 'T', long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub threads: u8,
    /// Outstanding requests (closed loop; default 100), or their cap with --rate (default 10000).
    #[arg(short = 'w', long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub window: Option<u32>,
    /// Open loop: new requests per second, whatever the answers do.
    #[arg(short = 'r', long)]
    pub rate: Option<f64>,
    /// Stop sending after this many seconds.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop sending after this many requests (whichever of -d and -n comes first).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// A request unanswered this long is a timeout; also the longest wait for the
    /// last answers after sending stops.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub timeout_ms: u64,
    /// Calls file (SIPp CSV: dialed;caller;...), rows used in order, wrapping.
    #[arg(short = 'f', long)]
    pub calls: Option<PathBuf>,
    /// Open loop: requests due within one tick go out together (smaller is
    /// smoother, costs more wake-ups).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub tick_us: u64,
    /// Allow a target outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_non_loopback: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Server host:port (loopback only unless --allow-non-loopback).
    pub target: String,
    /// Calls file with the expected answer in field 2 (302:+NUMBER, 404, ...,
    /// or 302 with the Contact user in field 3).
    #[arg(short = 'f', long)]
    pub calls: PathBuf,
    #[arg(short = 't', long, value_enum, default_value_t = Transport::Udp)]
    pub transport: Transport,
    /// Check only the first N rows.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Requests outstanding at once.
    #[arg(short = 'w', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub window: u32,
    /// A row unanswered this long is a mismatch.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub timeout_ms: u64,
    /// Allow a target outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_non_loopback: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Args, Debug)]
pub struct HandshakesArgs {
    /// Server host:port of a TLS listener (loopback only unless --allow-non-loopback).
    pub target: String,
    /// Stop after this many seconds.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many handshakes (whichever of -d and -n comes first).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// The INVITE's answer is a timeout after this long.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub timeout_ms: u64,
    /// Calls file: one row per connection, in order, wrapping.
    #[arg(short = 'f', long)]
    pub calls: Option<PathBuf>,
    /// Allow a target outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_non_loopback: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Parser, Debug)]
#[command(
    name = "sipreflect",
    version,
    about = "Canned SIP responder: 302 to every INVITE, no routing"
)]
pub struct ReflectCli {
    /// Address to listen on (port 0: any free port, printed).
    pub addr: String,
    #[arg(short = 't', long, value_enum, default_value_t = ReflectTransport::Udp)]
    pub transport: ReflectTransport,
    /// Exit after this many seconds.
    #[arg(long, default_value_t = 600.0)]
    pub duration: f64,
    /// Allow listening outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_non_loopback: bool,
}

/// Resolves `target` to one address and applies the loopback rule. The error is
/// a sentence for the user.
pub fn resolve(target: &str, allow_non_loopback: bool) -> Result<SocketAddr, String> {
    let addr = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target:?} (host:port expected): {e}"))?
        .next()
        .ok_or_else(|| format!("{target:?} resolves to no address"))?;
    if !allow_non_loopback && !addr.ip().to_canonical().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address (127.0.0.0/8, ::1); pass --allow-non-loopback \
             only for a machine you are allowed to load"
        ));
    }
    Ok(addr)
}

/// A duration in seconds from the command line: finite and not negative.
pub fn seconds(what: &str, s: f64) -> Result<std::time::Duration, String> {
    if s.is_finite() && (0.0..=1e9).contains(&s) {
        Ok(std::time::Duration::from_secs_f64(s))
    } else {
        Err(format!(
            "{what} must be a number of seconds from 0 to 1e9, not {s}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_rule() {
        assert!(resolve("127.0.0.1:5060", false).is_ok());
        assert!(resolve("127.9.9.9:5060", false).is_ok());
        assert!(resolve("[::1]:5060", false).is_ok());
        assert!(resolve("[::ffff:127.0.0.1]:5060", false).is_ok());
        assert!(resolve("10.0.0.1:5060", false).is_err());
        assert!(resolve("10.0.0.1:5060", true).is_ok());
        assert!(resolve("127.0.0.1", false).is_err(), "no port");
    }

    #[test]
    fn interface_parses() {
        let cli = Cli::try_parse_from([
            "sipload",
            "run",
            "127.0.0.1:5060",
            "-t",
            "tcp",
            "-s",
            "4",
            "-T",
            "2",
            "-w",
            "100",
            "-r",
            "5000",
            "-d",
            "3",
            "-n",
            "10",
            "--timeout-ms",
            "500",
            "-f",
            "calls.csv",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert_eq!(
            (a.transport, a.sockets, a.threads, a.window),
            (Transport::Tcp, 4, 2, Some(100))
        );
        assert_eq!(
            (a.rate, a.duration, a.requests, a.timeout_ms),
            (Some(5000.0), 3.0, Some(10), 500)
        );
        assert!(Cli::try_parse_from(["sipload", "run", "x", "-w", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["sipload", "verify", "x"]).is_err(),
            "-f is required"
        );
        let cli = Cli::try_parse_from([
            "sipload", "verify", "h:1", "-f", "c", "--limit", "5", "--window", "7",
        ])
        .unwrap();
        let Command::Verify(v) = cli.command else {
            panic!()
        };
        assert_eq!(
            (v.limit, v.window, v.transport),
            (Some(5), 7, Transport::Udp)
        );
        let r = ReflectCli::try_parse_from([
            "sipreflect",
            "127.0.0.1:0",
            "-t",
            "tcp",
            "--duration",
            "5",
        ])
        .unwrap();
        assert_eq!((r.transport, r.duration), (ReflectTransport::Tcp, 5.0));
        assert!(
            ReflectCli::try_parse_from(["sipreflect", "127.0.0.1:0", "-t", "tls"]).is_err(),
            "the reflector has no TLS"
        );
    }

    #[test]
    fn tls_options() {
        let run = |args: &[&str]| {
            let mut v = vec!["sipload", "run", "127.0.0.1:5061"];
            v.extend_from_slice(args);
            match Cli::try_parse_from(v).map(|c| c.command) {
                Ok(Command::Run(a)) => Ok(a),
                Ok(_) => panic!("not run"),
                Err(e) => Err(e),
            }
        };
        let a = run(&["-t", "tls", "--tls-insecure"]).unwrap();
        assert_eq!(a.transport, Transport::Tls);
        assert_eq!(a.tls.tls_server_name, "localhost");
        assert!(a.tls.client(a.transport, true).unwrap().is_some());
        assert!(
            run(&["-t", "tls", "--tls-insecure", "--tls-ca", "x.pem"]).is_err(),
            "verify or not, not both"
        );
        let a = run(&["-t", "tls"]).unwrap();
        let e = a.tls.client(a.transport, true).unwrap_err();
        assert!(e.contains("--tls-ca PEM"), "{e}");
        let a = run(&["-t", "tcp", "--tls-insecure"]).unwrap();
        assert!(
            a.tls.client(a.transport, true).is_err(),
            "TLS options without TLS"
        );
        let a = run(&["-t", "tls", "--tls-ca", "/nonexistent/ca.pem"]).unwrap();
        let e = a.tls.client(a.transport, true).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let a = run(&["-t", "tls", "--tls-insecure", "--tls-server-name", "a b"]).unwrap();
        assert!(a.tls.client(a.transport, true).is_err(), "not a name");
        let h = Cli::try_parse_from([
            "sipload",
            "handshakes",
            "127.0.0.1:5061",
            "--tls-insecure",
            "-d",
            "2",
        ])
        .unwrap();
        let Command::Handshakes(h) = h.command else {
            panic!()
        };
        assert!(h.tls.tls_insecure);
        assert_eq!(h.duration, 2.0);
    }
}
