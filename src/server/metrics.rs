//! What the server counts, for the admin endpoint's `/metrics` (docs/operations.md),
//! encoded in the Prometheus/OpenMetrics text format by prometheus-client.
//!
//! Counters are plain atomics in shards, one per UDP worker and one for
//! TCP, so workers never write the same cache line; a scrape sums the
//! shards. Nothing on the request path looks a metric up by name or label:
//! a counter is an array index. Gauges (table sizes, reloads, open TCP
//! connections) are read from their owners at scrape time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::connections::ConnectionLimits;
use super::handler::{Outcome, Silence};
use super::receive_drops::ReceiveDrops;
use super::relay::stats::{LegResult, ProxyStats, RING_BOUNDS};
use super::tls_accept::{Handshake, TlsStats};
use crate::records::{DropReason, RecordsStats};
use crate::routing::Rule;
use crate::routing_data::TableReader;
use crate::sip::MethodKind;
use crate::tls::TlsHandle;

/// Response codes counted by name; any other is counted as `other`.
const CODES: [u16; 14] = [
    200, 302, 400, 403, 404, 405, 416, 420, 480, 481, 483, 503, 505, 513,
];
/// `CODES`, then `other`, then `none` (absorbed: ACK, CANCEL).
const CODE_SLOTS: usize = CODES.len() + 2;
const OTHER_CODE: usize = CODES.len();
const NO_CODE: usize = CODES.len() + 1;

const RULES: [Rule; 4] = [
    Rule::NumberUser,
    Rule::ContactOwner,
    Rule::Forwarding,
    Rule::None,
];
/// The statuses a routing decision ends in.
const DECISION_CODES: [u16; 3] = [302, 404, 480];

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BOUNDS: [f64; 13] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1,
];

/// Why a message got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Not SIP, a response, or no usable Via; or a TCP stream that cannot
    /// be framed.
    Malformed,
    /// From a peer outside the trust list.
    Untrusted,
    /// Over its source's flood limit.
    RateLimited,
    /// Over the message size limit.
    Oversize,
    /// The handler panicked (it never should: fuzzed).
    Panic,
}

impl Dropped {
    const ALL: [Dropped; 5] = [
        Dropped::Malformed,
        Dropped::Untrusted,
        Dropped::RateLimited,
        Dropped::Oversize,
        Dropped::Panic,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Dropped::Malformed => "malformed",
            Dropped::Untrusted => "untrusted",
            Dropped::RateLimited => "rate_limited",
            Dropped::Oversize => "oversize",
            Dropped::Panic => "panic",
        }
    }
}

/// One writer's counters.
#[derive(Debug, Default)]
pub struct Shard {
    requests: [[AtomicU64; CODE_SLOTS]; MethodKind::ALL.len()],
    decisions: [[AtomicU64; DECISION_CODES.len()]; RULES.len()],
    dropped: [AtomicU64; Dropped::ALL.len()],
    /// Observations per bucket (not cumulative); the last is +Inf.
    latency: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    latency_sum_ns: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Shard {
    /// Counts what the handler did with one message.
    pub fn record(&self, outcome: &Outcome) {
        match *outcome {
            Outcome::Reply {
                status,
                method,
                decided_by,
                ..
            } => {
                let code = CODES.iter().position(|&c| c == status);
                add(
                    &self.requests[method_index(method)][code.unwrap_or(OTHER_CODE)],
                    1,
                );
                if let Some(rule) = decided_by {
                    let rule = RULES.iter().position(|&r| r == rule).unwrap_or(3);
                    if let Some(code) = DECISION_CODES.iter().position(|&c| c == status) {
                        add(&self.decisions[rule][code], 1);
                    }
                }
            }
            Outcome::Silent(Silence::Ack) => {
                add(&self.requests[method_index(MethodKind::Ack)][NO_CODE], 1)
            }
            Outcome::Silent(Silence::Cancel) => {
                add(&self.requests[method_index(MethodKind::Cancel)][NO_CODE], 1)
            }
            Outcome::Silent(Silence::NotARequest) => self.dropped(Dropped::Malformed),
            Outcome::Silent(Silence::Untrusted) => self.dropped(Dropped::Untrusted),
            Outcome::Silent(Silence::Flooding) => self.dropped(Dropped::RateLimited),
            Outcome::Silent(Silence::Oversize) => self.dropped(Dropped::Oversize),
            // Answered by the proxy driver, which counts what it sends.
            Outcome::Silent(Silence::Relayed(method)) => {
                add(&self.requests[method_index(method)][NO_CODE], 1)
            }
            Outcome::Silent(Silence::Response) => {}
        }
    }

    /// Counts a request run under `contain`: its outcome, or a panic when
    /// it has none. The outcome is handed back for the transport.
    pub fn record_contained(&self, outcome: Option<Outcome>) -> Option<Outcome> {
        match &outcome {
            Some(outcome) => self.record(outcome),
            None => self.dropped(Dropped::Panic),
        }
        outcome
    }

    pub fn dropped(&self, reason: Dropped) {
        let index = Dropped::ALL.iter().position(|&r| r == reason).unwrap_or(0);
        add(&self.dropped[index], 1);
    }

    /// `count` answers that took `elapsed` from receipt to sending.
    pub fn latency(&self, elapsed: Duration, count: u64) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        add(&self.latency[bucket], count);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        add(&self.latency_sum_ns, nanos.saturating_mul(count));
    }
}

