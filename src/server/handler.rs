//! The one seam between the transports and the domain: bytes in, an
//! answer (or silence) out. Implements the SIP behaviour table of
//! docs/sip.md as a stateless UAS (RFC 3261 §8.2): parse, decide, answer.

use std::net::SocketAddr;
use std::time::Instant;

use ipnet::IpNet;
use tracing::debug;

use super::address::listed;
use super::flood::{FloodGuard, Verdict};
use crate::routing::DiversionStyle;
use crate::routing::{
    Decision, E164, Preference, RoutingTable, Rule, Spelling, Status as RouteStatus, Target, Try,
};
use crate::settings::{Settings, SettingsError, Untrusted, UntrustedOptions};
use crate::sip::diversion::{
    DiversionReason, escape_header_value, finish_diversion, finish_history_dialed,
    finish_history_target,
};
use crate::sip::text::write_ip;
use crate::sip::uri::each_name_addr;
use crate::sip::{
    Framing, Method, MethodKind, ParseLimits, Request, Scheme, Status, Uri, write_response,
};
use crate::template::{ContactTemplate, Placeholder};

/// Methods this server answers (RFC 3261 §20.5).
const ALLOW: &[u8] = b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n";

/// What the handler needs besides the routing table: settings fixed at
/// start-up, and the flood guard's per-source buckets shared by every
/// worker.
#[derive(Debug)]
pub struct HandlerConfig {
    pub server_header: String,
    pub contact_template: ContactTemplate,
    pub trust: Vec<IpNet>,
    pub untrusted: Untrusted,
    pub untrusted_options: UntrustedOptions,
    /// Add `X-Switchboard-Rule` to routing answers.
    pub rule_header: bool,
    pub parse_limits: ParseLimits,
    pub flood: FloodGuard,
    /// How 302s name the dialed number, unless the account says.
    pub diversion: DiversionStyle,
    /// Embed that header in each Contact URI too.
    pub contact_headers: bool,
}

impl HandlerConfig {
    /// The handler's part of the server settings.
    pub fn from_settings(settings: &Settings) -> Result<HandlerConfig, SettingsError> {
        Ok(HandlerConfig {
            server_header: settings.server_header.clone(),
            contact_template: settings.template()?,
            trust: settings.trust.clone(),
            untrusted: settings.untrusted,
            untrusted_options: settings.untrusted_options,
            rule_header: settings.rule_header,
            parse_limits: ParseLimits {
                max_headers: settings.limits.max_headers,
                max_header_bytes: settings.limits.max_header_bytes,
            },
            flood: FloodGuard::new(&settings.flood),
            diversion: settings.diversion,
            contact_headers: settings.contact_headers,
        })
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

/// The transport a request came over (RFC 3261 §18): what a Contact
/// template's `{transport}` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The `transport` URI parameter's value (RFC 3261 §19.1.1).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// How messages are delimited on it.
    pub fn framing(self) -> Framing {
        match self {
            Transport::Udp => Framing::Datagram,
            Transport::Tcp | Transport::Tls => Framing::Stream,
        }
    }
}

/// Where the message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub source: SocketAddr,
    pub framing: Framing,
    pub transport: Transport,
    /// Its TLS client certificate verified (and named a trusted name):
    /// trusted like an address on the trust list.
    pub trusted_by_certificate: bool,
}

impl Peer {
    /// A peer known by its address alone.
    pub fn at(source: SocketAddr, transport: Transport) -> Peer {
        Peer {
            source,
            framing: transport.framing(),
            transport,
            trusted_by_certificate: false,
        }
    }
}

/// What a Contact template's placeholders stand for: the sender's
/// address (as its Via says to answer) and the transport it used.
#[derive(Debug, Clone, Copy)]
struct Origin {
    addr: SocketAddr,
    transport: Transport,
}

