//! Batched UDP I/O with `recvmmsg(2)` and `sendmmsg(2)`: one system call
//! moves up to [`BATCH`] datagrams each way. Under load a worker wakes
//! once per batch instead of twice per request; when idle, a batch is one
//! datagram (`MSG_WAITFORONE`) and nothing waits.
//!
//! The `unsafe` here is confined to filling the kernel's message headers:
//! every pointer handed over points into buffers this struct owns and never
//! resizes while the call runs.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams moved per system call.
pub const BATCH: usize = 32;

/// Buffers and kernel headers for one worker's batches.
pub struct Batches {
    datagram_size: usize,
    /// `BATCH` receive buffers back to back.
    receive: Vec<u8>,
    sources: Vec<libc::sockaddr_storage>,
    receive_iov: Vec<libc::iovec>,
    receive_headers: Vec<libc::mmsghdr>,
    destinations: Vec<libc::sockaddr_storage>,
    send_iov: Vec<libc::iovec>,
    send_headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers inside the kernel headers point only into heap
// blocks this struct owns (which do not move when the struct does) or at
// buffers borrowed for one call, re-pointed before every call; nothing is
// shared, so moving a `Batches` to another thread (the proxy driver's
// outbox, behind a mutex) is sound. It stays `!Sync`.
unsafe impl Send for Batches {}

/// One received datagram.
pub struct Received<'b> {
    pub bytes: &'b [u8],
    pub source: Option<SocketAddr>,
    /// Longer than the buffer: the kernel cut it.
    pub truncated: bool,
}

impl Batches {
    pub fn new(datagram_size: usize) -> Batches {
        // SAFETY: these are plain C structs for which all-zero is valid.
        let zero_storage: libc::sockaddr_storage = unsafe { zeroed() };
        let zero_header: libc::mmsghdr = unsafe { zeroed() };
        let zero_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        Batches {
            datagram_size,
            receive: vec![0; datagram_size * BATCH],
            sources: vec![zero_storage; BATCH],
            receive_iov: vec![zero_iov; BATCH],
            receive_headers: vec![zero_header; BATCH],
            destinations: vec![zero_storage; BATCH],
            send_iov: vec![zero_iov; BATCH],
            send_headers: vec![zero_header; BATCH],
        }
    }

    /// Waits for at least one datagram (up to the socket's read timeout)
    /// and takes up to [`BATCH`]; returns how many arrived.
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        for i in 0..BATCH {
            self.receive_iov[i] = libc::iovec {
                iov_base: self.receive[i * self.datagram_size..].as_mut_ptr().cast(),
                iov_len: self.datagram_size,
            };
            point(
                &mut self.receive_headers[i],
                &mut self.sources[i],
                size_of::<libc::sockaddr_storage>() as libc::socklen_t,
                &mut self.receive_iov[i],
            );
        }
        // SAFETY: the headers point at `BATCH` iovecs and address buffers
        // owned by `self`, each iovec at its own `datagram_size` slice of
        // `self.receive`; none is moved or freed during the call.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.receive_headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(received as usize)
    }

    /// The `i`th datagram of the last [`Batches::receive`].
    pub fn received(&self, i: usize) -> Received<'_> {
        let header = &self.receive_headers[i];
        let len = (header.msg_len as usize).min(self.datagram_size);
        let start = i * self.datagram_size;
        Received {
            bytes: &self.receive[start..start + len],
            source: from_storage(&self.sources[i], header.msg_hdr.msg_namelen),
            truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        }
    }

    /// Sends each response to its address, as few calls as the kernel
    /// allows. A datagram the kernel refuses is skipped (and counted in the
    /// returned number of failures); the rest still go.
    pub fn send<'r>(
        &mut self,
        socket: &UdpSocket,
        responses: impl IntoIterator<Item = (SocketAddr, &'r [u8])>,
    ) -> usize {
        let mut failures = 0;
        self.send_each(socket, responses, |_| failures += 1);
        failures
    }

    /// As [`Batches::send`] (at most [`BATCH`] datagrams), calling
    /// `refused` with the index of each datagram the kernel refused.
    pub fn send_each<'r>(
        &mut self,
        socket: &UdpSocket,
        responses: impl IntoIterator<Item = (SocketAddr, &'r [u8])>,
        mut refused: impl FnMut(usize),
    ) {
        let mut count = 0;
        for (i, (to, bytes)) in responses.into_iter().take(BATCH).enumerate() {
            count = i + 1;
            let name_len = to_storage(to, &mut self.destinations[i]);
            self.send_iov[i] = libc::iovec {
                iov_base: bytes.as_ptr().cast_mut().cast(),
                iov_len: bytes.len(),
            };
            point(
                &mut self.send_headers[i],
                &mut self.destinations[i],
                name_len,
                &mut self.send_iov[i],
            );
        }
        let mut next = 0;
        while next < count {
            // SAFETY: headers `next..count` point at iovecs and addresses
            // owned by `self` and at response bytes borrowed for this call;
            // the kernel only reads them.
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.send_headers[next..].as_mut_ptr(),
                    (count - next) as libc::c_uint,
                    0,
                )
            };
            if sent <= 0 {
                // The first remaining datagram failed: skip it.
                refused(next);
                next += 1;
            } else {
                next += sent as usize;
            }
        }
    }
}

/// Points a message header at one address and one buffer, clearing what
/// the kernel writes back.
fn point(
    header: &mut libc::mmsghdr,
    address: &mut libc::sockaddr_storage,
    address_len: libc::socklen_t,
    iov: &mut libc::iovec,
) {
    header.msg_hdr.msg_name = (address as *mut libc::sockaddr_storage).cast();
    header.msg_hdr.msg_namelen = address_len;
    header.msg_hdr.msg_iov = iov;
    header.msg_hdr.msg_iovlen = 1;
    header.msg_hdr.msg_control = std::ptr::null_mut();
    header.msg_hdr.msg_controllen = 0;
    header.msg_hdr.msg_flags = 0;
    header.msg_len = 0;
}

fn from_storage(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET, length
            // checked); sockaddr_storage is large and aligned enough for it.
            let v4 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a
            // sockaddr_in, which we fully initialise.
            let out = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            *out = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let out = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            *out = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_the_kernel_structs() {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        for addr in ["192.0.2.7:5060", "[2001:db8::1]:5062", "[::1]:1"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let len = to_storage(addr, &mut storage);
            assert_eq!(from_storage(&storage, len), Some(addr));
        }
    }

    #[test]
    fn a_batch_goes_through_real_sockets() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        for i in 0..5u8 {
            client
                .send_to(&[i; 10], server.local_addr().unwrap())
                .unwrap();
        }
        let mut batches = Batches::new(8);
        let mut got = Vec::new();
        while got.len() < 5 {
            let n = batches.receive(&server).unwrap();
            for i in 0..n {
                let r = batches.received(i);
                assert!(r.truncated, "10 bytes into 8");
                assert_eq!(r.source, Some(client.local_addr().unwrap()));
                got.push(r.bytes.to_vec());
            }
        }
        assert_eq!(got[4], vec![4u8; 8]);
        let to = client.local_addr().unwrap();
        let replies: [(SocketAddr, &[u8]); 2] = [(to, b"one"), (to, b"two")];
        assert_eq!(batches.send(&server, replies), 0);
        let mut buf = [0u8; 16];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"one");
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"two");
    }
}
