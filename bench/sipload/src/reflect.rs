//! `sipreflect`'s serving loops: the wire's limit, a responder that does no
//! routing, so that a generator's rate against it is what the kernel and the
//! loopback can carry.
//!
//! UDP: one thread, one blocking `recvmmsg` (`MSG_WAITFORONE`) for whatever has
//! arrived and one `sendmmsg` for all the replies, each to its sender. TCP: a
//! thread per connection (at most [`MAX_CONNECTIONS`]), the replies to what one
//! read brought written with one `write`. Both stop at the deadline or on
//! SIGINT/SIGTERM, noticed within [`WAKE`].

use crate::batch::{RecvBatch, SendBatch};
use crate::canned;
use crate::framing::{self, Frame};
use crate::sys;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often blocked loops look at the deadline and the stop flag.
const WAKE: Duration = Duration::from_millis(100);
/// Datagrams per `recvmmsg`.
const BATCH: usize = 64;
/// TCP connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 256;

fn over(until: Instant) -> bool {
    sys::stop_requested() || Instant::now() >= until
}

/// Answers datagrams on `sock` until `until`.
pub fn serve_udp(sock: &UdpSocket, until: Instant) -> io::Result<()> {
    let fd = sock.as_raw_fd();
    sys::set_buffers(fd, crate::udp::SOCKET_BUFFER);
    sys::set_recv_timeout(fd, WAKE)?;
    let mut rx = RecvBatch::new(BATCH, true, false);
    let mut tx = SendBatch::new();
    while !over(until) {
        // Errors (an ICMP error for an earlier reply, say) concern one datagram,
        // not the socket: go on.
        let n = rx.recv(fd, libc::MSG_WAITFORONE).unwrap_or(0);
        for i in 0..n {
            if !rx.truncated(i) && canned::answer(rx.message(i), tx.buf()) {
                let (name, len) = rx.name(i);
                tx.finish_to(name, len);
            }
        }
        tx.flush(fd);
    }
    Ok(())
}

/// Accepts and serves TCP connections until `until`.
pub fn serve_tcp(listener: &TcpListener, until: Instant) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let active = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let mut pfd = [libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        while !over(until) {
            if sys::poll(&mut pfd, WAKE)? == 0 {
                continue;
            }
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("sipreflect: accept: {e}");
                    std::thread::sleep(WAKE);
                    continue;
                }
            };
            if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                continue; // dropped: closed
            }
            active.fetch_add(1, Ordering::Relaxed);
            let active = &active;
            scope.spawn(move || {
                let _ = serve_connection(stream, until);
                active.fetch_sub(1, Ordering::Relaxed);
            });
        }
        Ok(())
    })
}

/// Answers the requests of one connection until it closes, its stream cannot be
/// framed, or `until`.
fn serve_connection(mut stream: TcpStream, until: Instant) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(WAKE))?;
    let mut buf = vec![0u8; 256 * 1024].into_boxed_slice();
    let mut len = 0;
    let mut out = Vec::with_capacity(64 * 1024);
    while !over(until) {
        let n = match stream.read(&mut buf[len..]) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        len += n;
        let mut pos = 0;
        let framed = loop {
            match framing::frame(&buf[pos..len]) {
                Ok(Frame::Message { start, end }) => {
                    canned::answer(&buf[pos + start..pos + end], &mut out);
                    pos += end;
                }
                Ok(Frame::Incomplete { skip }) => {
                    pos += skip;
                    break true;
                }
                Err(_) => break false,
            }
        };
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if !framed {
            return Ok(()); // the stream cannot be trusted past here: close
        }
        buf.copy_within(pos..len, 0);
        len -= pos;
    }
    Ok(())
}
