//! One call record (docs/records.schema.json, docs/operations.md "Call
//! records"): what the request path hands over ([`CallEvent`], owned
//! copies, no formatting) and what is written ([`CallRecord`], one JSON
//! line). Formatting the time and naming the record happen on the writer
//! thread, off the request path.

use std::net::SocketAddr;
use std::time::SystemTime;

use serde::Serialize;

/// The schema's version: a record's `schema_version`. Raised when a field
/// changes meaning or goes away; new optional fields keep it.
pub const SCHEMA_VERSION: u32 = 1;

/// A routed call as the request path copied it.
#[derive(Debug, Clone)]
pub struct CallEvent {
    pub time: SystemTime,
    /// Identifies the INVITE transaction (Call-ID, top Via branch, CSeq):
    /// a retransmission carries the same key and adds no record.
    pub transaction: u64,
    pub call_id: String,
    pub transport: &'static str,
    pub source: SocketAddr,
    /// E.164 as decided, else the Request-URI's user part as received.
    pub dialed: Option<String>,
    /// E.164 when it reads as one, else as received.
    pub caller: Option<String>,
    pub account: Option<String>,
    pub rule: &'static str,
    pub user: Option<String>,
    pub status: u16,
    pub targets: Vec<RecordTarget>,
    pub reason: String,
    pub data_version: Option<String>,
    /// A relayed call's outcome (proxy mode), filled in when it ends.
    pub proxy: Option<ProxyOutcome>,
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
    /// The record of `event`, named `id`.
    pub fn new(event: CallEvent, id: String, instance: &str) -> CallRecord {
        CallRecord {
            schema_version: SCHEMA_VERSION,
            id,
            time: rfc3339_micros(event.time),
            instance: instance.to_owned(),
            call_id: event.call_id,
            transport: event.transport,
            source: event.source.to_string(),
            dialed: event.dialed,
            caller: event.caller,
            account: event.account,
            rule: event.rule,
            user: event.user,
            status: event.status,
            targets: event.targets,
            reason: event.reason,
            data_version: event.data_version,
            proxy: event.proxy,
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
