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
use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use serde::Serialize;

use super::Numbers;
use super::privacy::json_masked_e164;
use crate::routing::{E164, Preference, Reason, Region, Rule, Spelling};

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
        let bytes = self.get(span);
        // The common case checked the fast way: `from_utf8_lossy` walks
        // its chunks even for valid text.
        match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        }
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

#[cfg(test)]
impl CallEvent {
    /// A 404 for `dialed` from `caller` (E.164 when they read as such),
    /// with the Call-ID `c` and transaction 0: a fixture for the tests.
    pub fn unknown_number(dialed: &str, caller: &str) -> CallEvent {
        let mut text = Text::default();
        let call_id = text.push(b"c");
        let number = |text: &mut Text, n: &str| match crate::routing::E164::parse_plus(n) {
            Some(n) => EventNumber::E164(n),
            None => EventNumber::Raw(text.push(n.as_bytes())),
        };
        let dialed = Some(number(&mut text, dialed));
        let caller = Some(number(&mut text, caller));
        CallEvent {
            time: SystemTime::UNIX_EPOCH,
            transaction: 0,
            transport: "udp",
            source: "192.0.2.1:5060".parse().expect("address"),
            status: 404,
            rule: crate::routing::Rule::None,
            text,
            call_id,
            dialed,
            caller,
            targets: [None; 2],
            more_targets: Vec::new(),
            reason: EventReason {
                reason: crate::routing::Reason::UnknownNumber,
                dialed: None,
                contact: None,
                account: None,
                user: None,
                passed_over: None,
                target: None,
                fallback: None,
            },
            data_version: None,
            proxy: None,
        }
    }
}

impl CallEvent {
    /// The Contacts, in order.
    pub fn targets(&self) -> impl Iterator<Item = &EventTarget> {
        self.targets.iter().flatten().chain(&self.more_targets)
    }

    fn place(&self, place: EventPlace) -> Cow<'_, str> {
        match place {
            EventPlace::Number(n) => Cow::Owned(e164(n)),
            EventPlace::Uri(span) => self.text.str(span),
        }
    }

    fn number(&self, number: EventNumber) -> Cow<'_, str> {
        match number {
            EventNumber::E164(n) => Cow::Owned(e164(n)),
            EventNumber::Raw(span) => self.text.str(span),
        }
    }

    /// The reason's sentence, word for word as `Decision::reason` writes
    /// it (`switchboard route`): the same templates, from the copied
    /// parts, appended piece by piece (`write!` cost the writer more than
    /// the JSON did).
    pub fn reason_text(&self) -> String {
        let mut text = Vec::with_capacity(128);
        self.write_reason(&mut text, false);
        // Templates, digits and text pieces as `Text::str` gives them:
        // always UTF-8.
        String::from_utf8(text)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends the reason's sentence. `plain`: the event's text is ASCII
    /// with nothing to escape ([`is_plain`]), so its pieces go in as they
    /// are and the sentence needs no escaping either.
    fn write_reason(&self, f: &mut Vec<u8>, plain: bool) {
        let r = &self.reason;
        let text = |f: &mut Vec<u8>, span: Span| {
            if plain {
                f.extend_from_slice(self.text.get(span));
            } else {
                f.extend_from_slice(self.text.str(span).as_bytes());
            }
        };
        // An absent part reads `-`, as in the routing's reasons.
        let name = |f: &mut Vec<u8>, span: Option<Span>| match span {
            Some(span) => text(f, span),
            None => f.push(b'-'),
        };
        let number = |f: &mut Vec<u8>, n: Option<E164>| match n {
            Some(n) => push_e164(f, n),
            None => f.push(b'-'),
        };
        let place = |f: &mut Vec<u8>, place: Option<EventPlace>| match place {
            Some(EventPlace::Number(n)) => push_e164(f, n),
            Some(EventPlace::Uri(span)) => text(f, span),
            None => f.push(b'-'),
        };
        if let Some(skipped) = r.passed_over {
            f.extend_from_slice(b"user ");
            name(f, Some(skipped));
            f.extend_from_slice(b" has no phone, so the call is forwarded; ");
        }
        match r.reason {
            Reason::DialedNotANumber => {
                f.extend_from_slice(b"the dialed number is not a phone number");
            }
            Reason::UnknownNumber => {
                number(f, r.dialed);
                f.extend_from_slice(b" is not a number of any account");
            }
            Reason::NumberUser => {
                number(f, r.dialed);
                f.extend_from_slice(b" is assigned to user ");
                name(f, r.user);
            }
            Reason::ContactOwner => {
                f.extend_from_slice(b"caller ");
                number(f, r.contact);
                f.extend_from_slice(b" is a contact of user ");
                name(f, r.user);
            }
            Reason::UserHasNoPhone => {
                f.extend_from_slice(b"user ");
                name(f, r.user);
                f.extend_from_slice(
                    b" has no phone (the account rejects calls to users without one)",
                );
            }
            Reason::NumberForwarding => {
                number(f, r.dialed);
                f.extend_from_slice(b" forwards to ");
                place(f, r.target);
            }
            Reason::AccountForwarding => {
                number(f, r.dialed);
                f.extend_from_slice(b" has no forwarding number of its own; account ");
                name(f, r.account);
                f.extend_from_slice(b" forwards to ");
                place(f, r.target);
            }
            Reason::NoForwarding => {
                number(f, r.dialed);
                f.extend_from_slice(
                    b" has no user for this call and no forwarding number, nor does account ",
                );
                name(f, r.account);
            }
        }
        if let Some(fallback) = r.fallback {
            f.extend_from_slice(b"; if the phone does not answer, then ");
            place(f, Some(fallback));
        }
    }
}

