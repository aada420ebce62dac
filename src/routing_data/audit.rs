//! The reload audit trail (docs/operations.md): a record of each of the last
//! [`AUDIT_CAPACITY`] reloads that changed the table or failed, with what
//! changed (the first examples of each kind, from [`super::diff`]) or the
//! report that refused the data. Served by the admin endpoint's `/reloads`.
//!
//! Reloads are rare (one per CRM export at most), so a `Mutex` around a
//! `VecDeque` is all it takes; the request path never touches it.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;

use super::diff::{ChangeCounts, TableDiff};

/// Reloads remembered; older ones are forgotten.
pub const AUDIT_CAPACITY: usize = 50;

/// Examples of each kind of change kept in a record.
pub const EXAMPLES_PER_KIND: usize = 5;

/// The summary of a good reload whose changes could not be worked out.
pub const DIFF_UNAVAILABLE: &str = "diff unavailable";

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A file event in the watched directory.
    Watch,
    /// SIGHUP.
    Sighup,
    /// The safety-net poll found a change.
    Poll,
    /// A reload asked for by the program (`HotTable::reload_now`).
    Request,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Watch => "watch",
            Trigger::Sighup => "sighup",
            Trigger::Poll => "poll",
            Trigger::Request => "request",
        }
    }
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The new table serves.
    Ok,
    /// The data had errors; the last good table kept serving.
    Failed,
}

/// One reload, as `/reloads` shows it. Fields that do not apply are null:
/// a failed reload has no file counts, changes or diff; a good one no
/// errors.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadRecord {
    /// When the reload finished, RFC 3339 UTC with milliseconds.
    pub time: String,
    pub trigger: Trigger,
    pub outcome: Outcome,
    /// Routing files in the data.
    pub files: Option<usize>,
    /// Files read and compiled this time.
    pub parsed: Option<usize>,
    /// Files whose compiled accounts were reused.
    pub reused: Option<usize>,
    /// Reading, checking and building the new table, in milliseconds.
    pub duration_ms: f64,
    /// Comparing the new table with the old one, in milliseconds.
    pub diff_ms: Option<f64>,
    /// Changes by kind (`summary` is the same in words).
    pub counts: Option<ChangeCounts>,
    /// One line: "2 numbers reassigned, 1 phone changed" or "no routing
    /// change"; [`DIFF_UNAVAILABLE`] when a good reload's changes could not
    /// be worked out (then `counts` and `changes` are null).
    pub summary: Option<String>,
    /// The first changes of each kind.
    pub changes: Option<TableDiff>,
    /// The report that refused the data, as `switchboard check` prints it.
    pub errors: Option<String>,
}

impl ReloadRecord {
    /// A reload that swapped in a new table.
    pub fn succeeded(
        trigger: Trigger,
        stats: &super::LoadStats,
        diff: &TableDiff,
        diff_ms: f64,
    ) -> ReloadRecord {
        let counts = diff.counts();
        ReloadRecord {
            counts: Some(counts),
            summary: Some(counts.to_string()),
            changes: Some(kept_changes(diff)),
            ..ReloadRecord::succeeded_without_diff(trigger, stats, diff_ms)
        }
    }

    /// A reload that swapped in a new table, whose comparison with the old
    /// one failed (it panicked: a bug, logged as an error when it
    /// happened). The reload stands and is recorded all the same, with
    /// [`DIFF_UNAVAILABLE`] as its summary and no counts or changes, so
    /// that `/reloads` still shows when the table changed; `diff_ms` is
    /// the time until the failure.
    pub fn succeeded_without_diff(
        trigger: Trigger,
        stats: &super::LoadStats,
        diff_ms: f64,
    ) -> ReloadRecord {
        ReloadRecord {
            time: rfc3339(SystemTime::now()),
            trigger,
            outcome: Outcome::Ok,
            files: Some(stats.files),
            parsed: Some(stats.parsed),
            reused: Some(stats.reused),
            duration_ms: round_ms(stats.elapsed.as_secs_f64() * 1e3),
            diff_ms: Some(round_ms(diff_ms)),
            counts: None,
            summary: Some(DIFF_UNAVAILABLE.to_owned()),
            changes: None,
            errors: None,
        }
    }

    /// A reload refused with this report.
    pub fn failed(trigger: Trigger, duration_ms: f64, report: &super::Report) -> ReloadRecord {
        ReloadRecord {
            time: rfc3339(SystemTime::now()),
            trigger,
            outcome: Outcome::Failed,
            files: None,
            parsed: None,
            reused: None,
            duration_ms: round_ms(duration_ms),
            diff_ms: None,
            counts: None,
            summary: None,
            changes: None,
            errors: Some(report.to_string()),
        }
    }
}

/// Microsecond precision is plenty for a human reading JSON.
fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The last [`AUDIT_CAPACITY`] reloads.
#[derive(Debug, Default)]
pub struct AuditTrail {
    records: Mutex<VecDeque<ReloadRecord>>,
}

impl AuditTrail {
    pub fn new() -> AuditTrail {
        AuditTrail::default()
    }

    /// Adds a record, forgetting the oldest past the capacity.
    pub fn push(&self, record: ReloadRecord) {
        // A panic while holding the lock cannot leave the deque broken.
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() == AUDIT_CAPACITY {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// Every record, newest first.
    pub fn newest_first(&self) -> Vec<ReloadRecord> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.iter().rev().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `time` as RFC 3339 UTC with milliseconds: `2026-11-30T02:44:11.289Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_millis()
    )
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

/// The most changed accounts a record lists; the counts cover them all.
/// With [`EXAMPLES_PER_KIND`] this bounds a record whatever the reload
/// changed: a bulk export touching every account keeps a sample, not a
/// copy of the diff, and 50 records stay small.
const ACCOUNTS_PER_RECORD: usize = 20;

/// The part of `diff` a record keeps.
fn kept_changes(diff: &TableDiff) -> TableDiff {
    let mut kept = diff.truncated(EXAMPLES_PER_KIND);
    kept.accounts.truncate(ACCOUNTS_PER_RECORD);
    kept.accounts_added.truncate(ACCOUNTS_PER_RECORD);
    kept.accounts_removed.truncate(ACCOUNTS_PER_RECORD);
    kept
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::routing_data::Report;

    fn failure(n: usize) -> ReloadRecord {
        ReloadRecord::failed(Trigger::Poll, n as f64, &Report::default())
    }

    #[test]
    fn the_trail_keeps_the_last_fifty_newest_first() {
        let trail = AuditTrail::new();
        assert!(trail.is_empty());
        for n in 1..=51 {
            trail.push(failure(n));
        }
        assert_eq!(trail.len(), AUDIT_CAPACITY);
        let records = trail.newest_first();
        assert_eq!(records.len(), 50);
        let order: Vec<f64> = records.iter().map(|r| r.duration_ms).collect();
        let expected: Vec<f64> = (2..=51).rev().map(|n| n as f64).collect();
        assert_eq!(order, expected, "the first push is forgotten");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century year) 12:34:56.789.
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(rfc3339(t), "2000-02-29T12:34:56.789Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(rfc3339(t), "2026-12-31T23:59:59.000Z");
    }

    #[test]
    fn a_failed_record_carries_the_report_and_no_diff() {
        let record = failure(3);
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["outcome"], "failed");
        assert_eq!(json["trigger"], "poll");
        assert!(json["changes"].is_null());
        assert_eq!(json["errors"], "");
    }
}
