//! The one seam between the transports and the domain: bytes in, an
//! answer (or silence) out. Implements the SIP behaviour table of
//! docs/sip.md as a stateless UAS (RFC 3261 §8.2): parse, decide, answer.

use std::net::SocketAddr;
use std::time::Instant;

use ipnet::IpNet;
use tracing::debug;

use super::address::listed;
use super::call_tap::{CallTap, RoutedCall};
use super::flood::{FloodGuard, Verdict};
use super::redirect::{self, Origin, Presentation};
use super::relay::Relay;
use super::relay::driver::transaction_keys;
use super::relay::inbox::{Inbound, Refused};
use super::relay::plan;
use crate::proxy::dialog_route::{self, InDialog};
use crate::records::CallEvent;
use crate::routing::{Disposition, RoutingTable, Rule, Spelling};
use crate::settings::{Settings, SettingsError, Untrusted, UntrustedOptions};
use crate::sip::header_lines;
use crate::sip::uri::each_name_addr;
use crate::sip::{
    Framing, Method, MethodKind, ParseLimits, Request, Scheme, Status, Uri, write_response,
};

pub use super::peer::{Peer, Transport};

/// Methods this server answers (RFC 3261 §20.5).
const ALLOW: &[u8] = b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n";

/// The request handler every worker shares: the policy fixed at start-up
/// and the flood guard, whose per-source buckets every worker updates.
#[derive(Debug)]
pub struct Handler {
    pub policy: Policy,
    pub flood: FloodGuard,
    /// Proxy mode's inbox, when any peer is relayed.
    pub relay: Option<Relay>,
}

/// How requests are screened and answered: settings fixed at start-up.
#[derive(Debug)]
pub struct Policy {
    pub server_header: String,
    pub trust: Vec<IpNet>,
    pub untrusted: Untrusted,
    pub untrusted_options: UntrustedOptions,
    pub parse_limits: ParseLimits,
    pub presentation: Presentation,
}

impl Handler {
    /// The handler's part of the server settings.
    pub fn from_settings(settings: &Settings) -> Result<Handler, SettingsError> {
        Ok(Handler {
            policy: Policy {
                server_header: settings.server_header.clone(),
                trust: settings.trust.clone(),
                untrusted: settings.untrusted,
                untrusted_options: settings.untrusted_options,
                parse_limits: ParseLimits {
                    max_headers: settings.limits.max_headers,
                    max_header_bytes: settings.limits.max_header_bytes,
                },
                presentation: Presentation {
                    contact_template: settings.template()?,
                    diversion: settings.diversion,
                    contact_headers: settings.contact_headers,
                    rule_header: settings.rule_header,
                },
            },
            flood: FloodGuard::new(&settings.flood),
            relay: None,
        })
    }

    /// The same handler, relaying the calls of the peers `relay` names.
    pub fn with_relay(mut self, relay: Relay) -> Handler {
        self.relay = Some(relay);
        self
    }

    /// Sends what proxy mode held back from the batch just handled (a
    /// UDP worker calls this after each batch; see `relay::outbox`).
    pub fn send_held(&self) {
        if let Some(relay) = &self.relay {
            relay.inbox.send_held();
        }
    }

    /// The relay for `peer`'s requests, when it is relayed.
    fn relay_for(&self, peer: Peer) -> Option<&Relay> {
        self.relay.as_ref().filter(|r| r.relays(peer.source.ip()))
    }
}

/// One worker's side of the seam, for one message: what `handle` reads
/// besides the message and where it writes. What a new part needs from
/// the request path (call records' tap today) is a field here, so that
/// no call site of `handle` changes with it.
pub struct Context<'w> {
    /// The routing table in force: one guard per batch or read.
    pub table: &'w RoutingTable,
    /// Where the answer is written; the transport sends it.
    pub out: &'w mut Vec<u8>,
    /// Told of each routed call, when something listens.
    pub tap: Option<&'w mut dyn CallTap>,
}

impl<'w> Context<'w> {
    pub fn new(table: &'w RoutingTable, out: &'w mut Vec<u8>) -> Context<'w> {
        Context {
            table,
            out,
            tap: None,
        }
    }

    /// The same, telling `tap` of each routed call.
    pub fn with_tap(mut self, tap: &'w mut dyn CallTap) -> Context<'w> {
        self.tap = Some(tap);
        self
    }
}

