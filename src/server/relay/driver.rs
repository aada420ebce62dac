//! The proxy driver (docs/architecture.md, "Proxy mode"): it owns every
//! relayed call's state machine (`crate::proxy::call::Call`), feeds it
//! what the request path hands over and the clock, and sends what it wants
//! sent. Sans-IO below, sockets here: the call never sees a socket, the
//! driver never decides anything SIP.
//!
//! The calls sit behind one lock. A worker that received a message for
//! the proxy runs it through the driver itself, on its own thread, and
//! sends what comes out; a timer thread fires the deadlines no message
//! brings. Handing each message to a driver thread instead cost a
//! wake-up per message, which measured as most of a relayed call's CPU
//! (bench/proxy.sh: 326 µs a call with the hand-over, at 300 calls/s).
//!
//! Matching (RFC 3261 §17.2.3, §17.1.3): an INVITE or CANCEL finds its call
//! by the top Via's branch and sent-by; a response by the branch this
//! proxy made (its call nonce and leg); an ACK for a non-2xx by its
//! INVITE's branch, an ACK for a 2xx (a new transaction, §13.2.2.4) by its
//! Call-ID, relayed to the leg that answered.
//!
//! Bounds: the inbox is bounded and the calls in flight are capped
//! (`proxy.max_calls`) before they reach here; a call is dropped when its
//! last transaction ends, and the in-flight gauge with it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::DialogRouting;
use super::inbox::{DivertedFrom, Inbound, LegPlan};
use super::outbound::{LegRef, Outbound};
use super::outbox::Outbox;
use super::resolve::Locator;
use super::stats::{LegResult, ProxyStats};
use super::upstream::{ConnectionId, StreamWriters};
use crate::proxy::branch::{self, Branch, BranchParts, STATELESS_LEG, STREAM_LEG};
use crate::proxy::call::{
    Call, CallSummary, Destination, LegOutcome, ProxyConfig, ResponseFate, Target, Transport,
    Upstream,
};
use crate::proxy::dialog_route::{Direction, record_route_uri};
use crate::proxy::forward::{
    ForwardError, ForwardSpec, ViaSpec, forward_request, relay_stateless, relay_stray_2xx,
};
use crate::records::{CallEvent, ProxyLeg, ProxyOutcome, RecordSender};
use crate::server::handler::Transport as PeerTransport;
use crate::sip::hop::Hop;
use crate::sip::response_head::ResponseHead;
use crate::sip::{Framing, Method, Request, Status};

/// How long the driver sleeps at most with nothing due: it also looks at
/// the stop flag this often.
const IDLE: Duration = Duration::from_millis(200);
/// How often the timer thread wakes at most. SIP's timers are T1 (500 ms)
/// and up, so firing up to 10 ms late changes nothing on the wire; waking
/// for every call's own deadline did: under load the timer thread woke
/// thousands of times a second, each wake-up a context switch on the
/// worker's core and a turn at the lock the worker waits for
/// (bench/proxy.sh saturate: 8.7 % of the server's CPU in
/// `finish_task_switch`).
const TICK: Duration = Duration::from_millis(10);

/// Where relayed requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Every leg to this address (`proxy.next_hop`).
    NextHop(NextHop),
    /// Each leg to its target URI's host, which must be an IP address.
    TargetHost,
}

/// Where a leg's messages go, and over what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// What the driver sends over: the UDP socket (legs over UDP and callers
/// on it), the outbound TCP and TLS connections, and the callers' streams.
pub struct Transports {
    pub socket: UdpSocket,
    pub outbound: Outbound,
    pub writers: Arc<StreamWriters>,
}

/// Where the driver sends: new calls' legs, and the dialogs it stays on.
#[derive(Debug, Clone)]
pub struct Paths {
    pub route: Route,
    /// With `proxy.record_route`: the key and host of our Record-Route.
    pub dialogs: Option<DialogRouting>,
    /// Without a next hop: DNS, for targets whose host is a name.
    pub locator: Option<Locator>,
}

/// The driver: its fixed parts and the calls.
pub struct Driver {
    state: Mutex<State>,
    /// Wakes the timer thread for a deadline sooner than it sleeps to.
    wake: Condvar,
    socket: UdpSocket,
    /// Datagrams held for one `sendmmsg` (see `outbox`). Taken only
    /// briefly, and never while waiting for `state`.
    outbox: Mutex<Outbox>,
    /// Legs over TCP.
    outbound: Outbound,
    writers: Arc<StreamWriters>,
    /// Where relayed calls' records go, when records are on.
    records: Option<RecordSender>,
    config: Arc<ProxyConfig>,
    route: Route,
    /// With `proxy.record_route`: the key and host of our Record-Route.
    dialogs: Option<DialogRouting>,
    locator: Option<Locator>,
    /// This driver, for the DNS lookups it starts to report back to.
    me: OnceLock<Weak<Driver>>,
    stats: Arc<ProxyStats>,
    stop: Arc<AtomicBool>,
}

