//! Batched UDP I/O: many datagrams per system call with `recvmmsg` and
//! `sendmmsg`. On loopback the system call and the socket locking around it cost
//! more than building a message, so batching is most of what makes a generator
//! or a reflector cheap per request.
//!
//! Buffers, iovecs and headers are allocated once and reused: a batch owns its
//! memory and the raw pointers the kernel sees point into heap blocks that never
//! move. That makes these types `!Send`: each thread builds its own.

use std::io;
use std::os::fd::RawFd;

/// Largest datagram read; longer ones are cut and flagged as truncated.
pub const DATAGRAM: usize = 4096;
/// Space for one `SCM_TIMESTAMPNS` control message.
const CONTROL: usize = 64;

/// A set of receive buffers filled by one `recvmmsg`.
pub struct RecvBatch {
    data: Box<[u8]>,
    /// Only reached through the headers' pointers; owned here so they stay valid.
    _control: Box<[u8]>,
    names: Box<[libc::sockaddr_storage]>,
    /// As `_control`.
    _iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    want_names: bool,
    want_control: bool,
}

impl RecvBatch {
    /// `n` datagrams per call. `names`: keep each sender's address (an unconnected
    /// server socket needs it to answer). `timestamps`: read `SCM_TIMESTAMPNS`.
    pub fn new(n: usize, names: bool, timestamps: bool) -> Self {
        let mut data = vec![0u8; n * DATAGRAM].into_boxed_slice();
        let mut control = vec![0u8; n * CONTROL].into_boxed_slice();
        // SAFETY (both): sockaddr_storage and mmsghdr are plain data (integers and
        // pointers); all-zero is a valid value of each.
        let mut addrs: Box<[libc::sockaddr_storage]> =
            (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut hdrs: Box<[libc::mmsghdr]> =
            (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut iovs: Box<[libc::iovec]> = (0..n)
            .map(|i| libc::iovec {
                iov_base: data[i * DATAGRAM..].as_mut_ptr().cast(),
                iov_len: DATAGRAM,
            })
            .collect();
        for (i, h) in hdrs.iter_mut().enumerate() {
            h.msg_hdr.msg_iov = &mut iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            if names {
                h.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            }
            if timestamps {
                h.msg_hdr.msg_control = control[i * CONTROL..].as_mut_ptr().cast();
            }
        }
        // Moving the boxes into the struct does not move their heap blocks, so
        // the pointers just stored stay valid.
        RecvBatch {
            data,
            _control: control,
            names: addrs,
            _iovs: iovs,
            hdrs,
            want_names: names,
            want_control: timestamps,
        }
    }

    /// One `recvmmsg` with `flags` (`MSG_WAITFORONE` to block for the first
    /// datagram only, `MSG_DONTWAIT` never to block). The number read; 0 when
    /// nothing was there (EAGAIN, a receive timeout, a signal).
    pub fn recv(&mut self, fd: RawFd, flags: libc::c_int) -> io::Result<usize> {
        for h in self.hdrs.iter_mut() {
            // The kernel overwrites these lengths: reset them every call.
            if self.want_names {
                h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            }
            if self.want_control {
                h.msg_hdr.msg_controllen = CONTROL as _;
            }
            h.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points to buffers owned by self, of the lengths set.
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as _,
                flags,
                std::ptr::null_mut(),
            )
        };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            _ => Err(e),
        }
    }

    /// Datagram `i` of the last call (cut to [`DATAGRAM`] bytes).
    #[inline]
    pub fn message(&self, i: usize) -> &[u8] {
        let len = (self.hdrs[i].msg_len as usize).min(DATAGRAM);
        &self.data[i * DATAGRAM..i * DATAGRAM + len]
    }

    /// Whether datagram `i` was longer than the buffer.
    #[inline]
    pub fn truncated(&self, i: usize) -> bool {
        self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }

    /// The kernel's receive time of datagram `i` (realtime ns), when stamped.
    #[inline]
    // msg_controllen is a usize with glibc, a socklen_t with musl.
    #[allow(clippy::unnecessary_cast)]
    pub fn timestamp_ns(&self, i: usize) -> Option<u64> {
        let h = &self.hdrs[i].msg_hdr;
        if !self.want_control || (h.msg_controllen as usize) < std::mem::size_of::<libc::cmsghdr>()
        {
            return None;
        }
        // SAFETY: the kernel filled msg_control with msg_controllen bytes of
        // well-formed control messages; CMSG_FIRSTHDR/NXTHDR stay inside them.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                    return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        None
    }

