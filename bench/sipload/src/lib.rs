//! switchboard's own SIP load tools: `sipload` (an INVITE load generator over UDP,
//! TCP and TLS, closed or open loop, an answer checker, and a TLS handshake rate)
//! and `sipreflect` (a canned-302 responder: the wire's limit). See
//! `bench/sipload/README.md`.
//!
//! Module map: `cli` (command lines), `csv` (calls files), `message` (INVITEs,
//! ACKs, transaction ids), `response` (reading answers), `framing` (TCP),
//! `histogram`, `table` (outstanding transactions), `pacing` (open loop),
//! `stats`, `worker` (one thread's logic), `batch` (recvmmsg/sendmmsg), `udp` and
//! `tcp` (one thread's I/O; `tls` puts rustls under `tcp`), `handshakes`, `load`
//! (threads), `report` (JSON), `verify`, `canned` and `reflect` (the reflector),
//! `proxied` (proxied calls in closed loop, for `proxyload`),
//! `sys` (libc).

pub mod batch;
pub mod canned;
pub mod cli;
pub mod csv;
pub mod framing;
pub mod handshakes;
pub mod histogram;
pub mod load;
pub mod message;
pub mod pacing;
pub mod proxied;
pub mod reflect;
pub mod report;
pub mod response;
pub mod stats;
pub mod sys;
pub mod table;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod verify;
pub mod worker;
