//! The handler's second output besides the answer: each routed call,
//! shown to whoever listens (call records, docs/architecture.md "where
//! future parts go"). A borrowed view, handed over once the answer is
//! written: the listener copies what it keeps, and a handler with no
//! listener does no work for it.

use super::peer::Peer;
use crate::records::CallEvent;
use crate::routing::Decision;
use crate::sip::Request;

/// One INVITE the routing rules decided, as the handler saw it.
#[derive(Debug, Clone, Copy)]
pub struct RoutedCall<'a, 'r, 't> {
    pub request: &'a Request<'r>,
    pub peer: Peer,
    /// The caller's number as the rules were given it (P-Asserted-Identity
    /// from a trusted peer, else From's user part).
    pub caller: Option<&'r [u8]>,
    pub decision: &'a Decision<'t>,
    /// The status code of the answer written.
    pub status: u16,
}

/// Told of each routed call. Called on the request path: an
/// implementation must only copy and queue, never wait.
pub trait CallTap {
    /// A call answered here (302, 404, 480).
    fn routed(&mut self, call: &RoutedCall<'_, '_, '_>);

    /// A call proxy mode relays: its record, which the proxy driver
    /// completes with the outcome and sends when the call ends.
    fn relayed(&mut self, _call: &RoutedCall<'_, '_, '_>) -> Option<CallEvent> {
        None
    }
}