/// Why nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// Not a SIP request, or no Via to answer to.
    NotARequest,
    /// ACK: absorbed (§17.2.1 / the stateless UAS of §8.2.7).
    Ack,
    /// CANCEL: a stateless UAS ignores it (§8.2.7); the INVITE was
    /// answered at once.
    Cancel,
    /// From a peer outside the trust list, with `untrusted: drop`.
    Untrusted,
    /// From a source over its flood limit, already told so.
    Flooding,
    /// Over the size limit, with no readable head naming a transaction.
    Oversize,
    /// Proxy mode: a request handed to the proxy driver, which answers it.
    Relayed(MethodKind),
    /// Proxy mode: a response from a next hop, handed to the proxy driver.
    Response,
}

/// The handler's verdict on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response is in the output buffer; over UDP it goes to `to`
    /// (§18.2.2), over TCP back on the connection.
    Reply {
        to: SocketAddr,
        status: u16,
        method: MethodKind,
        /// The routing rule behind a 302/480/404 to an INVITE; `None` for
        /// every other answer.
        decided_by: Option<Rule>,
    },
    Silent(Silence),
}

impl Outcome {
    /// The same outcome, marked as the routing rules' answer.
    fn decided_by(self, rule: Rule) -> Outcome {
        match self {
            Outcome::Reply {
                to, status, method, ..
            } => Outcome::Reply {
                to,
                status,
                method,
                decided_by: Some(rule),
            },
            silent => silent,
        }
    }
}

impl Handler {
    /// Handles one message; the response, if any, is written to `cx.out`.
    pub fn handle(&self, cx: &mut Context<'_>, message: &[u8], peer: Peer) -> Outcome {
        handle(self, cx, message, peer)
    }

    /// Handles the readable head of a message over the size limit; see
    /// [`handle_oversize`].
    pub fn handle_oversize(&self, out: &mut Vec<u8>, head: &[u8], peer: Peer) -> Outcome {
        handle_oversize(self, head, peer, out)
    }
}

/// Bytes → parse → screen → the behaviour table → decide → answer.
fn handle(handler: &Handler, cx: &mut Context<'_>, message: &[u8], peer: Peer) -> Outcome {
    let config = &handler.policy;
    let out = &mut *cx.out;
    let verdict = match flood_verdict(handler, peer) {
        Ok(verdict) => verdict,
        Err(outcome) => return outcome,
    };
    if let Some(relay) = &handler.relay
        && message.starts_with(b"SIP/2.0 ")
    {
        // A next hop's answer: only the driver can match it to a call.
        let response = Inbound::Response {
            message: message.to_vec(),
            peer,
        };
        return match relay.inbox.send(response) {
            Ok(()) => Outcome::Silent(Silence::Response),
            Err(_) => Outcome::Silent(Silence::NotARequest),
        };
    }
    let Some(request) = Request::parse_within(message, peer.framing, config.parse_limits) else {
        return Outcome::Silent(Silence::NotARequest);
    };
    let trusted = match screen(handler, &request, message, peer, verdict, out) {
        Ok(trusted) => trusted,
        Err(outcome) => return outcome,
    };
    let answer = Answer::new(config, &request, peer);
    if let Some(problem) = request.problem {
        debug!(source = %peer.source, ?problem, "malformed request");
        return answer.send(
            out,
            Status::new(problem.status(), problem.reason_phrase()),
            |_| {},
        );
    }
    match request.method {
        Method::Cancel => return cancel(handler, &answer, message),
        Method::Other(_) => {
            return answer.send(out, Status::new(405, "Method Not Allowed"), |o| {
                o.extend_from_slice(ALLOW)
            });
        }
        _ => {}
    }
    // RFC 3261 §16.3 lets the final recipient answer an OPTIONS itself
    // whatever its Max-Forwards; everything else at 0 goes no further.
    if request.max_forwards == Some(0) && request.method != Method::Options {
        return answer.send(out, Status::new(483, "Too Many Hops"), |_| {});
    }
    let uri = Uri::parse(request.uri);
    if !matches!(
        uri.map(|u| u.scheme),
        Some(Scheme::Sip | Scheme::Sips | Scheme::Tel)
    ) {
        return answer.send(out, Status::new(416, "Unsupported URI Scheme"), |_| {});
    }
    // A relayed INVITE's Require is for the phone that answers it, not for
    // a proxy (RFC 3261 §16.3: a proxy checks Proxy-Require only, and here
    // supports none of its tags).
    if request.method == Method::Invite && handler.relay_for(peer).is_some() {
        let tags = proxy_requires(message);
        if !tags.is_empty() {
            return bad_extension(&answer, out, &tags);
        }
    } else if !request.requires().is_empty() {
        // We support no extensions (§8.2.2.3): list every option tag asked for.
        return bad_extension(&answer, out, request.requires());
    }
    match request.method {
        Method::Options => answer.send(out, Status::new(200, "OK"), |o| {
            o.extend_from_slice(ALLOW);
            o.extend_from_slice(b"Accept: application/sdp\r\n");
            o.extend_from_slice(b"Supported: \r\n");
        }),
        Method::Bye => answer.send(
            out,
            Status::new(481, "Call/Transaction Does Not Exist"),
            |_| {},
        ),
        Method::Invite if request.to_tag().is_some() => answer.send(
            out,
            Status::new(481, "Call/Transaction Does Not Exist"),
            |_| {},
        ),
        _ => route(
            handler,
            &answer,
            cx,
            message,
            uri.and_then(|u| u.user),
            trusted,
        ),
    }
}