/// Handles one message; the response, if any, is written to `out`.
pub fn handle(
    config: &HandlerConfig,
    table: &RoutingTable,
    message: &[u8],
    peer: Peer,
    out: &mut Vec<u8>,
) -> Outcome {
    let verdict = match flood_verdict(config, peer) {
        Ok(verdict) => verdict,
        Err(outcome) => return outcome,
    };
    let Some(request) = Request::parse_within(message, peer.framing, config.parse_limits) else {
        return Outcome::Silent(Silence::NotARequest);
    };
    let trusted = match screen(config, &request, peer, verdict, out) {
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
        Method::Cancel => return Outcome::Silent(Silence::Cancel),
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
    if !request.requires().is_empty() {
        // We support no extensions (§8.2.2.3): list every option tag asked for.
        let requires = request.requires();
        return answer.send(out, Status::new(420, "Bad Extension"), |o| {
            o.extend_from_slice(b"Unsupported: ");
            for (i, value) in requires.iter().enumerate() {
                if i > 0 {
                    o.extend_from_slice(b", ");
                }
                o.extend_from_slice(value);
            }
            o.extend_from_slice(b"\r\n");
        });
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
        _ => route(&answer, table, uri.and_then(|u| u.user), trusted, out),
    }
}

/// The flood guard's word on a message, before it is parsed: a flood
/// must cost as little as possible.
fn flood_verdict(config: &HandlerConfig, peer: Peer) -> Result<Verdict, Outcome> {
    match config.flood.admit(peer.source.ip(), Instant::now) {
        Verdict::Drop => Err(Outcome::Silent(Silence::Flooding)),
        verdict => Ok(verdict),
    }
}

/// What every parsed request goes through before its content matters:
/// a usable top Via, ACKs absorbed, the trust list, the flood guard's
/// 503. Whether the peer is trusted, or the outcome when it ends here.
/// Takes the request by reference: it is large, and moving it costs.
fn screen(
    config: &HandlerConfig,
    request: &Request<'_>,
    peer: Peer,
    verdict: Verdict,
    out: &mut Vec<u8>,
) -> Result<bool, Outcome> {
    if request.top_via.is_none() {
        debug!(source = %peer.source, problem = ?request.problem, "dropped: no usable Via");
        return Err(Outcome::Silent(Silence::NotARequest));
    }
    if request.method == Method::Ack {
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
pub fn handle_oversize(
    config: &HandlerConfig,
    head: &[u8],
    peer: Peer,
    out: &mut Vec<u8>,
) -> Outcome {
    // The head alone: a body, if any, is past the limit and unread.
    let peer = Peer {
        framing: Framing::Datagram,
        ..peer
    };
    let verdict = match flood_verdict(config, peer) {
        Ok(verdict) => verdict,
        Err(outcome) => return outcome,
    };
    let Some(request) = Request::parse_within(head, peer.framing, config.parse_limits) else {
        return Outcome::Silent(Silence::Oversize);
    };
    match screen(config, &request, peer, verdict, out) {
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
    config: &'a HandlerConfig,
    request: &'a Request<'r>,
    source: SocketAddr,
    transport: Transport,
    to: SocketAddr,
}

impl<'a, 'r> Answer<'a, 'r> {
    /// The answer to `request`, which has a usable top Via.
    fn new(config: &'a HandlerConfig, request: &'a Request<'r>, peer: Peer) -> Self {
        let source = peer.source;
        let to = request
            .top_via
            .map_or(source, |via| via.response_address(source));
        Answer {
            config,
            request,
            source,
            transport: peer.transport,
            to,
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            addr: self.source,
            transport: self.transport,
        }
    }

    fn send(&self, out: &mut Vec<u8>, status: Status, extra: impl FnOnce(&mut Vec<u8>)) -> Outcome {
        write_response(
            out,
            self.request,
            self.source,
            status,
            &self.config.server_header,
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

fn route(
    answer: &Answer<'_, '_>,
    table: &RoutingTable,
    dialed: Option<&[u8]>,
    trusted: bool,
    out: &mut Vec<u8>,
) -> Outcome {
    let request = answer.request;
    let caller = caller(request, trusted);
    let decision = table.decide(dialed.unwrap_or_default(), caller);
    debug!(
        source = %answer.source,
        dialed = %String::from_utf8_lossy(dialed.unwrap_or_default()),
        caller = %String::from_utf8_lossy(caller.unwrap_or_default()),
        status = decision.status.code(),
        rule = decision.rule.as_str(),
        reason = %decision.reason(),
        "decision"
    );
    let config = answer.config;
    let rule_header = |o: &mut Vec<u8>| {
        if config.rule_header {
            o.extend_from_slice(b"X-Switchboard-Rule: ");
            o.extend_from_slice(decision.rule.as_str().as_bytes());
            o.extend_from_slice(b"\r\n");
        }
    };
    let outcome = match decision.status {
        RouteStatus::MovedTemporarily => {
            answer.send(out, Status::new(302, "Moved Temporarily"), |o| {
                write_redirect(o, config, &decision, answer.origin());
                rule_header(o);
            })
        }
        RouteStatus::TemporarilyUnavailable => {
            answer.send(out, Status::new(480, "Temporarily Unavailable"), |o| {
                // RFC 3326: say why, without naming anyone.
                o.extend_from_slice(b"Reason: SIP;cause=480;text=\"");
                o.extend_from_slice(if decision.user.is_some() {
                    b"User has no phone"
                } else {
                    b"No forwarding number"
                });
                o.extend_from_slice(b"\"\r\n");
                rule_header(o);
            })
        }
        RouteStatus::NotFound => answer.send(out, Status::new(404, "Not Found"), rule_header),
    };
    outcome.decided_by(decision.rule)
}

/// A 302's Contacts (RFC 3261 §8.1.3.4: with a q each when there is a
/// failover chain, tried highest first) and, as the account or the server
/// says, a `Diversion` or `History-Info` naming the dialed number.
fn write_redirect(
    out: &mut Vec<u8>,
    config: &HandlerConfig,
    decision: &Decision<'_>,
    source: Origin,
) {
    let style = decision
        .account
        .and_then(|a| a.diversion)
        .unwrap_or(config.diversion);
    let dialed = decision.dialed.filter(|_| style != DiversionStyle::Off);
    let chain = decision.fallback.is_some();
    for (nth, next) in decision.targets().enumerate() {
        out.extend_from_slice(b"Contact: <");
        let uri_start = out.len();
        write_target(out, config, decision, next.target, source);
        if let (Some(dialed), true) = (dialed, config.contact_headers) {
            // This Contact's own account of the diversion, for followers
            // that copy a redirect URI's headers onto the new request.
            let has_headers = memchr::memchr(b'?', &out[uri_start..]).is_some();
            out.push(if has_headers { b'&' } else { b'?' });
            let value_start = match style {
                DiversionStyle::HistoryInfo => {
                    out.extend_from_slice(b"History-Info=");
                    let start = out.len();
                    write_history(
                        out,
                        config,
                        decision,
                        dialed,
                        source,
                        Some(next.target),
                        nth,
                    );
                    start
                }
                _ => {
                    out.extend_from_slice(b"Diversion=");
                    let start = out.len();
                    write_diversion(out, config, decision, dialed, source, reason(next));
                    start
                }
            };
            escape_header_value(out, value_start);
        }
        out.push(b'>');
        if chain {
            out.extend_from_slice(b";q=");
            out.extend_from_slice(next.q.as_str().as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    let Some(dialed) = dialed else {
        return;
    };
    match style {
        DiversionStyle::Header => {
            // One diversion happened, whatever the number of Contacts: the
            // first Contact's reason, as followers copy this header onto
            // whichever Contact they try.
            out.extend_from_slice(b"Diversion: ");
            let first = decision
                .targets()
                .next()
                .map_or(DiversionReason::Unconditional, reason);
            write_diversion(out, config, decision, dialed, source, first);
            out.extend_from_slice(b"\r\n");
        }
        DiversionStyle::HistoryInfo => {
            out.extend_from_slice(b"History-Info: ");
            write_history(out, config, decision, dialed, source, None, 0);
            out.extend_from_slice(b"\r\n");
        }
        DiversionStyle::Off => {}
    }
}

/// Why the call was diverted to `next` (RFC 5806 reasons): the rule that
/// picked it, or the no-answer fallback.
fn reason(next: Try<'_>) -> DiversionReason {
    match (next.q, next.rule) {
        (Preference::Fallback, _) => DiversionReason::NoAnswer,
        (_, Rule::NumberUser) => DiversionReason::FollowMe,
        _ => DiversionReason::Unconditional,
    }
}

/// A `Diversion` value naming the dialed number.
fn write_diversion(
    out: &mut Vec<u8>,
    config: &HandlerConfig,
    decision: &Decision<'_>,
    dialed: E164,
    source: Origin,
    reason: DiversionReason,
) {
    out.push(b'<');
    write_number(out, config, decision, dialed, source);
    finish_diversion(out, reason);
}

/// `History-Info` entries: the dialed number, then `only` (a Contact's
/// own entry, the `nth`, 0-based) or every Contact in order.
fn write_history(
    out: &mut Vec<u8>,
    config: &HandlerConfig,
    decision: &Decision<'_>,
    dialed: E164,
    source: Origin,
    only: Option<&Target>,
    nth: usize,
) {
    out.push(b'<');
    write_number(out, config, decision, dialed, source);
    finish_history_dialed(out);
    let entry = |out: &mut Vec<u8>, target: &Target, nth: usize| {
        out.extend_from_slice(b",<");
        write_target(out, config, decision, target, source);
        finish_history_target(out, nth + 1);
    };
    match only {
        Some(target) => entry(out, target, nth),
        None => {
            for (nth, next) in decision.targets().enumerate() {
                entry(out, next.target, nth);
            }
        }
    }
}

/// A target's URI: a SIP URI as is; a number through the account's
/// template, else the server's.
fn write_target(
    out: &mut Vec<u8>,
    config: &HandlerConfig,
    decision: &Decision<'_>,
    target: &Target,
    source: Origin,
) {
    match target {
        Target::Uri(uri) => out.extend_from_slice(uri.as_bytes()),
        Target::Number(number) => write_number(out, config, decision, *number, source),
    }
}

/// A number's URI through the account's Contact template, else the
/// server's.
fn write_number(
    out: &mut Vec<u8>,
    config: &HandlerConfig,
    decision: &Decision<'_>,
    number: E164,
    source: Origin,
) {
    let template = decision
        .account
        .and_then(|a| a.contact_template.as_ref())
        .unwrap_or(&config.contact_template);
    template.expand_with(out, |placeholder, out| match placeholder {
        Placeholder::Number => {
            out.push(b'+');
            out.extend_from_slice(itoa::Buffer::new().format(number.value()).as_bytes());
        }
        Placeholder::Source => {
            write_ip(out, source.addr.ip(), true);
            out.push(b':');
            out.extend_from_slice(itoa::Buffer::new().format(source.addr.port()).as_bytes());
        }
        Placeholder::SourceHost => write_ip(out, source.addr.ip(), true),
        Placeholder::Transport => out.extend_from_slice(source.transport.as_str().as_bytes()),
    });
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
