//! One call record (docs/records.schema.json, docs/operations.md "Call
//! records"): what the request path hands over ([`CallEvent`]) and what
//! is written ([`CallRecord`], one JSON line).
//!
//! The request path only copies: a `CallEvent` is a fixed-size value whose
//! variable parts (the Call-ID, numbers as received, the table's names and
//! URIs) are bytes in one inline [`Text`], numbers stay [`E164`] values and
//! the reason stays the routing's [`Reason`]. Everything that formats or
//! allocates (numbers as text, the reason's sentence, the time, E.164
//! normalisation, JSON) happens on the writer thread: it cost the request
//! path about ten allocations and a formatted sentence per call.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::SystemTime;

use serde::Serialize;

use crate::routing::{E164, Preference, Reason, Rule};

/// The schema's version: a record's `schema_version`. Raised when a field
/// changes meaning or goes away; new optional fields keep it.
pub const SCHEMA_VERSION: u32 = 1;

/// Bytes of text a [`Text`] holds without allocating: a typical call's
/// Call-ID, account and user names and a target URI fit.
const INLINE_TEXT: usize = 160;

/// Where a piece of text is in a [`Text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

/// The event's text, appended piece by piece: inline up to
/// [`INLINE_TEXT`] bytes, then (rarely: a long Call-ID or URI) all of it
/// on the heap, so no piece is ever cut.
#[derive(Clone)]
pub struct Text {
    inline: [u8; INLINE_TEXT],
    len: usize,
    spilled: Vec<u8>,
}

impl Default for Text {
    fn default() -> Text {
        Text {
            inline: [0; INLINE_TEXT],
            len: 0,
            spilled: Vec::new(),
        }
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Text")
            .field(&String::from_utf8_lossy(self.all()))
            .finish()
    }
}

impl Text {
    /// Appends `bytes`, returning where they are.
    pub fn push(&mut self, bytes: &[u8]) -> Span {
        let start = self.len;
        let end = start + bytes.len();
        if self.spilled.is_empty() && end <= INLINE_TEXT {
            self.inline[start..end].copy_from_slice(bytes);
        } else {
            if self.spilled.is_empty() {
                self.spilled.reserve(end);
                self.spilled.extend_from_slice(&self.inline[..start]);
            }
            self.spilled.extend_from_slice(bytes);
        }
        self.len = end;
        // A message is far below 4 GiB (the parser's limits), so these fit.
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(bytes.len()).unwrap_or(0),
        }
    }

    fn all(&self) -> &[u8] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }

    /// The bytes at `span` (empty for a span of another text).
    pub fn get(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        self.all()
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    /// The text at `span`: UTF-8 as it is, anything else as
    /// `String::from_utf8_lossy` reads it.
    pub fn str(&self, span: Span) -> Cow<'_, str> {
        String::from_utf8_lossy(self.get(span))
    }
}

/// A number as the request path saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventNumber {
    /// As the routing table knows it.
    E164(E164),
    /// As received (in the event's text).
    Raw(Span),
}

/// A target as the routing table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventPlace {
    Number(E164),
    /// A URI, in the event's text.
    Uri(Span),
}

/// One Contact of a 302, as the request path copied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTarget {
    pub place: EventPlace,
    pub q: Preference,
    pub rule: Rule,
}

/// The parts of a decision its reason's sentence is made of
/// (`crate::routing::ReasonText`), rendered on the writer thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventReason {
    pub reason: Reason,
    /// The dialed number, when the table knew it.
    pub dialed: Option<E164>,
    /// The caller, when it matched a contact.
    pub contact: Option<E164>,
    /// The names of the account, the user and a phoneless user passed
    /// over (in the event's text).
    pub account: Option<Span>,
    pub user: Option<Span>,
    pub passed_over: Option<Span>,
    pub target: Option<EventPlace>,
    pub fallback: Option<EventPlace>,
}

/// A routed call as the request path copied it: no formatting, and no
/// allocation unless its text outgrows [`INLINE_TEXT`].
#[derive(Debug, Clone)]
pub struct CallEvent {
    pub time: SystemTime,
    /// Identifies the INVITE transaction (Call-ID, top Via branch, CSeq):
    /// a retransmission carries the same key and adds no record.
    pub transaction: u64,
    pub transport: &'static str,
    pub source: SocketAddr,
    pub status: u16,
    pub rule: Rule,
    /// The pieces below that are text.
    pub text: Text,
    pub call_id: Span,
    /// E.164 as decided, else the Request-URI's user part as received.
    pub dialed: Option<EventNumber>,
    /// As decided (a contact), else as received: read as E.164 on the
    /// writer thread when it reads as one.
    pub caller: Option<EventNumber>,
    /// The 302's Contacts in order: a decision has a target and a
    /// fallback at most; `more_targets` keeps any beyond (never today).
    pub targets: [Option<EventTarget>; 2],
    pub more_targets: Vec<EventTarget>,
    pub reason: EventReason,
    /// The content hash of the serving routing data.
    pub data_version: Option<u64>,
    /// A relayed call's outcome (proxy mode), filled in when it ends.
    pub proxy: Option<ProxyOutcome>,
}

