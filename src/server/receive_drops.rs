//! Datagrams the kernel dropped because a SIP UDP socket's receive buffer
//! was full: the workers did not keep up with a burst, or were not run for
//! a while. switchboard never sees these requests, so its own counters
//! cannot show them; the peer retransmits an INVITE after 500 ms (RFC 3261
//! §17.1.1.2) and the call is late. Linux reports them per socket in the
//! `drops` column of `/proc/net/udp` and `/proc/net/udp6`; the sockets are
//! known by their inode. Elsewhere there is nothing to read, and nothing is
//! reported.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// The kernel's drop counts of a set of UDP sockets.
#[derive(Debug, Clone)]
pub struct ReceiveDrops {
    inodes: Vec<u64>,
}

impl ReceiveDrops {
    /// Watches these sockets (those whose inode can be read).
    pub fn of<'s>(sockets: impl IntoIterator<Item = &'s UdpSocket>) -> ReceiveDrops {
        let inodes = sockets.into_iter().filter_map(socket_inode).collect();
        ReceiveDrops { inodes }
    }

    /// Datagrams dropped on these sockets since they were opened; `None`
    /// when the kernel's tables cannot be read (not Linux).
    pub fn total(&self) -> Option<u64> {
        if self.inodes.is_empty() {
            return None;
        }
        let mut readable = false;
        let mut total = 0;
        for table in ["/proc/self/net/udp", "/proc/self/net/udp6"] {
            if let Ok(text) = std::fs::read_to_string(table) {
                readable = true;
                total += drops_in(&text, &self.inodes);
            }
        }
        readable.then_some(total)
    }
}

/// A socket's inode, from its `/proc/self/fd` link (`socket:[INODE]`).
fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The sum of the `drops` column over the rows of a `/proc/net/udp`-style
/// table whose `inode` column is one of `inodes`. Rows that do not read
/// as numbers are skipped.
fn drops_in(table: &str, inodes: &[u64]) -> u64 {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    const INODE: usize = 9;
    const DROPS: usize = 12;
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let columns: Vec<&str> = row.split_whitespace().collect();
            let inode: u64 = columns.get(INODE)?.parse().ok()?;
            let drops: u64 = columns.get(DROPS)?.parse().ok()?;
            inodes.contains(&inode).then_some(drops)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  254: 0100007F:BD27 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81712 2 0000000000000000 19608
  254: 0100007F:BD27 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81713 2 0000000000000000 7
 1021: 00000000:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 5555 2 0000000000000000 900
 1022: garbage
";

    #[test]
    fn sums_the_drops_of_our_sockets_only() {
        assert_eq!(drops_in(TABLE, &[81712, 81713]), 19615);
        assert_eq!(drops_in(TABLE, &[81713]), 7);
        assert_eq!(drops_in(TABLE, &[1]), 0);
        assert_eq!(drops_in("", &[81712]), 0);
    }

    #[test]
    fn reads_a_real_socket() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let drops = ReceiveDrops::of([&socket]);
        if cfg!(target_os = "linux") {
            assert_eq!(drops.inodes.len(), 1);
            assert_eq!(drops.total(), Some(0));
        }
    }
}
