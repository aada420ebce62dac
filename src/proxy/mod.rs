//! Proxy mode's protocol core: a transaction-stateful proxy (RFC 3261
//! §16–17, RFC 6026, RFC 5393) as sans-IO state machines, in the style of
//! quinn-proto and hickory-proto. Nothing here holds a socket, reads the
//! clock, spawns or sleeps: the driver feeds in bytes and the current
//! `Instant`, then drains what to send and when to wake it next.
//!
//! ## Driving a call
//!
//! ```text
//! INVITE from a trusted peer, routed (routing::Decision -> Vec<Target>):
//!     call = Call::new(bytes, Upstream { source, transport }, targets, config, nonce, now)?
//!     map: caller's (Via branch, sent-by) -> call      (to match its CANCEL, ACK and retransmissions)
//!     map: nonce -> call                                (branch::parse(response's top branch).call_nonce)
//! loop:
//!     while let Some(Transmit { to, bytes }) = call.poll_transmit() {
//!         Upstream  -> the caller (by its Via, §18.2.2, or the connection it came on)
//!         Leg(i)    -> target i's next hop (next_hop setting or RFC 3263 resolution);
//!                      on a send error: call.on_leg_transport_error(i, now)
//!     }
//!     sleep until call.poll_deadline(), or until a message:
//!         response for the call        -> call.on_response(bytes, now)
//!         CANCEL matching the INVITE   -> call.on_cancel(bytes, now)
//!         INVITE retransmission        -> call.on_invite_retransmission()
//!         ACK for our non-2xx          -> call.on_ack(now)
//!         deadline passed              -> call.on_timeout(now)
//!     if call.is_done() { record call.summary(now); drop the call }
//! a 2xx matching no call (its call ended): forward::relay_stray_2xx(bytes)
//! ```
//!
//! ## The pieces and their rules
//!
//! | file | what | RFC |
//! |---|---|---|
//! | `timers.rs` | T1 500 ms, T2 4 s, T4 5 s; A, B, D, E, F, G, H, I, K, L, M; C > 3 min; none of the retransmission timers and zero wait timers on TCP/TLS | 3261 §17, Table 4; 6026 §8.11; 3261 §16.8 |
//! | `branch.rs` | `z9hG4bK` branches carrying a loop hash, the call's nonce and the leg; loop vs spiral; matching a response to a client transaction | 3261 §8.1.1.7, §16.3 step 4, §16.6 step 8, §17.1.3; 5393 |
//! | `forward.rs` | the forwarded INVITE (Request-URI, Max-Forwards, Record-Route, Diversion, Via with `rport`, `received` on the previous hop's Via, Content-Length), the CANCEL, the hop-by-hop ACK, relaying responses without our Via | 3261 §16.6, §9.1, §17.1.1.3, §16.7 step 3, §18.2.1; 3581; 5806 |
//! | `client_invite.rs` | INVITE client transaction: Calling, Proceeding, Completed, Accepted, Terminated | 3261 §17.1.1; 6026 §7.2 |
//! | `client_non_invite.rs` | the CANCEL's client transaction: Trying, Proceeding, Completed, Terminated | 3261 §17.1.2 |
//! | `server_invite.rs` | INVITE server transaction: 100 at once, retransmitted INVITEs absorbed, G/H/I, Accepted with L | 3261 §17.2.1; 6026 §7.1 |
//! | `transaction.rs` | the actions every machine hands back | 3261 §17 |
//! | `best.rs` | the best final response: 6xx, then lowest class, 503 → 500, local failures last, 408 only when nothing answered | 3261 §16.7 step 6, §16.9 |
//! | `dialog_route.rs` | our Record-Route with a MAC of the dialog; an in-dialog request through it: which way, or forged | 3261 §16.4, §16.6 step 4, §16.12 |
//! | `locate.rs` | RFC 3263's questions for a target URI (NAPTR, SRV, A/AAAA) and the order of the answers | 3263 §4; 2782 |
//! | `call.rs` | one call: serial forking, ring time, CANCEL rules, 2xx always forwarded, caller CANCEL, Timer C, 482/483, the summary | 3261 §16, §9.1, §16.8, §16.10; 6026 |
//!
//! ## The call, end to end
//!
//! ```text
//!  caller                 switchboard (Call)                     leg 0            leg 1
//!    | INVITE ------------>| 100 Trying (at once)                  |                |
//!    |<-------- 100 -------| INVITE (Via ours, MF-1) ------------->|                |
//!    |                     |<------------------------------ 180 ---|                |
//!    |<-------- 180 -------|   (our Via removed; Timer C reset)    |                |
//!    |                     | ring_seconds over, a 1xx was seen:    |                |
//!    |                     | CANCEL ------------------------------>|                |
//!    |                     | INVITE + Diversion: ...;reason=no-answer --------------->|
//!    |                     |<-------------------------- 200 (CANCEL)|                |
//!    |                     |<------------------------------ 487 ---|                |
//!    |                     | ACK (hop by hop) -------------------->|                |
//!    |                     |<------------------------------------------------- 180 --|
//!    |<-------- 180 -------|                                       |                |
//!    |                     |<------------------------------------------------- 200 --|
//!    |<-------- 200 -------|  forwarded at once, and every later 2xx too            |
//!    | ACK (end to end, or through us with Record-Route) -------------------------->|
//! ```
//!
//! The transaction state diagrams are in each machine's file; the core's
//! decisions (failover, 6xx, CANCEL timing, races) are listed in
//! `call.rs`.

pub mod best;
pub mod branch;
pub mod call;
pub mod client_invite;
pub mod client_non_invite;
pub mod dialog_route;
pub mod forward;
pub mod locate;
pub mod server_invite;
pub mod timers;
pub mod transaction;

pub use call::{
    Call, CallError, CallSummary, CancelReason, Destination, LegOutcome, LegSummary, ProxyConfig,
    ResponseFate, Target, Transmit, Transport, Upstream,
};
pub use timers::{TimerKind, Timers};
