//! The TCP load loop of one thread: its connections, pipelined.
//!
//! Requests are not waited for one by one: the window is spread round-robin over
//! the connections and every answer read lets another request go. Each round,
//! one `read` per readable connection brings whatever answers have arrived; they
//! are cut out of the stream by Content-Length (`framing`, RFC 3261 §18.3), and
//! the ACKs and new INVITEs they cause are queued per connection and written
//! with one `write` each. `poll` waits when there is nothing to do. Latency ends
//! when the read returns (TCP has no per-message receive timestamp).
//!
//! The loop is generic over a [`Wire`]: a plain [`TcpStream`], or a
//! `tls::TlsStream` (the same socket with rustls between it and the buffers
//! here), so SIP over TLS is measured by the very same loop.

use crate::csv::Row;
use crate::framing::{self, Frame};
use crate::message::Templates;
use crate::stats::Stats;
use crate::sys;
use crate::worker::{Plan, Sink, WAKE, Worker};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Read buffer per connection; far larger than one message (framing bounds a
/// message to a 16 KiB head and a 64 KiB body), so after the unfinished
/// message is moved to the front a read always has room.
const READ_BUFFER: usize = 256 * 1024;

/// A connected stream this loop can drive: nonblocking reads and writes that
/// say `WouldBlock` when the socket has nothing or no room, over one TCP socket
/// (polled by its fd).
pub trait Wire: Read + Write {
    /// The Via's transport (RFC 3261 §18: `TCP`, `TLS`).
    const VIA: &'static str;
    /// The TCP socket underneath.
    fn socket(&self) -> &TcpStream;
    /// Bytes taken by `write` that still wait for room in the socket (TLS
    /// records): the loop polls for POLLOUT and calls `flush` until none.
    fn backlog(&self) -> bool {
        false
    }
    /// Bytes already taken from the socket that a read has not handed out yet
    /// (TLS plaintext left when the caller's buffer filled): `poll` would not
    /// report them, so the loop reads again without waiting.
    fn pending(&self) -> bool {
        false
    }
}

impl Wire for TcpStream {
    const VIA: &'static str = "TCP";

    fn socket(&self) -> &TcpStream {
        self
    }
}

/// Opens `n` connections to `target`, Nagle off (each write is a round's batch).
pub fn open_connections(target: SocketAddr, n: usize) -> io::Result<Vec<TcpStream>> {
    (0..n)
        .map(|_| {
            let s = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
            s.set_nodelay(true)?;
            Ok(s)
        })
        .collect()
}

struct Conn<W> {
    stream: W,
    tpl: Templates,
    rbuf: Box<[u8]>,
    rlen: usize,
    out: Vec<u8>,
    out_pos: usize,
    alive: bool,
}

impl<W: Wire> Conn<W> {
    /// Writes what is queued, as far as the socket takes it (then what the
    /// stream still holds: TLS records). False if the connection failed.
    fn flush(&mut self) -> bool {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return false,
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.out.clear();
        self.out_pos = 0;
        match self.stream.flush() {
            Ok(()) => true,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        }
    }

    /// One read, and the handling of every whole answer in the buffer. False if
    /// the connection ended or its stream can no longer be framed.
    fn read<S: Sink>(&mut self, w: &mut Worker<'_, S>) -> bool {
        let got = match self.stream.read(&mut self.rbuf[self.rlen..]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) => {
                return matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                );
            }
        };
        self.rlen += got;
        let ts = sys::now_ns();
        let mut pos = 0;
        let ok = loop {
            match framing::frame(&self.rbuf[pos..self.rlen]) {
                Ok(Frame::Message { start, end }) => {
                    w.answer(
                        &self.rbuf[pos + start..pos + end],
                        ts,
                        &self.tpl,
                        &mut self.out,
                    );
                    pos += end;
                }
                Ok(Frame::Incomplete { skip }) => {
                    pos += skip;
                    break true;
                }
                Err(_) => break false,
            }
        };
        // Keep the start of an unfinished message at the front: at most one
        // message's worth is copied, and the rest of the buffer is room.
        self.rbuf.copy_within(pos..self.rlen, 0);
        self.rlen -= pos;
        ok
    }
}