    /// The sender of datagram `i` (raw, for answering it), when names are kept.
    #[inline]
    pub fn name(&self, i: usize) -> (&libc::sockaddr_storage, libc::socklen_t) {
        (&self.names[i], self.hdrs[i].msg_hdr.msg_namelen)
    }
}

/// Datagrams appended one after another into one buffer, sent by `sendmmsg`.
pub struct SendBatch {
    buf: Vec<u8>,
    ends: Vec<usize>,
    names: Vec<(libc::sockaddr_storage, libc::socklen_t)>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl SendBatch {
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(64 * 1024),
            ends: Vec::with_capacity(256),
            names: Vec::new(),
            iovs: Vec::with_capacity(256),
            hdrs: Vec::with_capacity(256),
        }
    }

    /// The buffer to append the next datagram to; [`SendBatch::finish`] closes it.
    #[inline]
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Ends the datagram appended since the last call (nothing if none was).
    #[inline]
    pub fn finish(&mut self) {
        let last = self.ends.last().copied().unwrap_or(0);
        if self.buf.len() > last {
            self.ends.push(self.buf.len());
        }
    }

    /// Ends the datagram appended since the last call, to be sent to `name`.
    pub fn finish_to(&mut self, name: &libc::sockaddr_storage, len: libc::socklen_t) {
        let before = self.ends.len();
        self.finish();
        if self.ends.len() > before {
            self.names.push((*name, len));
        }
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Sends everything waiting, with as few `sendmmsg` calls as the kernel
    /// allows. Returns (datagrams sent, datagrams refused by an error); the batch
    /// is empty afterwards either way, since nothing here is retransmitted.
    pub fn flush(&mut self, fd: RawFd) -> (usize, usize) {
        if self.ends.is_empty() {
            return (0, 0);
        }
        // The iovecs are made now, once no more appends can move the buffer.
        self.iovs.clear();
        self.hdrs.clear();
        let mut start = 0;
        for &end in &self.ends {
            self.iovs.push(libc::iovec {
                iov_base: self.buf[start..].as_mut_ptr().cast(),
                iov_len: end - start,
            });
            start = end;
        }
        let with_names = !self.names.is_empty();
        for i in 0..self.iovs.len() {
            // SAFETY: all-zero mmsghdr is valid plain data.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            if with_names {
                let (name, len) = &mut self.names[i];
                h.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = *len;
            }
            self.hdrs.push(h);
        }
        let (mut sent, mut failed, mut at) = (0, 0, 0);
        while at < self.hdrs.len() {
            let left = &mut self.hdrs[at..];
            // SAFETY: the headers point to iovecs and names owned by self and to
            // the buffer, none of which changes until the call returns.
            let rc = unsafe { libc::sendmmsg(fd, left.as_mut_ptr(), left.len() as _, 0) };
            if rc > 0 {
                sent += rc as usize;
                at += rc as usize;
                continue;
            }
            let kind = if rc == 0 {
                io::ErrorKind::Other
            } else {
                io::Error::last_os_error().kind()
            };
            match kind {
                io::ErrorKind::Interrupted => {}
                // A non-blocking socket's send buffer is full: wait (briefly) for room.
                io::ErrorKind::WouldBlock if wait_writable(fd) => {}
                _ => {
                    // The datagram at `at` was refused (e.g. ECONNREFUSED from an
                    // earlier ICMP error) or there is no room: skip it, go on.
                    failed += 1;
                    at += 1;
                }
            }
        }
        self.buf.clear();
        self.ends.clear();
        self.names.clear();
        (sent, failed)
    }
}

/// Waits up to 100 ms until `fd` can take more data; false if it cannot.
fn wait_writable(fd: RawFd) -> bool {
    let mut p = [libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    }];
    matches!(
        crate::sys::poll(&mut p, std::time::Duration::from_millis(100)),
        Ok(1)
    )
}