/// `+` and the digits, as `E164`'s `Display` writes it, without the
/// formatting machinery.
fn push_e164(out: &mut Vec<u8>, number: E164) {
    out.push(b'+');
    out.extend_from_slice(itoa::Buffer::new().format(number.value()).as_bytes());
}

fn e164(number: E164) -> String {
    let mut out = String::with_capacity(16);
    out.push('+');
    out.push_str(itoa::Buffer::new().format(number.value()));
    out
}

/// What the writer formats once and reuses while it repeats (a trunk's
/// address, the data version, the time's second), and its scratch space.
#[derive(Debug, Default)]
pub struct Formatted {
    source: Option<(SocketAddr, String)>,
    data_version: Option<(u64, String)>,
    /// The last time written, by its second since the epoch: records of
    /// the same second differ only in the microseconds' digits.
    time: Option<(u64, [u8; 27])>,
    scratch: Vec<u8>,
    scratch_text: String,
}

impl Formatted {
    /// `time` as [`rfc3339_micros`] writes it, up to the year 9999: the
    /// date and the second worked out once a second (the calendar's
    /// divisions were most of the time's cost), the microseconds put in.
    fn time(&mut self, time: SystemTime) -> Option<[u8; 27]> {
        let since = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = since.as_secs();
        let text = match &mut self.time {
            Some((second, text)) if *second == secs => text,
            slot => &mut slot.insert((secs, rfc3339_fixed(time)?)).1,
        };
        let mut micros = since.subsec_micros();
        for digit in text[20..26].iter_mut().rev() {
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        Some(*text)
    }

    fn source(&mut self, source: SocketAddr) -> &str {
        if self.source.as_ref().is_none_or(|(last, _)| *last != source) {
            self.source = Some((source, source.to_string()));
        }
        self.source.as_ref().map_or("", |(_, text)| text)
    }

    fn data_version(&mut self, hash: u64) -> &str {
        if self
            .data_version
            .as_ref()
            .is_none_or(|(last, _)| *last != hash)
        {
            self.data_version = Some((hash, format!("{hash:016x}")));
        }
        self.data_version.as_ref().map_or("", |(_, text)| text)
    }
}

/// How a run names its records, as the JSON around a record's sequence
/// number and time: the same for every record of the run, so escaped
/// once.
#[derive(Debug, Clone)]
pub struct Naming {
    /// `{"schema_version":1,"id":"PREFIX-`
    head: Vec<u8>,
    /// `,"instance":"INSTANCE","call_id":`
    instance: Vec<u8>,
}

impl Naming {
    /// Records named `ID_PREFIX-SEQUENCE`, written by `instance`.
    pub fn new(id_prefix: &str, instance: &str) -> Naming {
        let mut head = Vec::with_capacity(64);
        head.extend_from_slice(b"{\"schema_version\":");
        head.extend_from_slice(itoa::Buffer::new().format(SCHEMA_VERSION).as_bytes());
        head.extend_from_slice(b",\"id\":\"");
        json_inner(&mut head, id_prefix.as_bytes());
        head.push(b'-');
        let mut named = b",\"instance\":".to_vec();
        json_str(&mut named, instance);
        named.extend_from_slice(b",\"call_id\":");
        Naming {
            head,
            instance: named,
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
        region: &Region,
        formatted: &mut Formatted,
    ) -> CallRecord {
        event.normalise_caller(region);
        CallRecord::of(&event, id, instance, formatted)
    }

    /// The record of an event whose caller the writer has read already.
    pub fn of(
        event: &CallEvent,
        id: String,
        instance: &str,
        formatted: &mut Formatted,
    ) -> CallRecord {
        let name = |span: Option<Span>| span.map(|s| event.text.str(s).into_owned());
        CallRecord {
            schema_version: SCHEMA_VERSION,
            id,
            time: rfc3339_micros(event.time),
            instance: instance.to_owned(),
            call_id: event.text.str(event.call_id).into_owned(),
            transport: event.transport,
            source: formatted.source(event.source).to_owned(),
            dialed: event.dialed.map(|n| event.number(n).into_owned()),
            caller: event.caller.map(|n| event.number(n).into_owned()),
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
            data_version: event
                .data_version
                .map(|hash| formatted.data_version(hash).to_owned()),
            proxy: event.proxy.clone(),
        }
    }
}

impl CallEvent {
    /// The caller as records write it: E.164 when it reads as one (a `+`
    /// spelling, digits after an international prefix or with a country
    /// code, or a national number of `region`), else as received; the
    /// same as `records::normalise`.
    pub fn normalise_caller(&mut self, region: &Region) {
        let Some(EventNumber::Raw(span)) = self.caller else {
            return;
        };
        // `+` and digits, as most callers are, read the short way: the
        // same number `Spelling` reads in them (a third of the writer's
        // reading of a caller went into its general reading).
        let e164 = E164::parse_plus_bytes(self.text.get(span)).or_else(|| {
            Spelling::parse(self.text.str(span).as_bytes())
                .ok()
                .and_then(|s| s.as_e164().or_else(|| s.as_national(region)))
        });
        if let Some(number) = e164 {
            self.caller = Some(EventNumber::E164(number));
        }
    }

