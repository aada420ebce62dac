//! The call records' adapter (docs/architecture.md, "Where the layers
//! cross"): a [`CallTap`] that copies a [`RoutedCall`] into a
//! [`CallEvent`] and queues it without waiting (`crate::records`).
//! Copies only: bytes into the event's inline text, numbers as `E164`
//! values, the reason as its parts; the writer thread formats them.
//!
//! One per UDP worker and per TCP or TLS connection, so nothing here is
//! shared between threads but the queue. Built only when records are on:
//! without them a worker's `Context` has no tap and the request path does
//! no work for records at all.

use std::sync::{Arc, Weak};
use std::time::SystemTime;

use super::call_tap::{CallTap, RoutedCall};
use crate::records::{
    CallEvent, EventNumber, EventPlace, EventReason, EventTarget, RecordSender, Text,
    TransactionKeys,
};
use crate::routing::{RoutingTable, Target};
use crate::routing_data::TableReader;
use crate::sip::Uri;

/// What every tap is made from.
#[derive(Clone)]
pub struct RecordsFeed {
    pub sender: RecordSender,
    pub table: TableReader,
}

impl RecordsFeed {
    pub fn tap(&self) -> RecordsTap {
        RecordsTap {
            feed: self.clone(),
            serving: Weak::new(),
            data_version: None,
        }
    }
}

/// One worker's tap.
pub struct RecordsTap {
    feed: RecordsFeed,
    /// The table the version below is for. A `Weak` keeps its allocation
    /// (not its contents) alive, so a new table cannot reuse the address.
    serving: Weak<RoutingTable>,
    data_version: Option<u64>,
}

impl RecordsTap {
    /// Told of the table a batch or read is decided with: its data
    /// version is looked up once per table, not per call.
    pub fn serving(&mut self, table: &Arc<RoutingTable>) {
        if std::ptr::eq(self.serving.as_ptr(), Arc::as_ptr(table)) {
            return;
        }
        self.serving = Arc::downgrade(table);
        // The content hash of the serving data, as `switchboard_routing_data_info`
        // shows it. The reload thread swaps the table just before it
        // updates the status: a record decided in that gap may carry the
        // previous version.
        self.data_version = self
            .feed
            .table
            .status()
            .serving
            .map(|stats| stats.content_hash);
    }
}

/// A target copied into `text`.
fn place(text: &mut Text, target: &Target) -> EventPlace {
    match target {
        Target::Number(n) => EventPlace::Number(*n),
        Target::Uri(uri) => EventPlace::Uri(text.push(uri.as_bytes())),
    }
}

/// The record of a routed call, as far as the request path knows it.
fn event(
    keys: &TransactionKeys,
    call: &RoutedCall<'_, '_, '_>,
    data_version: Option<u64>,
) -> CallEvent {
    let request = call.request;
    let decision = call.decision;
    let call_id = request.call_id.unwrap_or_default();
    let transaction = keys.key(
        call_id,
        request.top_via.and_then(|v| v.branch).unwrap_or_default(),
        request.cseq.unwrap_or_default(),
    );
    let mut text = Text::default();
    let call_id = text.push(call_id);
    let dialed = match decision.dialed {
        Some(number) => Some(EventNumber::E164(number)),
        None => Uri::parse(request.uri)
            .and_then(|u| u.user)
            .map(|user| EventNumber::Raw(text.push(user))),
    };
    let caller = match decision.contact {
        Some(number) => Some(EventNumber::E164(number)),
        // Read as E.164 on the writer thread, off the request path.
        None => call.caller.map(|raw| EventNumber::Raw(text.push(raw))),
    };
    let account = decision.account.map(|a| text.push(a.id.as_bytes()));
    let user = decision.user.map(|u| text.push(u.id.as_bytes()));
    let passed_over = decision.passed_over.map(|u| text.push(u.id.as_bytes()));
    let reason = EventReason {
        reason: decision.reason,
        dialed: decision.dialed,
        contact: decision.contact,
        account,
        user,
        passed_over,
        target: decision.target.map(|t| place(&mut text, t)),
        fallback: decision.fallback.map(|t| place(&mut text, t)),
    };
    let mut targets = [None; 2];
    let mut more_targets = Vec::new();
    for (i, t) in decision.targets().enumerate() {
        // The target and the fallback are in the text already.
        let copied = match (decision.target, decision.fallback) {
            (Some(first), _) if std::ptr::eq(first, t.target) => reason.target,
            (_, Some(fallback)) if std::ptr::eq(fallback, t.target) => reason.fallback,
            _ => None,
        };
        let target = EventTarget {
            place: copied.unwrap_or_else(|| place(&mut text, t.target)),
            q: t.q,
            rule: t.rule,
        };
        match targets.get_mut(i) {
            Some(slot) => *slot = Some(target),
            None => more_targets.push(target),
        }
    }
    CallEvent {
        time: SystemTime::now(),
        transaction,
        transport: call.peer.transport.as_str(),
        source: call.peer.source,
        status: call.status,
        rule: decision.rule,
        text,
        call_id,
        dialed,
        caller,
        targets,
        more_targets,
        reason,
        data_version,
        proxy: None,
    }
}

impl CallTap for RecordsTap {
    fn routed(&mut self, call: &RoutedCall<'_, '_, '_>) {
        let sender = &self.feed.sender;
        sender.send(event(sender.transaction_keys(), call, self.data_version));
    }

