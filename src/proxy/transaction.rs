//! What every transaction state machine (RFC 3261 §17) hands back to its
//! driver: messages to send, events for the transaction user (the proxy
//! core, §16), and its end. Shared by the client and server machines so a
//! driver handles them alike.

use std::collections::VecDeque;
use std::time::Instant;

use super::timers::TimerKind;

/// One thing a transaction wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<E> {
    /// Send these bytes to the transaction's peer (the request or ACK for
    /// a client transaction, a response for a server one).
    Transmit(Vec<u8>),
    /// Tell the transaction user (§17: the "TU", here the proxy core).
    ToCore(E),
    /// The transaction is over; it accepts no more input.
    Terminated(Termination),
}

/// Why a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The normal end: its last wait timer (D, I, K, L, M) fired, or it
    /// needed none on a reliable transport.
    Completed,
    /// It gave up waiting (Timer B, F or H).
    Timeout,
    /// The transport reported an error (§17.1.4, §17.2.4).
    TransportError,
}

/// The earliest of some optional deadlines.
pub(crate) fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

/// A timer's deadline if it is armed and due at `now`.
pub(crate) fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}

/// Of a machine's armed timers, the earliest one due at `now`: what its
/// `on_timeout` fires next.
pub(crate) fn next_due<const N: usize>(
    timers: [(TimerKind, Option<Instant>); N],
    now: Instant,
) -> Option<TimerKind> {
    timers
        .into_iter()
        .filter(|(_, at)| due(*at, now))
        .min_by_key(|(_, at)| *at)
        .map(|(kind, _)| kind)
}

/// How many timers one `on_timeout` call fires at most: each machine has
/// at most two armed at once, and a bound keeps a zero T1 from looping.
pub(crate) const MAX_FIRES_PER_CALL: usize = 8;

/// Heap bytes of a queue of actions: the queue and the bytes to send.
pub(crate) fn queued_bytes<E>(actions: &VecDeque<Action<E>>) -> usize {
    actions.capacity() * std::mem::size_of::<Action<E>>()
        + actions
            .iter()
            .map(|a| match a {
                Action::Transmit(bytes) => bytes.capacity(),
                _ => 0,
            })
            .sum::<usize>()
}

/// Takes the next action; an emptied queue gives its memory back, since a
/// transaction lives for seconds and queues only a few actions at a time.
pub(crate) fn pop<E>(actions: &mut VecDeque<Action<E>>) -> Option<Action<E>> {
    let next = actions.pop_front();
    if next.is_none() && actions.capacity() > 0 {
        *actions = VecDeque::new();
    }
    next
}