fn method_index(method: MethodKind) -> usize {
    MethodKind::ALL
        .iter()
        .position(|&m| m == method)
        .unwrap_or(MethodKind::ALL.len() - 1)
}

/// Every shard and the owners of the gauges: what a scrape reads.
#[derive(Debug)]
pub struct Metrics {
    shards: Vec<Arc<Shard>>,
    table: TableReader,
    connections: Arc<ConnectionLimits>,
    receive_drops: ReceiveDrops,
    /// The TLS listeners' counts and certificate, when TLS is on.
    tls: Option<(TlsHandle, Arc<TlsStats>)>,
    /// Proxy mode's counters, when any peer is relayed.
    proxy: Option<Arc<ProxyStats>>,
    /// The call records' counts, when records are on.
    records: Option<RecordsStats>,
}

impl Metrics {
    pub fn new(
        table: TableReader,
        connections: Arc<ConnectionLimits>,
        receive_drops: ReceiveDrops,
    ) -> Metrics {
        Metrics {
            shards: Vec::new(),
            table,
            connections,
            receive_drops,
            tls: None,
            proxy: None,
            records: None,
        }
    }

    /// Reports proxy mode's calls and legs too.
    pub fn with_proxy(&mut self, stats: Arc<ProxyStats>) {
        self.proxy = Some(stats);
    }

    /// Reports the call records and their webhook too.
    pub fn with_records(&mut self, stats: RecordsStats) {
        self.records = Some(stats);
    }

    /// Reports the TLS listeners and their certificate too.
    pub fn with_tls(&mut self, handle: TlsHandle, stats: Arc<TlsStats>) {
        self.tls = Some((handle, stats));
    }

    /// A new shard for one writer. Call before sharing `Metrics`.
    pub fn shard(&mut self) -> Arc<Shard> {
        let shard = Arc::new(Shard::default());
        self.shards.push(Arc::clone(&shard));
        shard
    }

    fn sum(&self, counter: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| counter(s).load(Ordering::Relaxed))
            .sum()
    }
}