    fn relayed(&mut self, call: &RoutedCall<'_, '_, '_>) -> Option<CallEvent> {
        Some(event(
            self.feed.sender.transaction_keys(),
            call,
            self.data_version,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;

    use super::*;
    use crate::records::{CallRecord, Formatted, RecordTarget, normalise};
    use crate::routing::Region;
    use crate::routing_data::Loader;
    use crate::server::handler::{Context, Handler, Peer, Transport};
    use crate::settings::Settings;

    /// A record's fields as the tap wrote them when it formatted on the
    /// request path (before the event was made compact): the writer's
    /// record of the compact event must say exactly the same.
    #[derive(Debug, PartialEq)]
    struct Fields {
        call_id: String,
        dialed: Option<String>,
        caller: Option<String>,
        account: Option<String>,
        rule: &'static str,
        user: Option<String>,
        status: u16,
        targets: Vec<RecordTarget>,
        reason: String,
        data_version: Option<String>,
    }

    /// Keeps each call's event and the fields formatted the old way.
    struct Both {
        region: Region,
        keys: TransactionKeys,
        seen: Vec<(CallEvent, Fields)>,
    }

    impl CallTap for Both {
        fn routed(&mut self, call: &RoutedCall<'_, '_, '_>) {
            let decision = call.decision;
            let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let fields = Fields {
                call_id: lossy(call.request.call_id.unwrap_or_default()),
                dialed: match decision.dialed {
                    Some(number) => Some(number.to_string()),
                    None => Uri::parse(call.request.uri).and_then(|u| u.user).map(lossy),
                },
                caller: match decision.contact {
                    Some(number) => Some(number.to_string()),
                    None => call.caller.map(lossy),
                }
                .map(|c| normalise(&c, &self.region)),
                account: decision.account.map(|a| a.id.to_string()),
                rule: decision.rule.as_str(),
                user: decision.user.map(|u| u.id.to_string()),
                status: call.status,
                targets: decision
                    .targets()
                    .map(|t| RecordTarget {
                        target: t.target.to_string(),
                        q: t.q.value(),
                        rule: t.rule.as_str(),
                    })
                    .collect(),
                reason: decision.reason().to_string(),
                data_version: Some(format!("{:016x}", 0x00c0_ffee_u64)),
            };
            self.seen
                .push((event(&self.keys, call, Some(0x00c0_ffee)), fields));
        }
    }

    fn invite(call_id: &str, to: &str, from: &str) -> String {
        format!(
            "INVITE sip:{to}@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-{call_id}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{from}@127.0.0.1>;tag=1\r\n\
             To: <sip:{to}@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn the_writer_writes_what_the_request_path_used_to_format() {
        let region = Region::from_code("US").expect("US");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.yaml");
        let table = Loader::new(path, region.clone())
            .load()
            .expect("the example data loads")
            .table;
        let handler = Handler::from_settings(&Settings::default()).expect("defaults");
        let peer = Peer::at(SocketAddr::from(([127, 0, 0, 1], 5062)), Transport::Udp);
        let long_call_id = "x".repeat(300);
        // Every reason config/routing.yaml gives, a URI target, two
        // targets, a phoneless user passed over, callers that are and are
        // not numbers, and a Call-ID too long for the inline text.
        let calls = [
            ("a1", "+18005550100", "+16505550199"),
            ("a2", "+18005550111", "+16505550123"),
            ("a3", "+18005550111", "6505550155"),
            ("a4", "+18005550111", "+16505550199"),
            ("a5", "+18005550133", "+16505550199"),
            ("a6", "+18005550144", "anonymous"),
            ("a7", "8005550122", "+16505550199"),
            ("a8", "+18005550188", "+16505550199"),
            ("a9", "+19995550100", "+16505550199"),
            ("b1", "sales", "+16505550199"),
            ("b2", "+442079460111", "+16505550199"),
            ("b3", "+442079460122", "+447911555555"),
            ("b4", "+442079460100", "+16505550123"),
            (long_call_id.as_str(), "+18005550188", "caf%C3%A9"),
        ];
        let mut both = Both {
            keys: TransactionKeys::default(),
            region: region.clone(),
            seen: Vec::new(),
        };
        let mut out = Vec::new();
        for (call_id, to, from) in calls {
            out.clear();
            let message = invite(call_id, to, from);
            let mut cx = Context::new(&table, &mut out).with_tap(&mut both);
            handler.handle(&mut cx, message.as_bytes(), peer);
        }
        assert_eq!(both.seen.len(), calls.len(), "every INVITE was routed");
        let mut reasons = std::collections::HashSet::new();
        for (event, fields) in both.seen {
            reasons.insert(event.reason.reason as u8);
            let record = CallRecord::new(
                event,
                "id-1".to_owned(),
                "t",
                &region,
                &mut Formatted::default(),
            );
            let written = Fields {
                call_id: record.call_id,
                dialed: record.dialed,
                caller: record.caller,
                account: record.account,
                rule: record.rule,
                user: record.user,
                status: record.status,
                targets: record.targets,
                reason: record.reason,
                data_version: record.data_version,
            };
            assert_eq!(written, fields);
        }
        assert!(reasons.len() >= 7, "{} reasons seen", reasons.len());
    }
}