/// One call and what the driver keeps beside it.
struct Entry {
    call: Call,
    /// Where responses to the caller go: its stream, else its Via's
    /// address (§18.2.2).
    upstream: Caller,
    /// Each leg's next hop.
    hops: Vec<Option<NextHop>>,
    /// Each leg's other servers, tried in turn when its hop cannot be
    /// reached (RFC 3263 §4.3).
    alternates: Vec<Vec<NextHop>>,
    server_key: Vec<u8>,
    call_id: Vec<u8>,
    started: Instant,
    /// Its call record, sent with the outcome when the call ends.
    record: Option<Box<CallEvent>>,
    /// The To tag of each 2xx a leg sent, with the leg: the ACK of a 2xx
    /// goes to the leg whose answer carried its tag (§13.2.2.4: a dialog
    /// per answer).
    answers: Vec<(Vec<u8>, usize)>,
}

/// A routed INVITE as the driver takes it on.
struct NewCall {
    message: Vec<u8>,
    caller: Caller,
    upstream: Upstream,
    targets: Vec<Target>,
    record: Option<Box<CallEvent>>,
}

/// How a caller is answered.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Datagram(SocketAddr),
    Stream(ConnectionId),
}

/// What the lock guards.
struct State {
    calls: Calls,
    /// When the timer thread wakes next, when it sleeps.
    timer_at: Option<Instant>,
}

/// The indexes' hasher: foldhash, seeded per process. SipHash (std's)
/// measured 2.2 % of a relayed call's CPU under load (bench/proxy.sh
/// saturate), for keys that are short and, where a peer chose them
/// (branches, Call-IDs), come only from relayed trunks and are capped by
/// `proxy.max_calls`; foldhash's random seed keeps them from being
/// aimed at one bucket.
type Index<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The calls and their indexes.
#[derive(Default)]
struct Calls {
    /// Boxed: the map moves its values as it grows, and an `Entry` is
    /// large (a table growing to hold 100,000 calls moved them all, twice
    /// over: 2.9 % of the CPU in `reserve_rehash` under load).
    by_nonce: Index<u64, Box<Entry>>,
    /// Top Via branch + sent-by of the INVITE → nonce.
    by_server_key: Index<Vec<u8>, u64>,
    /// Call-ID → nonce, for ACKs to 2xx.
    by_call_id: Index<Vec<u8>, u64>,
    /// When each call next wants waking; stale entries are skipped.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    next_nonce: u64,
    /// INVITEs waiting for DNS, by their server transaction key. Bounded
    /// by `proxy.max_calls`: each is a call admitted.
    parked: HashMap<Vec<u8>, Parked>,
    /// What DNS said of each target URI lately (`LOCATED_FOR`), so that
    /// the calls after the first do not wait.
    located: HashMap<Box<[u8]>, (Vec<NextHop>, Instant)>,
}

/// An INVITE waiting for its targets to be located.
struct Parked {
    invite: NewCall,
    call_id: Vec<u8>,
    /// Each target's next hops; `None` while DNS is asked.
    located: Vec<Option<Vec<NextHop>>>,
    /// The `100 Trying` sent, again for a retransmission.
    trying: Vec<u8>,
    since: Instant,
}

/// How long the driver reuses a target's located next hops. Short: DNS
/// TTLs (which hickory's own cache honours) stay in charge.
const LOCATED_FOR: Duration = Duration::from_secs(30);
/// Target URIs remembered at most.
const MAX_LOCATED: usize = 10_000;
/// How long an INVITE waits for DNS at most. The resolver gives up on
/// each question in 2 s; a NAPTR, three SRVs and their addresses stay
/// within this, and a lookup that never reports back cannot hold a call.
const LOCATING_AT_MOST: Duration = Duration::from_secs(15);

impl Driver {
    pub fn new(
        transports: Transports,
        records: Option<RecordSender>,
        config: Arc<ProxyConfig>,
        paths: Paths,
        stats: Arc<ProxyStats>,
        stop: Arc<AtomicBool>,
    ) -> Driver {
        let Paths {
            route,
            dialogs,
            locator,
        } = paths;
        let Transports {
            socket,
            outbound,
            writers,
        } = transports;
        let calls = Calls {
            next_nonce: random_start(),
            ..Calls::default()
        };
        Driver {
            state: Mutex::new(State {
                calls,
                timer_at: None,
            }),
            wake: Condvar::new(),
            socket,
            outbox: Mutex::new(Outbox::default()),
            outbound,
            writers,
            records,
            config,
            route,
            dialogs,
            locator,
            me: OnceLock::new(),
            stats,
            stop,
        }
    }

    /// Runs `message` through its call, on the caller's thread, and sends
    /// what the call wants sent: at once, except for a message a UDP
    /// worker received, whose datagrams wait for the end of its batch
    /// ([`Driver::send_held`]).
    pub fn deliver(&self, message: Inbound) {
        let held = message.from_datagram();
        self.run(message);
        if !held {
            self.send_held();
        }
    }

    /// Sends the datagrams held (a UDP worker calls this after each
    /// batch), and tells the legs whose datagrams the kernel refused.
    pub fn send_held(&self) {
        // Bounded: each refusal uses up one of a leg's servers or the leg.
        for _ in 0..8 {
            let refused = {
                let mut outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
                if outbox.is_empty() {
                    return;
                }
                outbox.send(&self.socket)
            };
            if refused.is_empty() {
                return;
            }
            for refusal in refused {
                self.run(Inbound::LegFailed {
                    nonce: refusal.leg.nonce,
                    leg: refusal.leg.leg,
                    bytes: refusal.bytes,
                });
            }
        }
    }