    /// Whether `number` (as `records::normalise` reads it) is the dialed
    /// or the calling number as this record writes them, without writing
    /// them out.
    pub fn has_number(&self, number: &str, e164: Option<E164>) -> bool {
        [self.dialed, self.caller]
            .into_iter()
            .flatten()
            .any(|n| match n {
                EventNumber::E164(n) => e164 == Some(n),
                EventNumber::Raw(span) => self.text.str(span) == number,
            })
    }

    /// Appends the record as one JSON line's object, named as `naming`
    /// and `sequence` say, its numbers as `numbers` says: the bytes
    /// `serde_json` writes for [`CallRecord`] (the tests hold the two
    /// together), from the event's parts without building the record's
    /// strings, which was most of the writer's work. A relayed call's
    /// outcome, rare, still goes through `serde_json`.
    pub fn write_json(
        &self,
        naming: &Naming,
        sequence: u64,
        numbers: &Numbers,
        formatted: &mut Formatted,
        out: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        // The whole text checked once: when it is ASCII with nothing to
        // escape (nearly always), each piece goes out as it is, with no
        // UTF-8 check or escape search of its own (those were a third of
        // the writer's work).
        let plain = is_plain(self.text.all());
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(&naming.head);
        out.extend_from_slice(digits.format(sequence).as_bytes());
        out.extend_from_slice(b"\",\"time\":");
        match formatted.time(self.time) {
            Some(text) => quoted(out, &text),
            None => json_str(out, &rfc3339_micros(self.time)),
        }
        out.extend_from_slice(&naming.instance);
        self.write_text(out, self.call_id, plain);
        // The transport and rule names are the program's own ASCII words,
        // the address digits and separators: nothing to escape.
        out.extend_from_slice(b",\"transport\":");
        quoted(out, self.transport.as_bytes());
        out.extend_from_slice(b",\"source\":");
        quoted(out, formatted.source(self.source).as_bytes());
        out.extend_from_slice(b",\"dialed\":");
        self.write_number(
            out,
            self.dialed,
            numbers,
            plain,
            &mut formatted.scratch_text,
        );
        out.extend_from_slice(b",\"caller\":");
        self.write_number(
            out,
            self.caller,
            numbers,
            plain,
            &mut formatted.scratch_text,
        );
        out.extend_from_slice(b",\"account\":");
        self.write_name(out, self.reason.account, plain);
        out.extend_from_slice(b",\"rule\":");
        quoted(out, self.rule.as_str().as_bytes());
        out.extend_from_slice(b",\"user\":");
        self.write_name(out, self.reason.user, plain);
        out.extend_from_slice(b",\"status\":");
        out.extend_from_slice(digits.format(self.status).as_bytes());
        out.extend_from_slice(b",\"targets\":");
        out.push(b'[');
        for (i, target) in self.targets().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"target\":");
            match target.place {
                EventPlace::Number(n) => json_e164(out, n),
                EventPlace::Uri(span) => self.write_text(out, span, plain),
            }
            // `1.0` and `0.5`: what serde_json writes for the two values
            // as f32 (the tests hold them together).
            out.extend_from_slice(b",\"q\":");
            out.extend_from_slice(target.q.as_str().as_bytes());
            out.extend_from_slice(b",\"rule\":");
            quoted(out, target.rule.as_str().as_bytes());
            out.push(b'}');
        }
        out.push(b']');
        out.extend_from_slice(b",\"reason\":");
        if plain {
            // Templates, digits and plain text: nothing to escape.
            out.push(b'"');
            self.write_reason(out, true);
            out.push(b'"');
        } else {
            formatted.scratch.clear();
            self.write_reason(&mut formatted.scratch, false);
            out.push(b'"');
            json_inner(out, &formatted.scratch);
            out.push(b'"');
        }
        out.extend_from_slice(b",\"data_version\":");
        match self.data_version {
            // Hex digits.
            Some(hash) => quoted(out, formatted.data_version(hash).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(proxy) = &self.proxy {
            out.extend_from_slice(b",\"proxy\":");
            serde_json::to_writer(&mut *out, proxy)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// A piece of the event's text as a JSON string; as it is when the
    /// text is `plain`.
    fn write_text(&self, out: &mut Vec<u8>, span: Span, plain: bool) {
        if plain {
            quoted(out, self.text.get(span));
        } else {
            json_str(out, &self.text.str(span));
        }
    }

    fn write_number(
        &self,
        out: &mut Vec<u8>,
        number: Option<EventNumber>,
        numbers: &Numbers,
        plain: bool,
        scratch: &mut String,
    ) {
        match (number, numbers) {
            (None, _) => out.extend_from_slice(b"null"),
            (Some(EventNumber::E164(n)), Numbers::Full) => json_e164(out, n),
            (Some(EventNumber::Raw(span)), Numbers::Full) => self.write_text(out, span, plain),
            (Some(EventNumber::E164(n)), Numbers::Masked) => json_masked_e164(out, n),
            (Some(EventNumber::E164(n)), _) => {
                scratch.clear();
                scratch.push('+');
                scratch.push_str(itoa::Buffer::new().format(n.value()));
                json_str(out, &numbers.apply(scratch));
            }
            (Some(EventNumber::Raw(span)), _) => {
                json_str(out, &numbers.apply(&self.text.str(span)));
            }
        }
    }

    fn write_name(&self, out: &mut Vec<u8>, name: Option<Span>, plain: bool) {
        match name {
            Some(span) => self.write_text(out, span, plain),
            None => out.extend_from_slice(b"null"),
        }
    }
}

/// `"+digits"`: nothing in it needs escaping.
fn json_e164(out: &mut Vec<u8>, number: E164) {
    out.extend_from_slice(b"\"+");
    out.extend_from_slice(itoa::Buffer::new().format(number.value()).as_bytes());
    out.push(b'"');
}

/// A JSON string as `serde_json` escapes it: `"` and `\` with a
/// backslash, the five short control escapes, other control characters
/// as `\u00xx` (lower-case hex), everything else as it is.
fn json_str(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    json_inner(out, value.as_bytes());
    out.push(b'"');
}

/// Bytes known to need no escaping, as a JSON string.
fn quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}

/// Whether `bytes` are ASCII with nothing JSON escapes: written as they
/// are, they are the JSON string's inside, and every piece of them is
/// too.
fn is_plain(bytes: &[u8]) -> bool {
    scan(bytes, |v| escapes(v) | v & HIGHS) == 0
}

/// Whether any byte of `bytes` is a control character, `"` or `\`:
/// eight bytes at a time (a word's bytes under 0x20, or equal to either,
/// found with the usual has-zero-byte arithmetic), since most strings
/// need no escape and a byte-by-byte check was most of a line's cost.
fn needs_escape(bytes: &[u8]) -> bool {
    scan(bytes, escapes) != 0
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A word's bytes below 0x20, `"` or `\`, as high bits: each such byte
/// sets its own (a borrow may set more above it, so only "any" is exact).
fn escapes(v: u64) -> u64 {
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    // Below 0x20: v - 0x20 per byte borrows where no high bit was set.
    let control = v.wrapping_sub(ONES * 0x20) & !v & HIGHS;
    control | has_zero(v ^ (ONES * u64::from(b'"'))) | has_zero(v ^ (ONES * u64::from(b'\\')))
}

/// `flags` of every word of `bytes`, or-ed; the last word padded with
/// `a`, which no flag sees (no byte loop for the remainder).
fn scan(bytes: &[u8], flags: impl Fn(u64) -> u64) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut seen = 0;
    for word in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        seen |= flags(u64::from_le_bytes(le));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut le = [b'a'; 8];
        le[..rest.len()].copy_from_slice(rest);
        seen |= flags(u64::from_le_bytes(le));
    }
    seen
}

/// A JSON string's inside, escaped as [`json_str`] says (`bytes` are
/// UTF-8: bytes from 0x80 up go out as they are).
fn json_inner(out: &mut Vec<u8>, bytes: &[u8]) {
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
    } else {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &b in bytes {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..0x20 => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]),
                _ => out.push(b),
            }
        }
    }
}

