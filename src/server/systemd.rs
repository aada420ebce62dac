//! Readiness and shutdown notices to systemd, the sd_notify(3) protocol
//! written out (docs/operations.md, "Running under systemd").
//!
//! With `Type=notify`, systemd counts the service as started only when it
//! says `READY=1`, so units ordered after switchboard (and `systemctl start`
//! itself) wait until every listener answers, not merely until the process
//! exists. `STOPPING=1` tells systemd the exit that follows is asked for.
//!
//! The protocol is one datagram of `KEY=VALUE` lines on a Unix datagram
//! socket named by `$NOTIFY_SOCKET` (a leading `@`: the Linux abstract
//! namespace). Without the variable (not under systemd) nothing is sent.
//! A notice that cannot be sent is logged, never fatal: the server serves
//! whether or not anyone is listening for it.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use tracing::warn;

/// The variable naming systemd's notification socket.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Says every listener serves (`READY=1`).
pub fn notify_ready() {
    notify("READY=1");
}

/// Says the server is shutting down (`STOPPING=1`).
pub fn notify_stopping() {
    notify("STOPPING=1");
}

/// Sends `state` when `$NOTIFY_SOCKET` is set; logs a failure.
fn notify(state: &str) {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET) else {
        return;
    };
    if let Err(e) = send(&path, state) {
        warn!(
            socket = %path.to_string_lossy(),
            error = %e,
            "cannot tell systemd {state}"
        );
    }
}

/// Sends `state` as one datagram to the socket at `path`.
fn send(path: &OsStr, state: &str) -> io::Result<()> {
    let addr = address(path)?;
    let socket = UnixDatagram::unbound()?;
    let sent = socket.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::other("the notice was cut short"));
    }
    Ok(())
}

/// A path, or with a leading `@` a name in the abstract namespace.
fn address(path: &OsStr) -> io::Result<SocketAddr> {
    let bytes = path.as_bytes();
    match bytes.split_first() {
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "$NOTIFY_SOCKET is empty",
        )),
        Some((b'@', name)) => abstract_address(name),
        Some(_) => SocketAddr::from_pathname(path),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt as _;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt as _;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_address(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names are Linux only",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receiver(dir: &tempfile::TempDir) -> (UnixDatagram, std::path::PathBuf) {
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        (socket, path)
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a notice within 5 s");
        String::from_utf8(buf[..n].to_vec()).expect("UTF-8")
    }

    #[test]
    fn a_socket_in_a_directory_receives_ready() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (socket, path) = receiver(&dir);
        send(path.as_os_str(), "READY=1").expect("sent");
        assert_eq!(receive(&socket), "READY=1");
        send(path.as_os_str(), "STOPPING=1").expect("sent");
        assert_eq!(receive(&socket), "STOPPING=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_name_receives_ready() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("switchboard-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        send(OsStr::new(&format!("@{name}")), "READY=1").expect("sent");
        assert_eq!(receive(&socket), "READY=1");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nobody");
        assert!(send(path.as_os_str(), "READY=1").is_err());
        assert!(send(OsStr::new(""), "READY=1").is_err());
    }
}