/// Encodes one metric family's sample with these labels.
fn sample(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: &[(Vec<(&'static str, String)>, f64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in samples {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let metric = family.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(*value as u64).encode(metric)?,
            _ => ConstGauge::new(*value).encode(metric)?,
        }
    }
    Ok(())
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut requests = Vec::new();
        for (m, method) in MethodKind::ALL.iter().enumerate() {
            for slot in 0..CODE_SLOTS {
                let n = self.sum(|s| &s.requests[m][slot]);
                if n == 0 {
                    continue;
                }
                let code = match slot {
                    OTHER_CODE => "other".to_owned(),
                    NO_CODE => "none".to_owned(),
                    i => CODES[i].to_string(),
                };
                requests.push((
                    vec![("method", method.as_str().to_owned()), ("code", code)],
                    n as f64,
                ));
            }
        }
        sample(
            &mut encoder,
            "switchboard_requests",
            "SIP requests handled, by method and response code (none: absorbed)",
            MetricType::Counter,
            &requests,
        )?;

        let mut decisions = Vec::new();
        for (r, rule) in RULES.iter().enumerate() {
            for (c, code) in DECISION_CODES.iter().enumerate() {
                decisions.push((
                    vec![
                        ("rule", rule.as_str().to_owned()),
                        ("code", code.to_string()),
                    ],
                    self.sum(|s| &s.decisions[r][c]) as f64,
                ));
            }
        }
        sample(
            &mut encoder,
            "switchboard_decisions",
            "Routing decisions, by the rule that decided and the response code",
            MetricType::Counter,
            &decisions,
        )?;

        let dropped: Vec<_> = Dropped::ALL
            .iter()
            .enumerate()
            .map(|(i, reason)| {
                (
                    vec![("reason", reason.as_str().to_owned())],
                    self.sum(|s| &s.dropped[i]) as f64,
                )
            })
            .collect();
        sample(
            &mut encoder,
            "switchboard_dropped",
            "Messages dropped without an answer, by reason",
            MetricType::Counter,
            &dropped,
        )?;

        if let Some(total) = self.receive_drops.total() {
            sample(
                &mut encoder,
                "switchboard_udp_receive_drops",
                "SIP datagrams the kernel dropped because the UDP receive buffers were full",
                MetricType::Counter,
                &[(Vec::new(), total as f64)],
            )?;
        }

        self.encode_latency(&mut encoder)?;
        self.encode_reloads(&mut encoder)?;

        sample(
            &mut encoder,
            "switchboard_tcp_connections",
            "TCP connections open, TLS ones included (they share the caps)",
            MetricType::Gauge,
            &[(Vec::new(), self.connections.open() as f64)],
        )?;
        self.encode_tls(&mut encoder)?;
        self.encode_proxy(&mut encoder)?;
        self.encode_records(&mut encoder)?;
        let mut info = encoder.encode_descriptor(
            "switchboard_build",
            "Build information",
            None,
            MetricType::Info,
        )?;
        info.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        Ok(())
    }
}

