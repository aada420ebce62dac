//! Starting the real `switchboard` binary for integration tests: on port 0,
//! reading its `listening on udp|tcp ADDR` lines, stopped with SIGTERM when
//! dropped.

#![allow(dead_code)]

pub mod kamailio;
pub mod sipp;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for any one answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A running server.
pub struct Server {
    child: Child,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// The admin HTTP address, when `--admin` was given.
    pub admin: Option<SocketAddr>,
    /// The first TLS address, when `--tls-listen` was given.
    pub tls: Option<SocketAddr>,
}

impl Server {
    /// Starts `switchboard serve` on 127.0.0.1 port 0 with the example data.
    pub fn start() -> Server {
        Server::start_with(&["--routing", &example_data()])
    }

    /// Starts `switchboard serve` with these arguments, plus a loopback
    /// listen address on port 0 unless `--listen` is among them.
    pub fn start_with(args: &[&str]) -> Server {
        Server::spawn(args, &[], Stdio::null())
    }

    /// As [`Server::start_with`], with these environment variables set.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(args, env, Stdio::null())
    }

    /// As [`Server::start_with`], with the server's log (stderr) in `log`.
    pub fn start_logging(args: &[&str], log: &std::path::Path) -> Server {
        let file = std::fs::File::create(log).expect("a log file");
        Server::spawn(args, &[], Stdio::from(file))
    }

    fn spawn(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command.arg("serve").args(args).envs(env.iter().copied());
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        if !args.contains(&"--workers") {
            command.args(["--workers", "2"]);
        }
        let mut child = command
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("switchboard starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (mut udp, mut tcp, mut admin, mut tls) = (None, None, None, None);
        let wants_admin = args.contains(&"--admin");
        let wants_tls = args.contains(&"--tls-listen");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        while udp.is_none()
            || tcp.is_none()
            || (wants_admin && admin.is_none())
            || (wants_tls && tls.is_none())
        {
            assert!(
                Instant::now() < deadline,
                "switchboard did not report its sockets"
            );
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("switchboard exited before listening");
            };
            let addr = |l: &str| {
                l.rsplit(' ')
                    .next()
                    .and_then(|a| a.parse::<SocketAddr>().ok())
            };
            if line.starts_with("listening on udp ") {
                udp = addr(&line);
            } else if line.starts_with("listening on tcp ") {
                tcp = addr(&line);
            } else if line.starts_with("listening on http ") {
                admin = addr(&line);
            } else if line.starts_with("listening on tls ") && tls.is_none() {
                tls = addr(&line);
            }
        }
        Server {
            child,
            udp: udp.expect("udp address"),
            tcp: tcp.expect("tcp address"),
            admin,
            tls,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        terminate(&mut self.child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            terminate(&mut self.child);
        }
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY-free: signal by pid through the kill command.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().expect("child exits");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn example_data() -> String {
    project_path("config/routing.yaml").display().to_string()
}

pub fn project_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A UDP client on 127.0.0.1.
pub struct UdpClient {
    pub socket: UdpSocket,
}

impl UdpClient {
    pub fn new() -> UdpClient {
        UdpClient::bind("127.0.0.1:0")
    }

    pub fn bind(addr: &str) -> UdpClient {
        let socket = UdpSocket::bind(addr).expect("bind a client socket");
        socket
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .expect("timeout");
        UdpClient { socket }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().expect("bound").port()
    }

    pub fn send(&self, to: SocketAddr, message: &[u8]) {
        self.socket.send_to(message, to).expect("send");
    }

    /// The next datagram, or `None` after `wait`.
    pub fn receive_within(&self, wait: Duration) -> Option<Vec<u8>> {
        self.socket.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = vec![0u8; 65_535];
        let got = self
            .socket
            .recv_from(&mut buf)
            .ok()
            .map(|(n, _)| buf[..n].to_vec());
        self.socket
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .expect("timeout");
        got
    }

    /// Sends and waits for one answer.
    pub fn exchange(&self, to: SocketAddr, message: &[u8]) -> String {
        self.send(to, message);
        let answer = self
            .receive_within(ANSWER_TIMEOUT)
            .expect("an answer within the timeout");
        String::from_utf8(answer).expect("UTF-8 answer")
    }
}

/// A TCP connection to the server.
pub struct TcpClient {
    pub stream: TcpStream,
}

impl TcpClient {
    pub fn connect(to: SocketAddr) -> TcpClient {
        let stream = TcpStream::connect(to).expect("connect");
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        TcpClient { stream }
    }

    pub fn port(&self) -> u16 {
        self.stream.local_addr().expect("bound").port()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads until `count` complete responses (each ending with the blank
    /// line of a Content-Length: 0 message) have arrived.
    pub fn read_responses(&mut self, count: usize) -> Vec<String> {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&data).into_owned();
            let responses = complete_responses(&text);
            if responses.len() >= count {
                return responses;
            }
            let n = self.stream.read(&mut buf).expect("read within the timeout");
            assert!(
                n > 0,
                "connection closed after {} responses: {text:?}",
                responses.len()
            );
            data.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.stream
            .read_exact(&mut buf)
            .expect("read within the timeout");
        buf
    }
}

/// The complete responses in what a stream brought so far (each ending
/// with the blank line of a Content-Length: 0 message).
pub fn complete_responses(text: &str) -> Vec<String> {
    text.split_inclusive("\r\n\r\n")
        .filter(|r| r.ends_with("\r\n\r\n") && r.starts_with("SIP/2.0"))
        .map(str::to_owned)
        .collect()
}

/// A request with the usual headers; `{port}` in `template` becomes the
/// client's port. Lines end with CRLF.
pub fn request(lines: &[&str], port: u16) -> Vec<u8> {
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.replace("{port}", &port.to_string()));
        text.push_str("\r\n");
    }
    text.into_bytes()
}

/// An INVITE from `caller` to `dialed` over UDP from `port`.
pub fn invite(dialed: &str, caller: &str, call_id: &str, port: u16) -> Vec<u8> {
    request(
        &[
            &format!("INVITE sip:{dialed}@127.0.0.1 SIP/2.0"),
            "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-test-1;rport",
            "Max-Forwards: 70",
            &format!("From: <sip:{caller}@127.0.0.1>;tag=from-1"),
            &format!("To: <sip:{dialed}@127.0.0.1>"),
            &format!("Call-ID: {call_id}"),
            "CSeq: 1 INVITE",
            "Content-Length: 0",
            "",
        ],
        port,
    )
}

/// The status code of a response.
pub fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"))
}