/// A request of a dialog we record-routed, with our Route on top: relayed
/// (§16.12), or refused when its Route's MAC fits neither end of the
/// dialog. Before the trust list: the phone's end of the dialog is not a
/// trusted peer, and the MAC is what admits it. `None`: not such a
/// request.
fn through_our_route(
    handler: &Handler,
    request: &Request<'_>,
    message: &[u8],
    peer: Peer,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    let relay = handler.relay.as_ref()?;
    let dialogs = relay.dialogs.as_ref()?;
    if request.to_tag().is_none() || request.problem.is_some() {
        return None;
    }
    let kind = request.method.kind();
    let answer = Answer::new(&handler.policy, request, peer);
    match dialog_route::classify(message, request, &dialogs.key, &dialogs.sent_by) {
        InDialog::NotOurs => None,
        InDialog::Forged if request.method == Method::Ack => Some(Outcome::Silent(Silence::Ack)),
        InDialog::Forged => {
            debug!(source = %peer.source, "in-dialog request with a forged Route: 403");
            Some(answer.send(out, Status::new(403, "Forbidden"), |_| {}))
        }
        InDialog::Relay { direction, next } => {
            let relayed = Inbound::InDialog {
                message: message.to_vec(),
                peer,
                respond_to: answer.to,
                direction,
                next,
            };
            // Only new calls are ever refused at the inbox: this is not
            // one, and adds nothing to the calls in flight.
            let _ = relay.inbox.send(relayed);
            Some(Outcome::Silent(Silence::Relayed(kind)))
        }
    }
}

/// The flood guard's word on a message, before it is parsed: a flood
/// must cost as little as possible.
fn flood_verdict(handler: &Handler, peer: Peer) -> Result<Verdict, Outcome> {
    match handler.flood.admit(peer.source.ip(), Instant::now) {
        Verdict::Drop => Err(Outcome::Silent(Silence::Flooding)),
        verdict => Ok(verdict),
    }
}

/// What every parsed request goes through before its content matters:
/// a usable top Via, ACKs absorbed, the trust list, the flood guard's
/// 503. Whether the peer is trusted, or the outcome when it ends here.
/// Takes the request by reference: it is large, and moving it costs.
fn screen(
    handler: &Handler,
    request: &Request<'_>,
    message: &[u8],
    peer: Peer,
    verdict: Verdict,
    out: &mut Vec<u8>,
) -> Result<bool, Outcome> {
    let config = &handler.policy;
    if request.top_via.is_none() {
        debug!(source = %peer.source, problem = ?request.problem, "dropped: no usable Via");
        return Err(Outcome::Silent(Silence::NotARequest));
    }
    if let Some(outcome) = through_our_route(handler, request, message, peer, out) {
        return Err(outcome);
    }
    if request.method == Method::Ack {
        if let Some(relay) = handler.relay_for(peer) {
            // The driver absorbs it (a non-2xx's ACK) or relays it to the
            // leg that answered (a 2xx's); an unknown one is dropped there.
            let ack = Inbound::Ack {
                message: message.to_vec(),
                peer,
            };
            if relay.inbox.send(ack).is_ok() {
                return Err(Outcome::Silent(Silence::Relayed(MethodKind::Ack)));
            }
        }
        return Err(Outcome::Silent(Silence::Ack));
    }
    let trusted = peer.trusted_by_certificate || listed(&config.trust, peer.source.ip());
    let answer = || Answer::new(config, request, peer);
    // An OPTIONS answer reveals no routing: it may be let through.
    let answerable_options =
        request.method == Method::Options && config.untrusted_options == UntrustedOptions::Answer;
    if !trusted && !answerable_options {
        return Err(match (config.untrusted, request.method) {
            (_, Method::Cancel) => Outcome::Silent(Silence::Cancel),
            (_, Method::Options) | (Untrusted::Drop, _) => Outcome::Silent(Silence::Untrusted),
            (Untrusted::Reject, _) if verdict != Verdict::Admit => {
                Outcome::Silent(Silence::Flooding)
            }
            (Untrusted::Reject, _) => answer().send(out, Status::new(403, "Forbidden"), |_| {}),
        });
    }
    if let Verdict::Refuse { retry_after } = verdict {
        if request.method == Method::Cancel {
            return Err(Outcome::Silent(Silence::Cancel));
        }
        debug!(source = %peer.source, "over the flood limit: 503, then silence");
        return Err(
            answer().send(out, Status::new(503, "Service Unavailable"), |o| {
                o.extend_from_slice(b"Retry-After: ");
                o.extend_from_slice(itoa::Buffer::new().format(retry_after).as_bytes());
                o.extend_from_slice(b"\r\n");
            }),
        );
    }
    Ok(trusted)
}

