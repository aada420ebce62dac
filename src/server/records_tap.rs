//! The call records' adapter (docs/architecture.md, "Where the layers
//! cross"): a [`CallTap`] that copies a [`RoutedCall`] into a
//! [`CallEvent`] and queues it without waiting (`crate::records`).
//!
//! One per UDP worker and per TCP or TLS connection, so nothing here is
//! shared between threads but the queue. Built only when records are on:
//! without them a worker's `Context` has no tap and the request path does
//! no work for records at all.

use std::sync::{Arc, Weak};
use std::time::SystemTime;

use xxhash_rust::xxh3::Xxh3;

use super::call_tap::{CallTap, RoutedCall};
use crate::records::{CallEvent, RecordSender, RecordTarget};
use crate::routing::RoutingTable;
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
    data_version: Option<String>,
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
            .map(|stats| format!("{:016x}", stats.content_hash));
    }
}

impl RecordsTap {
    /// The record of a routed call, as far as the request path knows it.
    fn event(&mut self, call: &RoutedCall<'_, '_, '_>) -> CallEvent {
        let request = call.request;
        let decision = call.decision;
        let call_id = request.call_id.unwrap_or_default();
        // The INVITE transaction (RFC 3261 §17.2.3): Call-ID, the top Via's
        // branch and CSeq. A retransmission repeats all three.
        let mut key = Xxh3::new();
        key.update(call_id);
        key.update(b"\0");
        key.update(request.top_via.and_then(|v| v.branch).unwrap_or_default());
        key.update(b"\0");
        key.update(request.cseq.unwrap_or_default());
        let dialed = match decision.dialed {
            Some(number) => Some(number.to_string()),
            None => Uri::parse(request.uri)
                .and_then(|u| u.user)
                .map(|user| String::from_utf8_lossy(user).into_owned()),
        };
        let caller = match decision.contact {
            Some(number) => Some(number.to_string()),
            // Read as E.164 on the writer thread, off the request path.
            None => call
                .caller
                .map(|raw| String::from_utf8_lossy(raw).into_owned()),
        };
        CallEvent {
            time: SystemTime::now(),
            transaction: key.digest(),
            call_id: String::from_utf8_lossy(call_id).into_owned(),
            transport: call.peer.transport.as_str(),
            source: call.peer.source,
            dialed,
            caller,
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
            data_version: self.data_version.clone(),
            proxy: None,
        }
    }
}

impl CallTap for RecordsTap {
    fn routed(&mut self, call: &RoutedCall<'_, '_, '_>) {
        let event = self.event(call);
        self.feed.sender.send(event);
    }

    fn relayed(&mut self, call: &RoutedCall<'_, '_, '_>) -> Option<CallEvent> {
        Some(self.event(call))
    }
}