/// `time` as RFC 3339 UTC with microseconds: `2026-12-06T05:41:01.123456Z`.
/// Digits put in place: `format!` of seven fields cost the writer more
/// per record than the rest of the time's work.
pub fn rfc3339_micros(time: SystemTime) -> String {
    if let Some(text) = rfc3339_fixed(time) {
        // ASCII digits and separators only.
        return String::from_utf8(text.to_vec()).unwrap_or_default();
    }
    // Past the year 9999: wider than the fixed layout.
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

/// [`rfc3339_micros`]'s text up to the year 9999, on the stack.
fn rfc3339_fixed(time: SystemTime) -> Option<[u8; 27]> {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    if year > 9999 {
        return None;
    }
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    for (range, value) in [
        (0..4, year),
        (5..7, month),
        (8..10, day),
        (11..13, of_day / 3600),
        (14..16, of_day / 60 % 60),
        (17..19, of_day % 60),
        (20..26, u64::from(since.subsec_micros())),
    ] {
        let mut value = value;
        for digit in text[range].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    Some(text)
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

    #[test]
    fn times_put_digit_by_digit_read_as_format_writes_them() {
        // Every field's carry: from 1970 to past 9999 in uneven steps.
        let mut micros = 0u64;
        while micros < 300_000_000_000_000_000 {
            let t = SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
            let since = Duration::from_micros(micros);
            let secs = since.as_secs();
            let (days, of_day) = (secs / 86_400, secs % 86_400);
            let (year, month, day) = civil_from_days(days);
            let expected = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
                of_day / 3600,
                of_day / 60 % 60,
                of_day % 60,
                since.subsec_micros()
            );
            assert_eq!(rfc3339_micros(t), expected);
            micros = micros * 3 / 2 + 987_654_321;
        }
    }

    #[test]
    fn times_written_one_after_another_read_as_each_alone() {
        // Within a second, across seconds and days, and back in time.
        let mut formatted = Formatted::default();
        for micros in [
            1_796_536_861_123_456u64,
            1_796_536_861_123_457,
            1_796_536_861_999_999,
            1_796_536_862_000_000,
            1_796_601_599_999_999,
            1_796_601_600_000_001,
            1_796_536_861_000_009,
            0,
        ] {
            let t = SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
            let text = formatted.time(t).expect("before 9999");
            assert_eq!(String::from_utf8_lossy(&text), rfc3339_micros(t));
        }
    }

    #[test]
    fn callers_read_the_short_way_read_as_spellings_do() {
        let region = Region::from_code("US").expect("US");
        for caller in [
            "+16505550123",
            "+1",
            "+",
            "+0123",
            "+999999999999999",
            "+1234567890123456",
            "+16505550123 ",
            "+1-650-555-0123",
            "6505550123",
            "anonymous",
            "+1650555012a",
        ] {
            let mut text = Text::default();
            let span = text.push(caller.as_bytes());
            let mut event = CallEvent {
                text,
                call_id: span,
                dialed: None,
                caller: Some(EventNumber::Raw(span)),
                ..CallEvent::unknown_number("+18005550100", "anonymous")
            };
            event.normalise_caller(&region);
            let spelled = Spelling::parse(caller.as_bytes())
                .ok()
                .and_then(|s| s.as_e164().or_else(|| s.as_national(&region)));
            let expected = match spelled {
                Some(n) => EventNumber::E164(n),
                None => EventNumber::Raw(span),
            };
            assert_eq!(event.caller, Some(expected), "{caller:?}");
        }
    }

    #[test]
    fn text_spills_whole_to_the_heap_and_keeps_every_piece() {
        let mut text = Text::default();
        let a = text.push(b"abc");
        let long = vec![b'x'; INLINE_TEXT];
        let b = text.push(&long);
        let c = text.push(b"\xffz");
        assert_eq!(text.get(a), b"abc");
        assert_eq!(text.get(b), &long[..]);
        assert_eq!(text.str(c), "\u{fffd}z");
        assert_eq!(Text::default().get(a), b"");
    }

    #[test]
    fn reasons_the_example_data_cannot_give_read_as_the_routing_writes_them() {
        let mut text = Text::default();
        let account = text.push(b"acme");
        let n = |v| E164::from_value(v);
        let event = |reason| CallEvent {
            time: SystemTime::UNIX_EPOCH,
            transaction: 0,
            transport: "udp",
            source: SocketAddr::from(([192, 0, 2, 1], 5060)),
            status: 480,
            rule: Rule::None,
            text: text.clone(),
            call_id: account,
            dialed: None,
            caller: None,
            targets: [None; 2],
            more_targets: Vec::new(),
            reason,
            data_version: None,
            proxy: None,
        };
        let parts = EventReason {
            reason: Reason::NoForwarding,
            dialed: n(18005550133),
            contact: None,
            account: Some(account),
            user: None,
            passed_over: None,
            target: None,
            fallback: None,
        };
        assert_eq!(
            event(parts).reason_text(),
            "+18005550133 has no user for this call and no forwarding number, nor does account acme"
        );
        let parts = EventReason {
            reason: Reason::ContactOwner,
            dialed: None,
            contact: None,
            user: None,
            target: None,
            fallback: n(14155550188).map(EventPlace::Number),
            ..parts
        };
        assert_eq!(
            event(parts).reason_text(),
            "caller - is a contact of user -; if the phone does not answer, then +14155550188"
        );
    }

    #[test]
    fn lines_are_the_bytes_serde_json_writes_for_the_record() {
        // Every ASCII byte, quotes, backslashes, non-ASCII and bytes that
        // are not UTF-8, long runs across the 16-byte checks, empty text.
        let ascii: Vec<u8> = (0u8..0x80).collect();
        let texts: [&[u8]; 6] = [
            b"",
            b"plain-call-id@host",
            &ascii,
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"bbbbbbbbbbbbbbbbb\\",
            "café ☎ \u{7f}\u{1f}\u{0} \u{ff}".as_bytes(),
            b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\xff\xfe",
        ];
        let proxy = ProxyOutcome {
            final_status: Some(200),
            answered_by: Some(1),
            cancelled_by_caller: false,
            legs: vec![ProxyLeg {
                target: 0,
                status: None,
                outcome: "no_answer",
                ring_ms: 20_000,
            }],
        };
        let region = Region::from_code("US").expect("US");
        for (i, bytes) in texts.iter().enumerate() {
            let mut text = Text::default();
            let piece = text.push(bytes);
            let n = E164::from_value(16_505_550_123);
            let numbers = [
                Some(EventNumber::Raw(piece)),
                n.map(EventNumber::E164),
                None,
            ];
            let places = [
                EventPlace::Uri(piece),
                EventPlace::Number(n.expect("E.164")),
            ];
            let mut event = CallEvent {
                time: SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_536_861_123_456),
                transaction: 7,
                transport: "tcp",
                source: "[2001:db8::1]:5060".parse().expect("address"),
                status: 302,
                rule: Rule::ContactOwner,
                text,
                call_id: piece,
                dialed: numbers[i % 3],
                caller: numbers[(i + 1) % 3],
                targets: [
                    (i % 3 > 0).then_some(EventTarget {
                        place: places[i % 2],
                        q: Preference::First,
                        rule: Rule::ContactOwner,
                    }),
                    (i % 3 > 1).then_some(EventTarget {
                        place: places[(i + 1) % 2],
                        q: Preference::Fallback,
                        rule: Rule::Forwarding,
                    }),
                ],
                more_targets: Vec::new(),
                reason: EventReason {
                    reason: Reason::ContactOwner,
                    dialed: n,
                    contact: n,
                    account: (i % 2 == 0).then_some(piece),
                    user: Some(piece),
                    passed_over: (i % 2 == 1).then_some(piece),
                    target: Some(places[i % 2]),
                    fallback: None,
                },
                data_version: (i % 2 == 1).then_some(0x00c0_ffee),
                proxy: (i % 2 == 1).then(|| proxy.clone()),
            };
            // As the writer does before it writes.
            event.normalise_caller(&region);
            for numbers in [
                Numbers::Full,
                Numbers::Masked,
                Numbers::Hmac(b"a key of sixteen".to_vec()),
            ] {
                let mut ours = Vec::new();
                let mut formatted = Formatted::default();
                event
                    .write_json(
                        &Naming::new("0123456789abcdef", "sb1"),
                        41,
                        &numbers,
                        &mut formatted,
                        &mut ours,
                    )
                    .expect("written");
                let mut record = CallRecord::new(
                    event.clone(),
                    "0123456789abcdef-41".to_owned(),
                    "sb1",
                    &region,
                    &mut Formatted::default(),
                );
                for number in [&mut record.dialed, &mut record.caller]
                    .into_iter()
                    .flatten()
                {
                    *number = numbers.apply(number);
                }
                let theirs = serde_json::to_vec(&record).expect("serialised");
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                );
                assert_eq!(ours, theirs);
            }
        }
    }

    #[test]
    fn escapes_are_found_in_any_byte_of_a_word() {
        let naive = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        // Each pair of neighbouring byte values, at each place in two
        // words and a remainder (borrows cross bytes: pairs catch them).
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for at in [0, 3, 7, 14, 17] {
                    let mut bytes = [b'a'; 19];
                    bytes[at] = a;
                    bytes[at + 1] = b;
                    assert_eq!(needs_escape(&bytes), naive(&bytes), "{a:#x} {b:#x} at {at}");
                    assert_eq!(
                        is_plain(&bytes),
                        bytes.is_ascii() && !naive(&bytes),
                        "{a:#x} {b:#x} at {at}"
                    );
                }
            }
        }
    }
}