impl CallEvent {
    /// The Contacts, in order.
    pub fn targets(&self) -> impl Iterator<Item = &EventTarget> {
        self.targets.iter().flatten().chain(&self.more_targets)
    }

    fn place(&self, place: EventPlace) -> Cow<'_, str> {
        match place {
            EventPlace::Number(n) => Cow::Owned(n.to_string()),
            EventPlace::Uri(span) => self.text.str(span),
        }
    }

    fn number(&self, number: EventNumber) -> Cow<'_, str> {
        match number {
            EventNumber::E164(n) => Cow::Owned(n.to_string()),
            EventNumber::Raw(span) => self.text.str(span),
        }
    }

    /// The reason's sentence, word for word as `Decision::reason` writes
    /// it (`switchboard route`): the same templates, from the copied parts.
    pub fn reason_text(&self) -> String {
        let mut out = String::with_capacity(96);
        // Writing into a String cannot fail.
        let _ = self.write_reason(&mut out);
        out
    }

    fn write_reason(&self, f: &mut String) -> fmt::Result {
        let r = &self.reason;
        let name = |span: Option<Span>| span.map(|s| self.text.str(s));
        let dialed = Optional(r.dialed);
        let user = Optional(name(r.user));
        let target = Optional(r.target.map(|t| self.place(t)));
        if let Some(skipped) = name(r.passed_over) {
            write!(f, "user {skipped} has no phone, so the call is forwarded; ")?;
        }
        match r.reason {
            Reason::DialedNotANumber => f.write_str("the dialed number is not a phone number"),
            Reason::UnknownNumber => write!(f, "{dialed} is not a number of any account"),
            Reason::NumberUser => write!(f, "{dialed} is assigned to user {user}"),
            Reason::ContactOwner => write!(
                f,
                "caller {} is a contact of user {user}",
                Optional(r.contact)
            ),
            Reason::UserHasNoPhone => write!(
                f,
                "user {user} has no phone (the account rejects calls to users without one)"
            ),
            Reason::NumberForwarding => write!(f, "{dialed} forwards to {target}"),
            Reason::AccountForwarding => write!(
                f,
                "{dialed} has no forwarding number of its own; account {} forwards to {target}",
                Optional(name(r.account))
            ),
            Reason::NoForwarding => write!(
                f,
                "{dialed} has no user for this call and no forwarding number, nor does account {}",
                Optional(name(r.account))
            ),
        }?;
        if let Some(fallback) = r.fallback {
            write!(
                f,
                "; if the phone does not answer, then {}",
                self.place(fallback)
            )?;
        }
        Ok(())
    }
}

/// Displays a value or `-`, as the routing's reasons do.
struct Optional<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Optional<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// How a relayed call ended (proxy mode, docs/sip.md): the answer the
/// caller got and each leg in the order they were tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyOutcome {
    /// The final status sent upstream; `None` when none was.
    pub final_status: Option<u16>,
    /// The index in `targets` of the one that answered.
    pub answered_by: Option<usize>,
    pub cancelled_by_caller: bool,
    pub legs: Vec<ProxyLeg>,
}

/// One leg of a relayed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyLeg {
    /// Its index in `targets`.
    pub target: usize,
    /// Its final status from the next hop; `None` when it had none.
    pub status: Option<u16>,
    /// `answered`, `busy`, `no_answer`, `cancelled` or `failed`, as the
    /// `switchboard_proxy_legs_total` metric names them.
    pub outcome: &'static str,
    /// From its INVITE to its final answer or its CANCEL, in milliseconds.
    pub ring_ms: u64,
}

/// One Contact of a 302, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordTarget {
    pub target: String,
    pub q: f32,
    pub rule: &'static str,
}

/// A call record as written: one line of a records file, one element of
/// a webhook batch.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub schema_version: u32,
    pub id: String,
    pub time: String,
    pub instance: String,
    pub call_id: String,
    pub transport: &'static str,
    pub source: String,
    pub dialed: Option<String>,
    pub caller: Option<String>,
    pub account: Option<String>,
    pub rule: &'static str,
    pub user: Option<String>,
    pub status: u16,
    pub targets: Vec<RecordTarget>,
    pub reason: String,
    pub data_version: Option<String>,
    /// Proxy mode: how the relayed call ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyOutcome>,
}

