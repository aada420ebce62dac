//! A routing decision as a SIP answer: which status each disposition is
//! (302, 480, 404; RFC 3261 §21), a 302's Contacts with their q-values
//! (§8.1.3.4, §20.10) through the account's or the server's Contact
//! template, and the diverted-call headers (`Diversion`, RFC 5806;
//! `History-Info`, RFC 7044). The handler screens the request and asks
//! the rules; this module only writes what they decided.

use std::net::SocketAddr;

use super::peer::Transport;
use crate::routing::{Decision, Disposition, DiversionStyle, E164, Preference, Rule, Target, Try};
use crate::sip::Status;
use crate::sip::diversion::{
    DiversionReason, escape_header_value, finish_diversion, finish_history_dialed,
    finish_history_target,
};
use crate::sip::text::write_ip;
use crate::template::{ContactTemplate, Placeholder};

/// How answers present a decision: server-wide settings, the first two
/// overridable per account in the routing data.
#[derive(Debug)]
pub struct Presentation {
    pub contact_template: ContactTemplate,
    /// How 302s name the dialed number, unless the account says.
    pub diversion: DiversionStyle,
    /// Embed that header in each Contact URI too.
    pub contact_headers: bool,
    /// Add `X-Switchboard-Rule` to routing answers.
    pub rule_header: bool,
}

/// What a Contact template's placeholders stand for: the sender's
/// address and the transport it used.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// The SIP answer to each disposition (docs/sip.md, the behaviour table).
pub fn status_for(disposition: Disposition) -> Status {
    match disposition {
        Disposition::Routed => Status::new(302, "Moved Temporarily"),
        Disposition::UnknownNumber => Status::new(404, "Not Found"),
        Disposition::Unavailable => Status::new(480, "Temporarily Unavailable"),
    }
}

/// The headers that carry the decision: a 302's Contacts and diversion
/// headers, a 480's `Reason`, and the rule when asked for.
pub fn write_headers(
    out: &mut Vec<u8>,
    presentation: &Presentation,
    decision: &Decision<'_>,
    origin: Origin,
) {
    match decision.disposition {
        Disposition::Routed => write_redirect(out, presentation, decision, origin),
        Disposition::Unavailable => {
            // RFC 3326: say why, without naming anyone.
            out.extend_from_slice(b"Reason: SIP;cause=480;text=\"");
            out.extend_from_slice(if decision.user.is_some() {
                b"User has no phone"
            } else {
                b"No forwarding number"
            });
            out.extend_from_slice(b"\"\r\n");
        }
        Disposition::UnknownNumber => {}
    }
    if presentation.rule_header {
        out.extend_from_slice(b"X-Switchboard-Rule: ");
        out.extend_from_slice(decision.rule.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// A 302's Contacts (RFC 3261 §8.1.3.4: with a q each when there is a
/// failover chain, tried highest first) and, as the account or the server
/// says, a `Diversion` or `History-Info` naming the dialed number.
fn write_redirect(
    out: &mut Vec<u8>,
    presentation: &Presentation,
    decision: &Decision<'_>,
    source: Origin,
) {
    let style = decision
        .account
        .and_then(|a| a.diversion)
        .unwrap_or(presentation.diversion);
    let dialed = decision.dialed.filter(|_| style != DiversionStyle::Off);
    let chain = decision.fallback.is_some();
    for (nth, next) in decision.targets().enumerate() {
        out.extend_from_slice(b"Contact: <");
        let uri_start = out.len();
        write_target(out, presentation, decision, next.target, source);
        if let (Some(dialed), true) = (dialed, presentation.contact_headers) {
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
                        presentation,
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
                    write_diversion(out, presentation, decision, dialed, source, reason(next));
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
            write_diversion(out, presentation, decision, dialed, source, first);
            out.extend_from_slice(b"\r\n");
        }
        DiversionStyle::HistoryInfo => {
            out.extend_from_slice(b"History-Info: ");
            write_history(out, presentation, decision, dialed, source, None, 0);
            out.extend_from_slice(b"\r\n");
        }
        DiversionStyle::Off => {}
    }
}

/// Why the call was diverted to `next` (RFC 5806 reasons): the rule that
/// picked it, or the no-answer fallback.
pub fn reason(next: Try<'_>) -> DiversionReason {
    match (next.q, next.rule) {
        (Preference::Fallback, _) => DiversionReason::NoAnswer,
        (_, Rule::NumberUser) => DiversionReason::FollowMe,
        _ => DiversionReason::Unconditional,
    }
}

/// A `Diversion` value naming the dialed number.
pub fn write_diversion(
    out: &mut Vec<u8>,
    presentation: &Presentation,
    decision: &Decision<'_>,
    dialed: E164,
    source: Origin,
    reason: DiversionReason,
) {
    out.push(b'<');
    write_number(out, presentation, decision, dialed, source);
    finish_diversion(out, reason);
}

/// `History-Info` entries: the dialed number, then `only` (a Contact's
/// own entry, the `nth`, 0-based) or every Contact in order.
fn write_history(
    out: &mut Vec<u8>,
    presentation: &Presentation,
    decision: &Decision<'_>,
    dialed: E164,
    source: Origin,
    only: Option<&Target>,
    nth: usize,
) {
    out.push(b'<');
    write_number(out, presentation, decision, dialed, source);
    finish_history_dialed(out);
    let entry = |out: &mut Vec<u8>, target: &Target, nth: usize| {
        out.extend_from_slice(b",<");
        write_target(out, presentation, decision, target, source);
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
pub fn write_target(
    out: &mut Vec<u8>,
    presentation: &Presentation,
    decision: &Decision<'_>,
    target: &Target,
    source: Origin,
) {
    match target {
        Target::Uri(uri) => out.extend_from_slice(uri.as_bytes()),
        Target::Number(number) => write_number(out, presentation, decision, *number, source),
    }
}

/// A number's URI through the account's Contact template, else the
/// server's.
pub fn write_number(
    out: &mut Vec<u8>,
    presentation: &Presentation,
    decision: &Decision<'_>,
    number: E164,
    source: Origin,
) {
    let template = decision
        .account
        .and_then(|a| a.contact_template.as_ref())
        .unwrap_or(&presentation.contact_template);
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

/// A decision as plain data, for `switchboard route --json` and logs
/// (docs/operations.md): `rule` is one of `number_user`, `contact_owner`,
/// `forwarding`, `none`; absent fields are null. `target` is the first of
/// `targets`, which lists every Contact of a 302 in order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DecisionSummary {
    pub status: u16,
    pub account: Option<String>,
    pub rule: &'static str,
    pub user: Option<String>,
    pub target: Option<String>,
    pub targets: Vec<TargetSummary>,
    pub reason: String,
}

/// One Contact of a 302, as plain data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TargetSummary {
    pub target: String,
    pub q: f32,
    pub rule: &'static str,
}

/// The decision as plain data, with the status it is answered with.
pub fn summary(decision: &Decision<'_>) -> DecisionSummary {
    DecisionSummary {
        status: status_for(decision.disposition).code,
        account: decision.account.map(|a| a.id.to_string()),
        rule: decision.rule.as_str(),
        user: decision.user.map(|u| u.id.to_string()),
        target: decision.target.map(ToString::to_string),
        targets: decision
            .targets()
            .map(|t| TargetSummary {
                target: t.target.to_string(),
                q: t.q.value(),
                rule: t.rule.as_str(),
            })
            .collect(),
        reason: decision.reason().to_string(),
    }
}