/// Runs one thread's load over `streams` until its plan is done; returns its
/// counts, the sink and the streams (still open, for a clean close).
pub fn run<S: Sink, W: Wire>(
    plan: &Plan,
    tick: Duration,
    run_id: u32,
    rows: &[Row],
    target: SocketAddr,
    streams: Vec<W>,
    sink: S,
) -> io::Result<(Stats, S, Vec<W>)> {
    let mut conns = Vec::with_capacity(streams.len());
    for s in streams {
        s.socket().set_nonblocking(true)?;
        let local = s.socket().local_addr()?;
        conns.push(Conn {
            stream: s,
            tpl: Templates::new(W::VIA, target, local),
            rbuf: vec![0; READ_BUFFER].into_boxed_slice(),
            rlen: 0,
            out: Vec::with_capacity(64 * 1024),
            out_pos: 0,
            alive: true,
        });
    }
    let open_loop = plan.rate.is_some();
    if open_loop {
        sys::set_timer_slack(1_000);
    }
    let mut w = Worker::new(plan, run_id, rows, sink);
    let mut pollfds: Vec<libc::pollfd> = conns
        .iter()
        .map(|c| libc::pollfd {
            fd: c.stream.socket().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut next_conn = 0;
    let mut drain_until = None;
    let tick_ns = tick.as_nanos() as u64;
    let mut alive = conns.len();

    loop {
        let now = sys::now_ns();
        if alive == 0 {
            // Nothing outstanding can be answered any more.
            w.stop_sending(now);
            w.expire_all();
            break;
        }
        if !w.sending(now) {
            let until = *drain_until.get_or_insert(now + plan.timeout_ns);
            if w.live() == 0 {
                break;
            }
            if now >= until {
                w.expire_all();
                break;
            }
        }
        w.expire(now);
        for _ in 0..w.budget(now) {
            while !conns[next_conn].alive {
                next_conn = (next_conn + 1) % conns.len();
            }
            let n = conns.len();
            let c = &mut conns[next_conn];
            next_conn = (next_conn + 1) % n;
            w.start(now, &c.tpl, &mut c.out);
        }
        for (c, p) in conns.iter_mut().zip(&mut pollfds) {
            if c.alive && !c.flush() {
                close(c, p, &mut w, &mut alive);
            }
            p.events = if c.out.is_empty() && !c.stream.backlog() {
                libc::POLLIN
            } else {
                libc::POLLIN | libc::POLLOUT
            };
        }

        let timeout_ns = if open_loop {
            w.open_loop_sleep_ns(sys::now_ns(), tick_ns)
        } else {
            WAKE.as_nanos() as u64
        };
        let pending = conns.iter().any(|c| c.alive && c.stream.pending());
        if sys::ppoll(&mut pollfds, if pending { 0 } else { timeout_ns })? == 0 && !pending {
            continue;
        }
        for (c, p) in conns.iter_mut().zip(&mut pollfds) {
            if c.alive
                && (p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                    || c.stream.pending())
                && !c.read(&mut w)
            {
                close(c, p, &mut w, &mut alive);
            }
        }
    }
    // The ACKs of the last answers, as far as the sockets take them now: the
    // server then sees every transaction end (and TLS a whole record).
    for c in conns.iter_mut().filter(|c| c.alive) {
        c.flush();
    }
    Ok((
        w.stats,
        w.sink,
        conns.into_iter().map(|c| c.stream).collect(),
    ))
}

/// Marks a connection lost: an error, out of the rotation and out of `poll`
/// (a negative fd is skipped). Its outstanding requests will time out.
fn close<S: Sink, W: Wire>(
    c: &mut Conn<W>,
    p: &mut libc::pollfd,
    w: &mut Worker<'_, S>,
    alive: &mut usize,
) {
    c.alive = false;
    p.fd = -1;
    *alive -= 1;
    w.stats.errors += 1;
    let local = c
        .stream
        .socket()
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string());
    eprintln!(
        "sipload: {} connection from {local} lost or unframable; its requests will time out",
        W::VIA
    );
}