/// A response to `request` as a next hop writes it: `SIP/2.0 {status}`,
/// the request's Via, From, Call-ID, CSeq and Record-Route lines copied,
/// its To with `to_tag` added, then `extra` (whole header lines, CRLF
/// ended) and no body.
pub fn response_to(request: &str, status: &str, to_tag: Option<&str>, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.lines() {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "from" | "call-id" | "cseq" | "record-route" => {
                out.push_str(line.trim_end());
                out.push_str("\r\n");
            }
            "to" => {
                out.push_str(line.trim_end());
                if let Some(tag) = to_tag {
                    out.push_str(";tag=");
                    out.push_str(tag);
                }
                out.push_str("\r\n");
            }
            _ => {}
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// The value of the first header with this name.
pub fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A port free on 127.0.0.1 over UDP and TCP a moment ago, for a peer
/// the test starts later (SIPp's `-p`, a phone in the routing data).
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`), never
/// from it: a port the kernel handed out for `bind(0)` and that was closed
/// again is the kernel's to hand out next, to any socket of any test
/// running beside this one, before the peer binds it (CI once lost a
/// Kamailio test so: SIPp "Address already in use"). Below the range only
/// an explicit bind takes a port; each test binary counts through its own
/// stretch of it (by process id), and each port is checked free over both
/// UDP and TCP (SIPp in TCP mode binds its `-p` port for TCP).
pub fn free_udp_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
        .max(LOWEST + 1_000);
    let span = ephemeral - LOWEST;
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..1_000 {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let Ok(port) = u16::try_from(LOWEST + offset) else {
            continue;
        };
        if UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no port below {ephemeral} free over both UDP and TCP in 1,000 tries");
}

/// Fails the test, naming the package, when `program` cannot be started
/// (its `-h` runs and exits at once, with nothing on standard input).
pub fn require(program: &str, package: &str) {
    let started = Command::new(program)
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if started.is_err() {
        panic!(
            "`{program}` not found: `scripts/test` installs it (or `apt-get install -y {package}`)"
        );
    }
}

/// Fails the test, naming what is missing, when this host has no IPv6
/// loopback (`[::1]` cannot be bound): like the outside software the suite
/// drives, a missing `::1` fails a test, it never skips one.
pub fn require_ipv6_loopback() {
    if let Err(e) = UdpSocket::bind("[::1]:0") {
        panic!(
            "this test needs the IPv6 loopback address ::1 and cannot bind [::1]:0 ({e}): \
             bring `lo` up with IPv6 on it (`ip link set lo up`, \
             `sysctl -w net.ipv6.conf.lo.disable_ipv6=0`; in a container, start it with \
             IPv6 enabled); tests are never skipped"
        );
    }
}

/// An HTTP response from the admin endpoint: status code, head and body.
pub struct Http {
    pub code: u16,
    pub head: String,
    pub body: String,
}

/// One HTTP/1.1 request to the admin endpoint (which answers one request
/// per connection and closes it), with `extra` header lines (each ending
/// in CRLF).
pub fn http(admin: SocketAddr, method: &str, path: &str, extra: &str) -> Http {
    let mut stream = TcpStream::connect(admin).expect("connect to the admin endpoint");
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: switchboard\r\nUser-Agent: test\r\n{extra}\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read to close");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    Http {
        code,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A GET to the admin endpoint: the status code and the body.
pub fn http_get(admin: SocketAddr, path: &str) -> (u16, String) {
    let response = http(admin, "GET", path, "");
    (response.code, response.body)
}

/// The value of one sample in a `/metrics` scrape, named with its labels
/// exactly as exported (`name{label="value"}`), or by name alone.
pub fn metric_value(scrape: &str, sample: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let rest = line.strip_prefix(sample)?;
        let value = rest.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}