impl Metrics {
    fn encode_latency(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Per-bucket counts: the encoder makes them cumulative.
        let mut count = 0;
        let mut buckets = Vec::with_capacity(LATENCY_BOUNDS.len() + 1);
        for (i, bound) in LATENCY_BOUNDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .enumerate()
        {
            let n = self.sum(|s| &s.latency[i]);
            count += n;
            buckets.push((bound, n));
        }
        let sum = self.sum(|s| &s.latency_sum_ns) as f64 / 1e9;
        let mut metric = encoder.encode_descriptor(
            "switchboard_response_seconds",
            "Time from receiving a request to sending its answer",
            None,
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn encode_proxy(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = &self.proxy else {
            return Ok(());
        };
        let load = ProxyStats::load;
        sample(
            encoder,
            "switchboard_proxy_calls",
            "Calls relayed in proxy mode, by the class of their final answer (none: no final sent)",
            MetricType::Counter,
            &["2xx", "3xx", "4xx", "5xx", "6xx", "none"]
                .iter()
                .zip(&stats.finals)
                .map(|(class, n)| (vec![("final", (*class).to_owned())], load(n) as f64))
                .collect::<Vec<_>>(),
        )?;
        sample(
            encoder,
            "switchboard_proxy_calls_in_flight",
            "Calls relayed and not yet ended (the proxy.max_calls cap counts them)",
            MetricType::Gauge,
            &[(Vec::new(), stats.in_flight.load(Ordering::Acquire) as f64)],
        )?;
        sample(
            encoder,
            "switchboard_proxy_calls_limit",
            "proxy.max_calls: past it, new INVITEs get 503",
            MetricType::Gauge,
            &[(Vec::new(), load(&stats.max_calls) as f64)],
        )?;
        sample(
            encoder,
            "switchboard_proxy_legs",
            "Legs of relayed calls, by how they ended",
            MetricType::Counter,
            &LegResult::ALL
                .iter()
                .zip(&stats.legs)
                .map(|(result, n)| {
                    (
                        vec![("outcome", result.as_str().to_owned())],
                        load(n) as f64,
                    )
                })
                .collect::<Vec<_>>(),
        )?;
        sample(
            encoder,
            "switchboard_proxy_failovers",
            "Legs started after a call's first: the call moved to its next target",
            MetricType::Counter,
            &[(Vec::new(), load(&stats.failovers) as f64)],
        )?;
        sample(
            encoder,
            "switchboard_proxy_dropped",
            "Messages the proxy could not place, by kind",
            MetricType::Counter,
            &[
                (
                    vec![("kind", "response".to_owned())],
                    load(&stats.dropped_responses) as f64,
                ),
                (
                    vec![("kind", "ack".to_owned())],
                    load(&stats.dropped_acks) as f64,
                ),
            ],
        )?;
        sample(
            encoder,
            "switchboard_proxy_late_2xx",
            "2xx answers relayed after their call had ended (never swallowed)",
            MetricType::Counter,
            &[(Vec::new(), load(&stats.late_2xx) as f64)],
        )?;
        sample(
            encoder,
            "switchboard_proxy_server_failovers",
            "Legs sent on to their target's next server (RFC 3263): the one before refused or stayed silent",
            MetricType::Counter,
            &[(Vec::new(), load(&stats.server_failovers) as f64)],
        )?;
        sample(
            encoder,
            "switchboard_proxy_outbound_connections",
            "TCP and TLS connections to next hops open now (one per next hop, reused)",
            MetricType::Gauge,
            &[(Vec::new(), load(&stats.outbound_open) as f64)],
        )?;
        sample(
            encoder,
            "switchboard_proxy_outbound_connect_failures",
            "Connections to next hops that could not be opened: refused, timed out, or a failed TLS handshake",
            MetricType::Counter,
            &[(Vec::new(), load(&stats.outbound_failed) as f64)],
        )?;
        sample(
            encoder,
            "switchboard_proxy_in_dialog",
            "In-dialog messages through the Record-Route (proxy.record_route), by what became of them",
            MetricType::Counter,
            &[
                (
                    vec![("result", "relayed".to_owned())],
                    load(&stats.in_dialog) as f64,
                ),
                (
                    vec![("result", "failed".to_owned())],
                    load(&stats.in_dialog_failed) as f64,
                ),
                (
                    vec![("result", "response".to_owned())],
                    load(&stats.in_dialog_responses) as f64,
                ),
            ],
        )?;
        let mut count = 0;
        let mut buckets = Vec::with_capacity(RING_BOUNDS.len() + 1);
        for (bound, n) in RING_BOUNDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&stats.ring)
        {
            let n = load(n);
            count += n;
            buckets.push((bound, n));
        }
        let sum = load(&stats.ring_sum_ns) as f64 / 1e9;
        let mut metric = encoder.encode_descriptor(
            "switchboard_proxy_ring_seconds",
            "How long each leg rang: from its INVITE to its final answer or its CANCEL",
            None,
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn encode_tls(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some((handle, stats)) = &self.tls else {
            return Ok(());
        };
        let handshakes: Vec<_> = Handshake::ALL
            .iter()
            .map(|&h| {
                (
                    vec![("result", h.as_str().to_owned())],
                    stats.handshakes(h) as f64,
                )
            })
            .collect();
        sample(
            encoder,
            "switchboard_tls_handshakes",
            "TLS handshakes, by result (failures by reason)",
            MetricType::Counter,
            &handshakes,
        )?;
        sample(
            encoder,
            "switchboard_tls_connections",
            "TLS connections open, past their handshake",
            MetricType::Gauge,
            &[(Vec::new(), stats.open() as f64)],
        )?;
        let serving = handle.serving();
        sample(
            encoder,
            "switchboard_tls_certificate_expiry_seconds",
            "Time left before the serving TLS certificate expires (negative: expired)",
            MetricType::Gauge,
            &[(
                vec![("serial", serving.certificate.serial.clone())],
                serving.certificate.seconds_left(SystemTime::now()),
            )],
        )?;
        sample(
            encoder,
            "switchboard_tls_certificate_reloads",
            "TLS certificate reloads, by result (failed: the last good certificate kept serving)",
            MetricType::Counter,
            &[
                (vec![("result", "ok".to_owned())], handle.reloads() as f64),
                (
                    vec![("result", "failed".to_owned())],
                    handle.failures() as f64,
                ),
            ],
        )
    }

    fn encode_records(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = &self.records else {
            return Ok(());
        };
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64;
        sample(
            encoder,
            "switchboard_records_written",
            "Call records written to the records files",
            MetricType::Counter,
            &[(Vec::new(), load(&stats.written))],
        )?;
        let dropped: Vec<_> = DropReason::ALL
            .iter()
            .map(|&r| {
                (
                    vec![("reason", r.as_str().to_owned())],
                    stats.dropped(r) as f64,
                )
            })
            .collect();
        sample(
            encoder,
            "switchboard_records_dropped",
            "Call records dropped, by reason (queue_full, write_failed, spool_full)",
            MetricType::Counter,
            &dropped,
        )?;
        sample(
            encoder,
            "switchboard_records_retransmissions",
            "Retransmitted INVITEs that added no call record",
            MetricType::Counter,
            &[(Vec::new(), load(&stats.retransmissions))],
        )?;
        if !stats.webhook_on.load(Ordering::Relaxed) {
            return Ok(());
        }
        sample(
            encoder,
            "switchboard_webhook_delivered",
            "Call records delivered to the webhook (a 2xx answer)",
            MetricType::Counter,
            &[(Vec::new(), load(&stats.delivered))],
        )?;
        sample(
            encoder,
            "switchboard_webhook_failed",
            "Webhook POSTs that failed (each retry counts)",
            MetricType::Counter,
            &[(Vec::new(), load(&stats.delivery_failures))],
        )?;
        sample(
            encoder,
            "switchboard_webhook_lag_seconds",
            "Age of the oldest call record not yet delivered (0: caught up)",
            MetricType::Gauge,
            &[(Vec::new(), load(&stats.lag_ms) / 1e3)],
        )?;
        sample(
            encoder,
            "switchboard_webhook_stopped",
            "1 when the webhook answered 410 Gone and delivery stopped",
            MetricType::Gauge,
            &[(
                Vec::new(),
                f64::from(u8::from(stats.delivery_stopped.load(Ordering::Relaxed))),
            )],
        )?;
        sample(
            encoder,
            "switchboard_records_spool_bytes",
            "Bytes of call records not yet delivered to the webhook",
            MetricType::Gauge,
            &[(Vec::new(), load(&stats.spool_bytes))],
        )?;
        sample(
            encoder,
            "switchboard_records_spool_limit_bytes",
            "The spool limit: past it new call records are dropped",
            MetricType::Gauge,
            &[(Vec::new(), load(&stats.spool_limit_bytes))],
        )
    }

    fn encode_reloads(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = self.table.status();
        sample(
            encoder,
            "switchboard_reloads",
            "Routing data reloads, by result (failed: the last good data kept serving)",
            MetricType::Counter,
            &[
                (vec![("result", "ok".to_owned())], status.reloads as f64),
                (
                    vec![("result", "failed".to_owned())],
                    status.failures as f64,
                ),
            ],
        )?;
        let age = status
            .serving_since
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        sample(
            encoder,
            "switchboard_routing_data_age_seconds",
            "Time since the serving routing data was loaded",
            MetricType::Gauge,
            &[(Vec::new(), age.as_secs_f64())],
        )?;
        let Some(stats) = status.serving else {
            return Ok(());
        };
        let counts = stats.counts;
        sample(
            encoder,
            "switchboard_routing_entries",
            "Entries in the serving routing table",
            MetricType::Gauge,
            &[
                (
                    vec![("kind", "accounts".to_owned())],
                    counts.accounts as f64,
                ),
                (vec![("kind", "users".to_owned())], counts.users as f64),
                (vec![("kind", "numbers".to_owned())], counts.numbers as f64),
                (
                    vec![("kind", "contacts".to_owned())],
                    counts.contacts as f64,
                ),
            ],
        )?;
        let mut info = encoder.encode_descriptor(
            "switchboard_routing_data",
            "The serving routing data's content hash (equal hashes, equal data)",
            None,
            MetricType::Info,
        )?;
        info.encode_info(&[("hash", format!("{:016x}", stats.content_hash).as_str())])
    }
}