/// Handles a message over the size limit, of which only `head` (see
/// [`readable_head`](crate::sip::oversize::readable_head)) is read:
/// admitted like any request, then `513 Message Too Large` (RFC 3261
/// §21.5.7) when the head names a transaction to answer (a top Via,
/// From, To, Call-ID and CSeq), silence otherwise.
fn handle_oversize(handler: &Handler, head: &[u8], peer: Peer, out: &mut Vec<u8>) -> Outcome {
    let config = &handler.policy;
    // The head alone: a body, if any, is past the limit and unread.
    let peer = Peer {
        framing: Framing::Datagram,
        ..peer
    };
    let verdict = match flood_verdict(handler, peer) {
        Ok(verdict) => verdict,
        Err(outcome) => return outcome,
    };
    let Some(request) = Request::parse_within(head, peer.framing, config.parse_limits) else {
        return Outcome::Silent(Silence::Oversize);
    };
    match screen(handler, &request, head, peer, verdict, out) {
        Ok(_) => {}
        Err(Outcome::Silent(Silence::NotARequest)) => return Outcome::Silent(Silence::Oversize),
        Err(outcome) => return outcome,
    }
    if request.method == Method::Cancel {
        return Outcome::Silent(Silence::Cancel);
    }
    let identified = request.from.is_some()
        && request.to.is_some()
        && request.call_id.is_some_and(|id| !id.is_empty())
        && request.cseq.is_some();
    if !identified {
        return Outcome::Silent(Silence::Oversize);
    }
    debug!(source = %peer.source, "a request over the size limit: 513");
    Answer::new(config, &request, peer).send(out, Status::new(513, "Message Too Large"), |_| {})
}

/// Everything needed to write one response.
struct Answer<'a, 'r> {
    policy: &'a Policy,
    request: &'a Request<'r>,
    peer: Peer,
    source: SocketAddr,
    to: SocketAddr,
}

impl<'a, 'r> Answer<'a, 'r> {
    /// The answer to `request`, which has a usable top Via.
    fn new(policy: &'a Policy, request: &'a Request<'r>, peer: Peer) -> Self {
        let source = peer.source;
        let to = request
            .top_via
            .map_or(source, |via| via.response_address(source));
        Answer {
            policy,
            request,
            peer,
            source,
            to,
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            addr: self.source,
            transport: self.peer.transport,
        }
    }

    fn send(&self, out: &mut Vec<u8>, status: Status, extra: impl FnOnce(&mut Vec<u8>)) -> Outcome {
        write_response(
            out,
            self.request,
            self.source,
            status,
            &self.policy.server_header,
            extra,
        );
        Outcome::Reply {
            to: self.to,
            status: status.code,
            method: self.request.method.kind(),
            decided_by: None,
        }
    }
}

