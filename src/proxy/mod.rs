//! Proxy mode's protocol core (RFC 3261 §16–17, RFC 6026, RFC 5393):
//! sans-IO state machines that hold no sockets and read no clock. The
//! caller feeds them bytes and the current `Instant`, and drains what
//! they want sent and when they next want to be woken.

pub mod best;
pub mod branch;
pub mod call;
pub mod client_invite;
pub mod client_non_invite;
pub mod forward;
pub mod server_invite;
pub mod timers;
pub mod transaction;