    fn run(&self, message: Inbound) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        self.on_message(&mut state.calls, message, now);
        // A deadline more than a tick sooner than the timer thread sleeps
        // to: wake it (a notify is a system call, so not for less).
        let next = state.calls.deadlines.peek().map(|Reverse((at, _))| *at);
        if next.is_some_and(|next| state.timer_at.is_none_or(|at| next + TICK < at)) {
            self.wake.notify_one();
        }
    }

    /// The timer thread: fires what is due, sleeps until the next deadline
    /// (at most `IDLE`, to look at the stop flag), until stopped.
    pub fn run_timers(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !self.stop.load(Ordering::Relaxed) {
            self.fire_timers(&mut state.calls, Instant::now());
            drop(state);
            self.send_held();
            state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let wait = state
                .calls
                .deadlines
                .peek()
                .map_or(IDLE, |Reverse((at, _))| at.saturating_duration_since(now))
                .clamp(TICK, IDLE);
            state.timer_at = Some(now + wait);
            state = self
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.timer_at = None;
        }
    }

    fn on_message(&self, calls: &mut Calls, message: Inbound, now: Instant) {
        match message {
            Inbound::Invite {
                message,
                keys,
                peer,
                respond_to,
                legs,
                diverted_from,
                first_reason,
                record,
            } => {
                let invite = NewCall {
                    targets: targets(legs, &diverted_from, first_reason),
                    caller: match peer.connection {
                        Some(id) => Caller::Stream(id),
                        None => Caller::Datagram(respond_to),
                    },
                    upstream: Upstream {
                        source: respond_to,
                        transport: match peer.transport {
                            PeerTransport::Udp => Transport::Udp,
                            PeerTransport::Tcp => Transport::Tcp,
                            PeerTransport::Tls => Transport::Tls,
                        },
                    },
                    message,
                    record,
                };
                self.on_invite(calls, invite, keys, now)
            }
            Inbound::Cancel {
                message,
                respond_to,
                ..
            } => self.on_cancel(calls, &message, respond_to, now),
            Inbound::Ack { message, .. } => self.on_ack(calls, &message, now),
            Inbound::InDialog {
                message,
                peer,
                respond_to,
                direction,
                next,
            } => {
                let caller = match peer.connection {
                    Some(id) => Caller::Stream(id),
                    None => Caller::Datagram(respond_to),
                };
                self.on_in_dialog(&message, caller, respond_to, direction, &next);
            }
            Inbound::Response { message, .. } => self.on_response(calls, &message, now),
            Inbound::LegFailed { nonce, leg, bytes } => {
                if let Some(entry) = calls.by_nonce.get_mut(&nonce) {
                    // Another server of the target's, when DNS gave more
                    // (RFC 3263 §4.3); nothing reached this one.
                    if !self.try_alternate(entry, nonce, leg, bytes) {
                        entry.call.on_leg_transport_error(leg, now);
                    }
                }
                self.flush(calls, nonce, now);
            }
            Inbound::Located { key, uri, hops } => self.on_located(calls, &key, &uri, hops, now),
        }
    }

    fn on_invite(
        &self,
        calls: &mut Calls,
        invite: NewCall,
        (server_key, call_id): (Vec<u8>, Vec<u8>),
        now: Instant,
    ) {
        let NewCall {
            message,
            caller,
            upstream,
            targets,
            record,
        } = invite;
        if let Some(&nonce) = calls.by_server_key.get(&server_key) {
            // A retransmission (§17.2.1): the latest response again; the
            // next hop sees one INVITE per leg.
            self.release();
            if let Some(entry) = calls.by_nonce.get_mut(&nonce) {
                entry.call.on_invite_retransmission();
            }
            self.flush(calls, nonce, now);
            return;
        }
        if let Some(parked) = calls.parked.get(&server_key) {
            // Retransmitted while its targets are being located: the 100
            // again.
            self.release();
            self.answer(parked.invite.caller, parked.trying.clone());
            return;
        }
        let invite = NewCall {
            message,
            caller,
            upstream,
            targets,
            record,
        };
        let located: Vec<Option<Vec<NextHop>>> = invite
            .targets
            .iter()
            .map(|t| self.located_now(calls, &t.uri, now))
            .collect();
        match &self.locator {
            Some(locator) if located.iter().any(Option::is_none) => {
                self.park(calls, invite, server_key, call_id, located, locator, now);
            }
            _ => self.start_call(calls, invite, server_key, call_id, located, now),
        }
    }

    /// Where a target goes without asking DNS: the next hop, an IP
    /// address, or what DNS said lately; `None` when DNS must be asked.
    /// A name with no locator gets no hop (the leg fails, §16.9).
    fn located_now(&self, calls: &Calls, uri: &[u8], now: Instant) -> Option<Vec<NextHop>> {
        if let Some(hop) = self.hop_for(uri) {
            return Some(vec![hop]);
        }
        if self.locator.is_none() || Hop::parse(uri).is_none() {
            return Some(Vec::new());
        }
        calls
            .located
            .get(uri)
            .filter(|(_, until)| *until > now)
            .map(|(hops, _)| hops.clone())
    }

    /// Holds an INVITE while DNS locates its targets (RFC 3263): `100
    /// Trying` now (§16.2: the lookups may take longer than the caller's
    /// first retransmission), and the call starts when the last answer
    /// comes (`Inbound::Located`).
    #[allow(clippy::too_many_arguments)]
    fn park(
        &self,
        calls: &mut Calls,
        invite: NewCall,
        server_key: Vec<u8>,
        call_id: Vec<u8>,
        located: Vec<Option<Vec<NextHop>>>,
        locator: &Locator,
        now: Instant,
    ) {
        let Some(request) = Request::parse(&invite.message, Framing::Datagram) else {
            self.release();
            return;
        };
        let trying =
            self.local_response(&request, invite.upstream.source, Status::new(100, "Trying"));
        self.answer(invite.caller, trying.clone());
        for (target, hops) in invite.targets.iter().zip(&located) {
            if hops.is_some() {
                continue;
            }
            let (locator, uri, key) = (locator.clone(), target.uri.clone(), server_key.clone());
            let driver = self.me.get().cloned();
            self.outbound.spawn(async move {
                let hops = locator.locate(&uri).await;
                if let Some(driver) = driver.and_then(|d| d.upgrade()) {
                    driver.deliver(Inbound::Located { key, uri, hops });
                }
            });
        }
        calls.parked.insert(
            server_key,
            Parked {
                invite,
                call_id,
                located,
                trying,
                since: now,
            },
        );
    }

    /// DNS answered for one target of a parked INVITE; the call starts
    /// once every target has its answer.
    fn on_located(
        &self,
        calls: &mut Calls,
        key: &[u8],
        uri: &[u8],
        hops: Vec<NextHop>,
        now: Instant,
    ) {
        if calls.located.len() >= MAX_LOCATED {
            calls.located.retain(|_, (_, until)| *until > now);
            if calls.located.len() >= MAX_LOCATED {
                calls.located.clear();
            }
        }
        calls
            .located
            .insert(uri.into(), (hops.clone(), now + LOCATED_FOR));
        let Some(parked) = calls.parked.get_mut(key) else {
            return;
        };
        for (target, slot) in parked.invite.targets.iter().zip(&mut parked.located) {
            if slot.is_none() && *target.uri == *uri {
                *slot = Some(hops.clone());
            }
        }
        if parked.located.iter().all(Option::is_some)
            && let Some(parked) = calls.parked.remove(key)
        {
            debug!(
                waited_ms = now.saturating_duration_since(parked.since).as_millis() as u64,
                "proxy mode: targets located"
            );
            self.start_call(
                calls,
                parked.invite,
                key.to_vec(),
                parked.call_id,
                parked.located,
                now,
            );
        }
    }

    /// A parked INVITE whose lookups have not all come back by
    /// `LOCATING_AT_MOST` starts with what it has: a target still unlocated
    /// fails as a transport error (§16.9), so the caller gets an answer and
    /// the call's slot is given back whatever DNS does.
    fn give_up_locating(&self, calls: &mut Calls, now: Instant) {
        if calls.parked.is_empty() {
            return;
        }
        let late: Vec<Vec<u8>> = calls
            .parked
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.since) >= LOCATING_AT_MOST)
            .map(|(key, _)| key.clone())
            .collect();
        for key in late {
            if let Some(parked) = calls.parked.remove(&key) {
                debug!("proxy mode: DNS did not answer in time; the call goes on without it");
                let located = parked
                    .located
                    .into_iter()
                    .map(|l| Some(l.unwrap_or_default()))
                    .collect();
                self.start_call(calls, parked.invite, key, parked.call_id, located, now);
            }
        }
    }

    /// Starts a call whose targets are located: each leg's first next hop,
    /// the others kept to fail over to (RFC 3263 §4.3).
    fn start_call(
        &self,
        calls: &mut Calls,
        invite: NewCall,
        server_key: Vec<u8>,
        call_id: Vec<u8>,
        located: Vec<Option<Vec<NextHop>>>,
        now: Instant,
    ) {
        let NewCall {
            message,
            caller,
            upstream,
            mut targets,
            record,
        } = invite;
        if let Some(line) = self.record_route_line(&message) {
            // Ours goes first, above the leg's Diversion (§16.6 step 4).
            for target in &mut targets {
                target.top_headers = [line.as_slice(), &target.top_headers].concat().into();
            }
        }
        let nonce = calls.next_nonce;
        calls.next_nonce = calls.next_nonce.wrapping_add(1);
        let mut hops: Vec<Option<NextHop>> = Vec::with_capacity(targets.len());
        let mut alternates: Vec<Vec<NextHop>> = Vec::with_capacity(targets.len());
        for found in located {
            let mut found = found.unwrap_or_default();
            let first = (!found.is_empty()).then(|| found.remove(0));
            // Failover stays on the first one's transport: the leg's Via
            // and timers are made for it.
            found.retain(|hop| first.is_some_and(|f| f.transport == hop.transport));
            hops.push(first);
            alternates.push(found);
        }
        // Each leg's Via and timers follow the transport it goes over; a
        // silent server gives way to the next (RFC 3263 §4.3).
        for ((target, hop), others) in targets.iter_mut().zip(&hops).zip(&alternates) {
            if let Some(hop) = hop {
                target.transport = hop.transport;
            }
            target.other_servers = u8::try_from(others.len()).unwrap_or(u8::MAX);
        }
        let call = match Call::new(
            message,
            upstream,
            targets,
            Arc::clone(&self.config),
            nonce,
            now,
        ) {
            Ok(call) => call,
            Err(e) => {
                debug!(error = %e, "proxy mode: INVITE not relayed");
                self.release();
                return;
            }
        };
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        calls.by_server_key.insert(server_key.clone(), nonce);
        calls.by_call_id.insert(call_id.clone(), nonce);
        calls.by_nonce.insert(
            nonce,
            Box::new(Entry {
                call,
                upstream: caller,
                hops,
                alternates,
                server_key,
                call_id,
                started: now,
                record,
                answers: Vec::new(),
            }),
        );
        self.flush(calls, nonce, now);
    }

    fn on_cancel(&self, calls: &mut Calls, message: &[u8], respond_to: SocketAddr, now: Instant) {
        let Some((server_key, _)) = keys(message) else {
            return;
        };
        match calls.by_server_key.get(&server_key).copied() {
            Some(nonce) => {
                if let Some(entry) = calls.by_nonce.get_mut(&nonce) {
                    entry.call.on_cancel(message, now);
                }
                self.flush(calls, nonce, now);
            }
            None => match calls.parked.remove(&server_key) {
                Some(parked) => self.cancel_parked(parked, message, respond_to),
                None => self.answer_unmatched_cancel(message, respond_to),
            },
        }
    }

    /// A CANCEL for an INVITE still waiting for DNS: `200` to it, `487`
    /// to the INVITE (§9.2), and no leg is ever started.
    fn cancel_parked(&self, parked: Parked, message: &[u8], respond_to: SocketAddr) {
        self.release();
        if let Some(cancel) = Request::parse(message, Framing::Datagram) {
            let ok = self.local_response(&cancel, respond_to, Status::new(200, "OK"));
            self.answer(parked.invite.caller, ok);
        }
        if let Some(invite) = Request::parse(&parked.invite.message, Framing::Datagram) {
            let terminated = self.local_response(
                &invite,
                parked.invite.upstream.source,
                Status::new(487, "Request Terminated"),
            );
            self.answer(parked.invite.caller, terminated);
        }
    }

    /// A CANCEL matching no INVITE: `481` (§16.10, §9.2).
    fn answer_unmatched_cancel(&self, message: &[u8], to: SocketAddr) {
        let Some(request) = Request::parse(message, Framing::Datagram) else {
            return;
        };
        let out = self.local_response(
            &request,
            to,
            Status::new(481, "Call/Transaction Does Not Exist"),
        );
        self.send(out, to, None);
    }

    fn on_ack(&self, calls: &mut Calls, message: &[u8], now: Instant) {
        // Parsed once here for the keys, the To tag and the relay.
        let Some(request) = Request::parse(message, Framing::Datagram) else {
            return;
        };
        let Some((server_key, call_id)) = transaction_keys(&request) else {
            return;
        };
        if let Some(nonce) = calls.by_server_key.get(&server_key).copied() {
            // The ACK of a non-2xx final: the server transaction's (§17.2.1).
            if let Some(entry) = calls.by_nonce.get_mut(&nonce) {
                entry.call.on_ack(now);
            }
            self.flush(calls, nonce, now);
            return;
        }
        // An ACK for a 2xx: end to end, to the leg whose answer carried
        // its To tag, else the one that answered first.
        let Some(entry) = calls
            .by_call_id
            .get(&call_id)
            .and_then(|nonce| calls.by_nonce.get(nonce))
        else {
            self.stats.dropped_acks.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let by_tag = request.to_tag().and_then(|tag| {
            entry
                .answers
                .iter()
                .find(|(answered, _)| answered.as_slice() == tag)
                .map(|&(_, leg)| leg)
        });
        let Some(hop) = by_tag
            .or_else(|| entry.call.summary(now).answered_by)
            .and_then(|leg| entry.hops.get(leg).copied().flatten())
        else {
            self.stats.dropped_acks.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Some(bytes) = self.forward_statelessly(message, &request, hop.transport) {
            self.send_to(bytes, hop, None);
        }
    }

    /// Our `Record-Route` line for the dialog `invite` starts, when we
    /// record-route: the MAC binds it to its Call-ID and From tag.
    fn record_route_line(&self, invite: &[u8]) -> Option<Vec<u8>> {
        let dialogs = self.dialogs.as_ref()?;
        let request = Request::parse(invite, Framing::Datagram)?;
        let uri = record_route_uri(
            &dialogs.sent_by,
            &dialogs.key,
            request.call_id?,
            request.from_tag().unwrap_or_default(),
        );
        let mut line = b"Record-Route: <".to_vec();
        line.extend_from_slice(&uri);
        line.extend_from_slice(b";lr>\r\n");
        Some(line)
    }

    /// A request of a dialog we record-routed (§16.12): our Route value
    /// removed, our Via on top with a branch of the stateless leg, sent to
    /// the next Route or the Request-URI; downstream through
    /// `proxy.next_hop` when there is one, as the dialog's INVITE went.
    /// Without a transaction (§16.11): the ends retransmit, and the
    /// answers go back by Via. What cannot be relayed is answered, but an
    /// ACK, which has no answer.
    fn on_in_dialog(
        &self,
        message: &[u8],
        caller: Caller,
        respond_to: SocketAddr,
        direction: Direction,
        next: &[u8],
    ) {
        let Some(request) = Request::parse(message, Framing::Datagram) else {
            return;
        };
        let hop = match (direction, self.route) {
            (Direction::Downstream, Route::NextHop(hop)) => Some(hop),
            _ => address_of(next),
        };
        let (call_nonce, leg) = match caller {
            // Its answers go back on its connection, named in the branch.
            Caller::Stream(id) => (id, STREAM_LEG),
            // The same request again gets the same branch.
            Caller::Datagram(_) => (xxhash_rust::xxh3::xxh3_64(message), STATELESS_LEG),
        };
        let branch = Branch::new(BranchParts {
            loop_hash: branch::loop_hash(message, &request),
            call_nonce,
            leg,
        });
        let spec = ForwardSpec {
            target_uri: request.uri,
            via: ViaSpec {
                transport: hop.map_or(Transport::Udp, |h| h.transport).via_token(),
                sent_by: &self.config.via_sent_by,
            },
            branch: &branch,
            record_route: None,
            top_headers: b"",
            bottom_headers: b"",
            received_from: Some(respond_to),
            drop_top_route: true,
        };
        let mut out = Vec::with_capacity(message.len() + 128);
        let status = match (hop, forward_request(message, &request, &spec, &mut out)) {
            (Some(hop), Ok(())) if self.send_to(out, hop, None) => {
                self.stats.in_dialog.fetch_add(1, Ordering::Relaxed);
                return;
            }
            (_, Err(ForwardError::TooManyHops)) => Status::new(483, "Too Many Hops"),
            (None, _) => {
                debug!(next = %String::from_utf8_lossy(next), "in-dialog request: no address to relay to");
                Status::new(503, "Service Unavailable")
            }
            // §16.9: a transport error is a 503.
            _ => Status::new(503, "Service Unavailable"),
        };
        self.stats.in_dialog_failed.fetch_add(1, Ordering::Relaxed);
        if request.method == Method::Ack {
            return;
        }
        let answer = self.local_response(&request, respond_to, status);
        self.answer(caller, answer);
    }

    /// §16.11: a request relayed without a transaction (the ACK of a 2xx),
    /// with our Via on top and a branch derived from the request so that
    /// a retransmission gets the same one.
    fn forward_statelessly(
        &self,
        message: &[u8],
        request: &Request<'_>,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let branch = Branch::new(BranchParts {
            loop_hash: branch::loop_hash(message, request),
            call_nonce: xxhash_rust::xxh3::xxh3_64(message),
            leg: 0,
        });
        let spec = ForwardSpec {
            target_uri: request.uri,
            via: ViaSpec {
                transport: transport.via_token(),
                sent_by: &self.config.via_sent_by,
            },
            branch: &branch,
            record_route: None,
            top_headers: b"",
            bottom_headers: b"",
            // An ACK has no response to route back.
            received_from: None,
            drop_top_route: false,
        };
        let mut out = Vec::new();
        forward_request(message, request, &spec, &mut out).ok()?;
        Some(out)
    }

    fn on_response(&self, calls: &mut Calls, message: &[u8], now: Instant) {
        let Ok(head) = ResponseHead::parse(message, Framing::Datagram) else {
            self.stats.dropped_responses.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let parts = head.branch().and_then(branch::parse);
        if let Some(parts) = parts
            && let Some(entry) = calls.by_nonce.get_mut(&parts.call_nonce)
            && entry.call.on_response_head(message, &head, now) == ResponseFate::Handled
        {
            if (200..300).contains(&head.status)
                && head.cseq_method == Method::Invite
                && let Some(tag) = head.to_tag
                && !entry.answers.iter().any(|(seen, _)| seen.as_slice() == tag)
                // Bounded: a next hop that answers with ever new tags
                // gets its later ACKs by the first answer's leg.
                && entry.answers.len() < 8
            {
                entry.answers.push((tag.to_vec(), usize::from(parts.leg)));
            }
            self.flush(calls, parts.call_nonce, now);
            return;
        }
        // The answer to an in-dialog request relayed without a
        // transaction (§16.11): on the caller's connection when it came
        // over one (its id is in our branch), else by the Via under ours,
        // whatever it says.
        if let Some(out) = relay_stateless(message) {
            match parts {
                Some(parts) if parts.leg == STREAM_LEG => {
                    if !self.writers.send(parts.call_nonce, out) {
                        debug!(
                            connection = parts.call_nonce,
                            "in-dialog answer: the caller's connection is gone"
                        );
                    }
                }
                _ => {
                    let Some(to) = ResponseHead::parse(&out, Framing::Datagram)
                        .ok()
                        .and_then(|next| next.top_via.relay_address())
                    else {
                        self.stats.dropped_responses.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    self.send(out, to, None);
                }
            }
            self.stats
                .in_dialog_responses
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        // A 2xx for a call already gone: relayed statelessly by the Via
        // under ours (§16.7 step 9, RFC 6026 §7); never swallowed.
        if let Some(out) = relay_stray_2xx(message)
            && let Ok(next) = ResponseHead::parse(&out, Framing::Datagram)
            && let Some(to) = next.top_via.relay_address()
        {
            self.send(out, to, None);
            self.stats.late_2xx.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.dropped_responses.fetch_add(1, Ordering::Relaxed);
    }

    fn fire_timers(&self, calls: &mut Calls, now: Instant) {
        self.give_up_locating(calls, now);
        let mut fired = 0;
        while let Some(&Reverse((at, nonce))) = calls.deadlines.peek() {
            if at > now || fired > 10_000 {
                break;
            }
            calls.deadlines.pop();
            fired += 1;
            let Some(entry) = calls.by_nonce.get_mut(&nonce) else {
                continue;
            };
            if entry.call.poll_deadline().is_some_and(|due| due <= now) {
                entry.call.on_timeout(now);
                self.flush(calls, nonce, now);
            }
        }
    }

    /// Sends what the call wants sent, re-arms its timer, and drops it
    /// when it is done.
    fn flush(&self, calls: &mut Calls, nonce: u64, now: Instant) {
        let Some(entry) = calls.by_nonce.get_mut(&nonce) else {
            return;
        };
        // What the call sends can fail, and the failure is news to the
        // call, which may then want to send more: bounded rounds.
        for _ in 0..8 {
            let mut failed_legs = Vec::new();
            let mut caller_gone = false;
            while let Some(transmit) = entry.call.poll_transmit() {
                match transmit.to {
                    Destination::Upstream => {
                        caller_gone |= !self.answer(entry.upstream, transmit.bytes);
                    }
                    // The leg's server was silent: the same bytes to the
                    // target's next server (RFC 3263 §4.3).
                    Destination::NextServer(i) => {
                        if !self.try_alternate(entry, nonce, i, transmit.bytes) {
                            failed_legs.push(i);
                        }
                    }
                    Destination::Leg(i) => match entry.hops.get(i).copied().flatten() {
                        Some(hop)
                            if self.send_to(
                                transmit.bytes,
                                hop,
                                Some(LegRef { nonce, leg: i }),
                            ) => {}
                        _ => failed_legs.push(i),
                    },
                }
            }
            if failed_legs.is_empty() && !caller_gone {
                break;
            }
            for leg in failed_legs {
                entry.call.on_leg_transport_error(leg, now);
            }
            if caller_gone {
                entry.call.on_upstream_transport_error(now);
            }
        }
        if entry.call.is_done() {
            let summary = entry.call.summary(now);
            let started = entry.started;
            if let Some(entry) = calls.by_nonce.remove(&nonce) {
                calls.by_server_key.remove(&entry.server_key);
                if calls.by_call_id.get(&entry.call_id) == Some(&nonce) {
                    calls.by_call_id.remove(&entry.call_id);
                }
                if let (Some(records), Some(mut record)) = (&self.records, entry.record) {
                    record.status = summary.final_status.unwrap_or(0);
                    record.proxy = Some(outcome_of(&summary));
                    records.send(*record);
                }
            }
            self.stats
                .record(&summary, now.saturating_duration_since(started));
            log_summary(&summary);
            self.release();
        } else if let Some(at) = entry.call.poll_deadline() {
            calls.deadlines.push(Reverse((at, nonce)));
        }
    }

    /// One call less in flight.
    fn release(&self) {
        self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// A response of the driver's own to `request`, whose sender is at
    /// `to` (its Via gets `received`/`rport` from it).
    fn local_response(&self, request: &Request<'_>, to: SocketAddr, status: Status) -> Vec<u8> {
        let mut out = Vec::new();
        crate::sip::write_response(&mut out, request, to, status, &self.config.server, |_| {});
        out
    }

    /// Sends to the caller; whether it could be.
    fn answer(&self, caller: Caller, bytes: Vec<u8>) -> bool {
        match caller {
            Caller::Datagram(to) => self.send(bytes, to, None),
            Caller::Stream(id) => self.writers.send(id, bytes),
        }
    }

    /// Sends `bytes` of leg `leg` to its target's next server, when DNS gave
    /// another (RFC 3263 §4.3): after a refused connection or send, or when
    /// the call says its server was silent. Whether one took it.
    fn try_alternate(&self, entry: &mut Entry, nonce: u64, leg: usize, bytes: Vec<u8>) -> bool {
        let Some(alternates) = entry.alternates.get_mut(leg) else {
            return false;
        };
        while !alternates.is_empty() {
            let hop = alternates.remove(0);
            if let Some(slot) = entry.hops.get_mut(leg) {
                *slot = Some(hop);
            }
            debug!(to = %hop.addr, leg, "proxy mode: trying the target's next server");
            self.stats.server_failovers.fetch_add(1, Ordering::Relaxed);
            if self.send_to(bytes.clone(), hop, Some(LegRef { nonce, leg })) {
                return true;
            }
        }
        false
    }

    /// Sends a leg's message by its transport; whether it went (a datagram)
    /// or was queued (a stream, whose later failure `leg` learns of).
    fn send_to(&self, bytes: Vec<u8>, hop: NextHop, leg: Option<LegRef>) -> bool {
        match hop.transport {
            Transport::Udp => self.send(bytes, hop.addr, leg),
            Transport::Tcp => self.outbound.send(hop.addr, false, bytes, leg),
            Transport::Tls => self.outbound.send(hop.addr, true, bytes, leg),
        }
    }

    /// Holds a datagram for the next `sendmmsg` ([`Driver::send_held`]);
    /// a refusal then reaches `leg`. Always true: nothing is refused yet.
    fn send(&self, bytes: Vec<u8>, to: SocketAddr, leg: Option<LegRef>) -> bool {
        self.outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(to, bytes, leg);
        true
    }

    /// The next hop of a leg: `proxy.next_hop`, else the target's own host
    /// when it is an IP address.
    fn hop_for(&self, uri: &[u8]) -> Option<NextHop> {
        match self.route {
            Route::NextHop(hop) => Some(hop),
            Route::TargetHost => address_of(uri),
        }
    }

    /// Lets the outbound connections hand their responses to this driver.
    pub fn connect_outbound(self: &Arc<Self>) {
        self.outbound.deliver_to(self);
        let _ = self.me.set(Arc::downgrade(self));
    }
}

/// A SIP URI's host and port, and its transport, when its host is an IP
/// address (a name goes to DNS, `resolve.rs`).
fn address_of(uri: &[u8]) -> Option<NextHop> {
    let hop = Hop::parse(uri)?;
    let ip: std::net::IpAddr = hop.bare_host()?.parse().ok()?;
    Some(NextHop {
        addr: SocketAddr::new(ip, hop.effective_port()),
        transport: hop.effective_transport().into(),
    })
}

/// A call summary as its record tells it.
fn outcome_of(summary: &CallSummary) -> ProxyOutcome {
    ProxyOutcome {
        final_status: summary.final_status,
        answered_by: summary.answered_by,
        cancelled_by_caller: summary.cancelled_by_caller,
        legs: summary
            .legs
            .iter()
            .map(|leg| ProxyLeg {
                target: leg.target,
                status: match leg.outcome {
                    Some(LegOutcome::Answered(code) | LegOutcome::Rejected(code)) => Some(code),
                    _ => None,
                },
                outcome: LegResult::of(leg.outcome, leg.cancelled).as_str(),
                ring_ms: u64::try_from(leg.ring_time.as_millis()).unwrap_or(u64::MAX),
            })
            .collect(),
    }
}

/// The call's targets: each leg's URI over UDP, with what its diversion
/// headers are made from. The first leg's Diversion gives the reason the
/// rules chose it (`follow-me`, `unconditional`, as a 302 would); a later
/// leg's, why the one before it failed, which the call knows when it
/// starts it. History-Info, which lists every leg tried and why it was
/// left, is written by the call itself from the dialed URI.
fn targets(legs: Vec<LegPlan>, diverted_from: &DivertedFrom, first_reason: &str) -> Vec<Target> {
    legs.into_iter()
        .enumerate()
        .map(|(nth, leg)| {
            let mut top = Vec::new();
            let mut diversion = None;
            let mut history_dialed = None;
            match diverted_from {
                DivertedFrom::Off => {}
                DivertedFrom::Diversion(dialed) if nth == 0 => {
                    top.extend_from_slice(b"Diversion: <");
                    top.extend_from_slice(dialed);
                    top.extend_from_slice(b">;reason=");
                    top.extend_from_slice(first_reason.as_bytes());
                    top.extend_from_slice(b";counter=1\r\n");
                }
                DivertedFrom::Diversion(dialed) => {
                    let mut value = Vec::with_capacity(dialed.len() + 2);
                    value.push(b'<');
                    value.extend_from_slice(dialed);
                    value.push(b'>');
                    diversion = Some(value.into_boxed_slice());
                }
                DivertedFrom::HistoryInfo(dialed) => {
                    history_dialed = Some(dialed.clone().into_boxed_slice());
                }
            }
            Target {
                uri: leg.uri.into_boxed_slice(),
                transport: Transport::Udp,
                ring: leg.ring,
                top_headers: top.into_boxed_slice(),
                bottom_headers: Box::default(),
                diversion,
                history_dialed,
                // Set when the target is located (`start_call`).
                other_servers: 0,
            }
        })
        .collect()
}

/// The server transaction key of a request (its top Via's branch and
/// sent-by, §17.2.3) and its Call-ID.
fn keys(message: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    transaction_keys(&Request::parse(message, Framing::Datagram)?)
}

/// [`keys`] of a request already parsed: `None` without a Via branch
/// (RFC 2543 matching is not done here) or a Call-ID, or for a method
/// other than INVITE, CANCEL and ACK.
pub fn transaction_keys(request: &Request<'_>) -> Option<(Vec<u8>, Vec<u8>)> {
    let via = request.top_via?;
    let mut key = via.branch?.to_vec();
    key.push(b' ');
    key.extend_from_slice(via.host);
    key.extend_from_slice(&via.port.unwrap_or(5060).to_be_bytes());
    let call_id = request.call_id?.to_vec();
    if request.method != Method::Invite
        && request.method != Method::Cancel
        && request.method != Method::Ack
    {
        return None;
    }
    Some((key, call_id))
}

fn log_summary(summary: &CallSummary) {
    // The legs' words are made only when someone reads them: at the
    // default level this ran for every call and allocated each time.
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let legs: Vec<String> = summary
        .legs
        .iter()
        .map(|leg| match leg.outcome {
            Some(LegOutcome::Answered(code) | LegOutcome::Rejected(code)) => code.to_string(),
            Some(LegOutcome::NoAnswer) => "no-answer".to_owned(),
            Some(LegOutcome::TransportError) => "transport-error".to_owned(),
            None => "pending".to_owned(),
        })
        .collect();
    debug!(
        final_status = summary.final_status,
        answered_by = summary.answered_by,
        cancelled_by_caller = summary.cancelled_by_caller,
        legs = legs.join(","),
        "proxied call ended"
    );
}

/// A start for the call nonces that differs between runs, so that a
/// restarted server never takes a late response for one of its new calls.
fn random_start() -> u64 {
    let mut bytes = [0u8; 8];
    if let Err(e) = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
    {
        warn!(error = %e, "no /dev/urandom: call nonces start from the clock");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return nanos as u64;
    }
    u64::from_le_bytes(bytes)
}