/// Rules 1–3 for an INVITE that reached them (docs/routing.md): the
/// decision, answered as `redirect` writes it, and shown to the tap.
fn route(
    handler: &Handler,
    answer: &Answer<'_, '_>,
    cx: &mut Context<'_>,
    message: &[u8],
    dialed: Option<&[u8]>,
    trusted: bool,
) -> Outcome {
    let request = answer.request;
    let caller = caller(request, trusted);
    let decision = cx.table.decide(dialed.unwrap_or_default(), caller);
    let status = redirect::status_for(decision.disposition);
    debug!(
        source = %answer.source,
        dialed = %String::from_utf8_lossy(dialed.unwrap_or_default()),
        caller = %String::from_utf8_lossy(caller.unwrap_or_default()),
        status = status.code,
        rule = decision.rule.as_str(),
        reason = %decision.reason(),
        "decision"
    );
    let presentation = &answer.policy.presentation;
    let relay = handler
        .relay_for(answer.peer)
        .filter(|_| decision.disposition == Disposition::Routed);
    let routed = |status| RoutedCall {
        request,
        peer: answer.peer,
        caller,
        decision: &decision,
        status,
    };
    let outcome = match relay {
        Some(relay) => {
            // The record is completed by the driver when the call ends;
            // a call refused at the cap (503) has none, like a flood.
            let record = cx
                .tap
                .as_deref_mut()
                .and_then(|tap| tap.relayed(&routed(0)));
            hand_over(relay, answer, message, &decision, record, cx.out)
        }
        None => {
            let outcome = answer.send(cx.out, status, |o| {
                redirect::write_headers(o, presentation, &decision, answer.origin());
            });
            if let Some(tap) = cx.tap.as_deref_mut() {
                tap.routed(&routed(status.code));
            }
            outcome
        }
    };
    outcome.decided_by(decision.rule)
}

/// Proxy mode: the routed INVITE goes to the driver with its legs, which
/// answers it (100 Trying at once, RFC 3261 §16.2). At the in-flight cap,
/// or when the driver cannot take it, `503` with `Retry-After` (§21.5.4).
fn hand_over(
    relay: &Relay,
    answer: &Answer<'_, '_>,
    message: &[u8],
    decision: &crate::routing::Decision<'_>,
    record: Option<CallEvent>,
    out: &mut Vec<u8>,
) -> Outcome {
    let (legs, diverted_from, first_reason) = plan::legs(
        decision,
        &answer.policy.presentation,
        answer.origin(),
        relay.ring(),
    );
    // The driver finds the call's retransmissions and CANCEL by these
    // (§17.2.3); without a branch (RFC 2543) it could not.
    let Some(keys) = transaction_keys(answer.request) else {
        return answer.send(out, Status::new(400, "Missing Via Branch"), |_| {});
    };
    let invite = Inbound::Invite {
        message: message.to_vec(),
        keys,
        peer: answer.peer,
        respond_to: answer.to,
        legs,
        diverted_from,
        first_reason,
        record: record.map(Box::new),
    };
    match relay.inbox.send(invite) {
        Ok(()) => Outcome::Silent(Silence::Relayed(MethodKind::Invite)),
        Err(refused) => {
            debug!(source = %answer.source, ?refused, "proxy mode: 503");
            let retry_after: &[u8] = match refused {
                Refused::AtCapacity => b"Retry-After: 5\r\n",
            };
            answer.send(out, Status::new(503, "Service Unavailable"), |o| {
                o.extend_from_slice(retry_after)
            })
        }
    }
}

/// A CANCEL: ignored by a redirect server (§8.2.7: its INVITE was answered
/// at once); in proxy mode the driver matches it to its INVITE and answers
/// it (§16.10), `200` or `481`.
fn cancel(handler: &Handler, answer: &Answer<'_, '_>, message: &[u8]) -> Outcome {
    let Some(relay) = handler.relay_for(answer.peer) else {
        return Outcome::Silent(Silence::Cancel);
    };
    let cancel = Inbound::Cancel {
        message: message.to_vec(),
        peer: answer.peer,
        respond_to: answer.to,
    };
    match relay.inbox.send(cancel) {
        Ok(()) => Outcome::Silent(Silence::Relayed(MethodKind::Cancel)),
        Err(_) => Outcome::Silent(Silence::Cancel),
    }
}

/// `420 Bad Extension` listing every option tag asked for (§8.2.2.3, §16.3).
fn bad_extension(answer: &Answer<'_, '_>, out: &mut Vec<u8>, tags: &[&[u8]]) -> Outcome {
    answer.send(out, Status::new(420, "Bad Extension"), |o| {
        o.extend_from_slice(b"Unsupported: ");
        for (i, value) in tags.iter().enumerate() {
            if i > 0 {
                o.extend_from_slice(b", ");
            }
            o.extend_from_slice(value);
        }
        o.extend_from_slice(b"\r\n");
    })
}