impl CallRecord {
    /// The record of `event`, named `id`: its numbers, names and reason
    /// written out, a caller read as E.164 in `region` when it reads as
    /// one.
    pub fn new(
        mut event: CallEvent,
        id: String,
        instance: &str,
        region: &crate::routing::Region,
    ) -> CallRecord {
        let proxy = event.proxy.take();
        let name = |span: Option<Span>| span.map(|s| event.text.str(s).into_owned());
        CallRecord {
            schema_version: SCHEMA_VERSION,
            id,
            time: rfc3339_micros(event.time),
            instance: instance.to_owned(),
            call_id: event.text.str(event.call_id).into_owned(),
            transport: event.transport,
            source: event.source.to_string(),
            dialed: event.dialed.map(|n| event.number(n).into_owned()),
            caller: event.caller.map(|n| match n {
                // Already E.164: normalising it gives it back.
                EventNumber::E164(n) => n.to_string(),
                EventNumber::Raw(span) => super::normalise(&event.text.str(span), region),
            }),
            account: name(event.reason.account),
            rule: event.rule.as_str(),
            user: name(event.reason.user),
            status: event.status,
            targets: event
                .targets()
                .map(|t| RecordTarget {
                    target: event.place(t.place).into_owned(),
                    q: t.q.value(),
                    rule: t.rule.as_str(),
                })
                .collect(),
            reason: event.reason_text(),
            data_version: event.data_version.map(|hash| format!("{hash:016x}")),
            proxy,
        }
    }
}

/// A record as a line writes it: the record with its numbers as
/// `records.numbers` says, borrowed (the same fields, in the same order,
/// so the same JSON as [`CallRecord`]'s).
#[derive(Serialize)]
pub struct RecordLine<'a> {
    schema_version: u32,
    id: &'a str,
    time: &'a str,
    instance: &'a str,
    call_id: &'a str,
    transport: &'static str,
    source: &'a str,
    dialed: Option<Cow<'a, str>>,
    caller: Option<Cow<'a, str>>,
    account: Option<&'a str>,
    rule: &'static str,
    user: Option<&'a str>,
    status: u16,
    targets: &'a [RecordTarget],
    reason: &'a str,
    data_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy: Option<&'a ProxyOutcome>,
}

impl<'a> RecordLine<'a> {
    /// `record` with `numbers` applied to its dialed and calling numbers.
    pub fn new(record: &'a CallRecord, numbers: &super::Numbers) -> RecordLine<'a> {
        let number = |n: &'a Option<String>| {
            n.as_deref().map(|n| match numbers {
                super::Numbers::Full => Cow::Borrowed(n),
                _ => Cow::Owned(numbers.apply(n)),
            })
        };
        RecordLine {
            schema_version: record.schema_version,
            id: &record.id,
            time: &record.time,
            instance: &record.instance,
            call_id: &record.call_id,
            transport: record.transport,
            source: &record.source,
            dialed: number(&record.dialed),
            caller: number(&record.caller),
            account: record.account.as_deref(),
            rule: record.rule,
            user: record.user.as_deref(),
            status: record.status,
            targets: &record.targets,
            reason: &record.reason,
            data_version: record.data_version.as_deref(),
            proxy: record.proxy.as_ref(),
        }
    }
}

/// `time` as RFC 3339 UTC with microseconds: `2026-12-06T05:41:01.123456Z`.
pub fn rfc3339_micros(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_micros()
    )
}

/// The same instant, compact and sortable, for file names:
/// `20261206T054101.123456Z`.
pub fn file_stamp(time: SystemTime) -> String {
    rfc3339_micros(time).replace(['-', ':'], "")
}

/// Parses [`rfc3339_micros`]'s output back, to age records and files.
pub fn parse_rfc3339_micros(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> { text.get(r)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let micros = match text.get(19..)? {
        rest if rest.starts_with('.') && rest.ends_with('Z') => {
            let digits = &rest[1..rest.len() - 1];
            let value: u64 = digits.parse().ok()?;
            let scale = 10u64.checked_pow(6u32.checked_sub(digits.len() as u32)?)?;
            value * scale
        }
        "Z" => 0,
        _ => return None,
    };
    let days = days_from_civil(year, month, day)?;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(secs * 1_000_000 + micros))
}

/// Year, month and day of the proleptic Gregorian calendar, `days` after
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The inverse: days after 1970-01-01 (Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_are_written_in_utc_with_microseconds_and_read_back() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_536_861_123_456);
        let text = rfc3339_micros(t);
        assert_eq!(text, "2026-12-06T06:01:01.123456Z");
        assert_eq!(parse_rfc3339_micros(&text), Some(t));
        assert_eq!(file_stamp(t), "20261206T060101.123456Z");
        assert_eq!(
            parse_rfc3339_micros("2024-02-29T00:00:00Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_164_800))
        );
        assert_eq!(parse_rfc3339_micros("yesterday"), None);
    }
}