/// The option tags of a request's `Proxy-Require` headers (RFC 3261
/// §20.29), none of which this proxy supports. Read from the bytes only on
/// the proxy path: the redirect path never pays for it.
fn proxy_requires(message: &[u8]) -> Vec<&[u8]> {
    let Some(start) = header_lines::start_line_end(message) else {
        return Vec::new();
    };
    header_lines::headers(message, start)
        .filter(|header| header.is(b"Proxy-Require"))
        .flat_map(|header| header.value.split(|&b| b == b','))
        .map(crate::sip::text::trim)
        .filter(|tag| !tag.is_empty())
        .collect()
}

/// The caller's number: P-Asserted-Identity from a trusted peer (RFC 3325
/// §9.1), else From. Of the asserted identities (often a sip and a tel
/// URI), the first whose user part is a phone number.
fn caller<'r>(request: &Request<'r>, trusted: bool) -> Option<&'r [u8]> {
    let is_number = |user: &&[u8]| Spelling::parse(user).is_ok();
    let asserted = request
        .p_asserted_identity
        .filter(|_| trusted)
        .and_then(|pai| {
            each_name_addr(pai).find_map(|addr| Uri::parse(addr.uri)?.user.filter(is_number))
        });
    asserted.or_else(|| {
        let from = request.from_addr?;
        Uri::parse(from.uri)?.user
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::routing::{Disposition, Region};
    use crate::routing_data::Loader;

    fn table() -> RoutingTable {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.yaml");
        Loader::new(path, Region::from_code("US").expect("US"))
            .load()
            .expect("the example data loads")
            .table
    }

    fn invite(call_id: &str, to: &str) -> String {
        format!(
            "INVITE sip:{to}@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-{call_id}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+16505550123@127.0.0.1>;tag=1\r\n\
             To: <sip:{to}@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    /// Keeps what a call-records tap would: the Call-ID, the status and
    /// the rule of each routed call.
    #[derive(Default)]
    struct Seen(Vec<(String, u16, Disposition, &'static str)>);

    impl CallTap for Seen {
        fn routed(&mut self, call: &RoutedCall<'_, '_, '_>) {
            let call_id = String::from_utf8_lossy(call.request.call_id.unwrap_or_default());
            self.0.push((
                call_id.into_owned(),
                call.status,
                call.decision.disposition,
                call.decision.rule.as_str(),
            ));
        }
    }

    #[test]
    fn the_tap_sees_each_routed_call_and_nothing_else() {
        let handler = Handler::from_settings(&Settings::default()).expect("defaults");
        let table = table();
        let peer = Peer::at(SocketAddr::from(([127, 0, 0, 1], 5062)), Transport::Udp);
        let mut seen = Seen::default();
        let mut out = Vec::new();
        let messages = [
            invite("routed", "+18005550100"),
            invite("unknown", "+19995550100"),
            // Not routed: an OPTIONS, and an INVITE inside a dialog.
            invite("options", "+18005550100").replace("INVITE", "OPTIONS"),
            invite("in-dialog", "+18005550100").replace(
                "To: <sip:+18005550100@127.0.0.1>",
                "To: <sip:+18005550100@127.0.0.1>;tag=x",
            ),
        ];
        let mut statuses = Vec::new();
        for message in &messages {
            out.clear();
            let mut cx = Context::new(&table, &mut out).with_tap(&mut seen);
            match handler.handle(&mut cx, message.as_bytes(), peer) {
                Outcome::Reply { status, .. } => statuses.push(status),
                silent => panic!("{silent:?}"),
            }
        }
        assert_eq!(statuses, [302, 404, 200, 481]);
        assert_eq!(
            seen.0,
            [
                ("routed".to_owned(), 302, Disposition::Routed, "number_user"),
                (
                    "unknown".to_owned(),
                    404,
                    Disposition::UnknownNumber,
                    "none"
                ),
            ]
        );
    }

    #[test]
    fn a_context_without_a_tap_answers_the_same_bytes() {
        let handler = Handler::from_settings(&Settings::default()).expect("defaults");
        let table = table();
        let peer = Peer::at(SocketAddr::from(([127, 0, 0, 1], 5062)), Transport::Udp);
        let message = invite("same", "+18005550100");
        let (mut plain, mut tapped) = (Vec::new(), Vec::new());
        handler.handle(
            &mut Context::new(&table, &mut plain),
            message.as_bytes(),
            peer,
        );
        let mut seen = Seen::default();
        let mut cx = Context::new(&table, &mut tapped).with_tap(&mut seen);
        handler.handle(&mut cx, message.as_bytes(), peer);
        assert_eq!(plain, tapped);
        assert_eq!(seen.0.len(), 1);
    }
}
