//! Hot reload (docs/routing.md): the routing table behind an `ArcSwap`, replaced
//! whole when the data changes, by one reload thread.
//!
//! Three things wake the reload thread: file events in the watched
//! directory (the parent of a file, so replacing the file by rename and a
//! ConfigMap's `..data` swap are both seen; [`crate::watch`]), SIGHUP,
//! and a slow poll as a safety net. Events are debounced and coalesced; a reload builds the new
//! table off the request path (re-reading only changed files) and swaps it
//! in atomically. A reload that fails keeps the last good table. Because one
//! thread does all reloads, two never overlap.
//!
//! After a good reload the same thread compares the old table with the new
//! one (already serving) and keeps the outcome in the audit trail
//! ([`super::audit`]), as it does a failed reload's report.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, Guard};
use tracing::{debug, error, info, warn};

use super::audit::{AuditTrail, ReloadRecord, Trigger};
use super::diff::{TableDiff, try_diff_tables};
use super::loader::{LoadStats, Loaded, Loader};
use super::memory::release_free_memory;
use super::parallel::{WorkerPanicked, panic_message};
use super::report::{Rejected, Report};
use crate::routing::RoutingTable;
use crate::watch::{DirWatch, ReloadThread, next_wake, on_sighup, watch_dirs};

/// How changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadOptions {
    /// Quiet time after a file event before reloading.
    pub debounce: Duration,
    /// Safety-net poll interval; `None` turns polling off.
    pub poll: Option<Duration>,
    /// Reload on SIGHUP.
    pub sighup: bool,
    /// Watch the file system for changes.
    pub watch: bool,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            debounce: Duration::from_millis(200),
            poll: Some(Duration::from_secs(30)),
            sighup: true,
            watch: true,
        }
    }
}

/// What the reload thread has done so far.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// Wake-ups handled (file events, signals, polls, requests).
    pub checks: u64,
    /// Successful reloads: tables swapped in after the first.
    pub reloads: u64,
    /// Reloads refused because the new data had errors.
    pub failures: u64,
    /// The last failure's report, cleared by the next success.
    pub last_error: Option<Report>,
    /// The serving table's load.
    pub serving: Option<LoadStats>,
    /// When the serving table was loaded.
    pub serving_since: Option<SystemTime>,
}

/// Why the reload thread woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    FileEvent,
    Poll,
    /// SIGHUP: re-read every file.
    Sighup,
    /// [`HotTable::reload_now`]: re-read every file.
    Request,
    Stop,
}

impl Wake {
    /// What the audit trail calls it; the earlier of two wins when wakes
    /// are coalesced (a signal over a file event over the poll).
    fn trigger(self) -> Trigger {
        match self {
            Wake::FileEvent => Trigger::Watch,
            Wake::Poll | Wake::Stop => Trigger::Poll,
            Wake::Sighup => Trigger::Sighup,
            Wake::Request => Trigger::Request,
        }
    }

    fn rereads_everything(self) -> bool {
        matches!(self, Wake::Sighup | Wake::Request)
    }
}

/// The strongest of two coalesced wakes.
fn stronger(a: Trigger, b: Trigger) -> Trigger {
    let rank = |t: Trigger| match t {
        Trigger::Sighup => 3,
        Trigger::Request => 2,
        Trigger::Watch => 1,
        Trigger::Poll => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// How the reload thread works out a reload's changes for the audit trail.
type Compare = fn(&RoutingTable, &RoutingTable) -> Result<TableDiff, WorkerPanicked>;

struct Shared {
    table: ArcSwap<RoutingTable>,
    status: Mutex<ReloadStatus>,
    status_changed: Condvar,
    audit: AuditTrail,
    /// [`try_diff_tables`]; a parameter only so that tests can make it
    /// panic, which no data can.
    compare: Compare,
}

impl Shared {
    fn status(&self) -> MutexGuard<'_, ReloadStatus> {
        // A panic elsewhere cannot leave the status half-written in a way
        // that matters: it is counters and the last report.
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Read access to the serving routing table, cheap to clone into every
/// worker.
#[derive(Clone)]
pub struct TableReader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader").finish_non_exhaustive()
    }
}

impl TableReader {
    /// The current table. Holding the guard keeps that table alive; a
    /// request sees one table from start to end.
    pub fn load(&self) -> Guard<Arc<RoutingTable>> {
        self.shared.table.load()
    }

    /// The current table as an `Arc`, for holding longer than a request.
    pub fn snapshot(&self) -> Arc<RoutingTable> {
        self.shared.table.load_full()
    }

    pub fn status(&self) -> ReloadStatus {
        self.shared.status().clone()
    }

    /// The audit trail: the last reloads that changed the table or failed.
    pub fn audit(&self) -> &AuditTrail {
        &self.shared.audit
    }
}

/// A routing table kept in step with its files.
pub struct HotTable {
    reader: TableReader,
    thread: ReloadThread<Wake>,
}

impl HotTable {
    /// Loads the data once (failing with its report if it has errors), then
    /// starts watching it. Returns the first load's warnings too.
    pub fn start(loader: Loader, options: ReloadOptions) -> Result<(HotTable, Report), Rejected> {
        HotTable::start_comparing(loader, options, try_diff_tables)
    }

    /// [`HotTable::start`], working out each reload's changes with `compare`.
    fn start_comparing(
        mut loader: Loader,
        options: ReloadOptions,
        compare: Compare,
    ) -> Result<(HotTable, Report), Rejected> {
        let Loaded {
            table,
            report,
            stats,
        } = loader.load()?;
        let shared = Arc::new(Shared {
            table: ArcSwap::from_pointee(table),
            status: Mutex::new(ReloadStatus {
                serving: Some(stats),
                serving_since: Some(SystemTime::now()),
                ..ReloadStatus::default()
            }),
            status_changed: Condvar::new(),
            audit: AuditTrail::new(),
            compare,
        });
        let (wake, wakes) = mpsc::channel();
        let watcher = if options.watch {
            watch(loader.path(), options.debounce, wake.clone())
        } else {
            None
        };
        let signals = if options.sighup {
            let wake = wake.clone();
            on_sighup("the routing data", move || {
                let _ = wake.send(Wake::Sighup);
            })
        } else {
            None
        };
        let worker = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("routing-reload".into())
                .spawn(move || reload_loop(loader, &shared, &wakes, options.poll))
                .map_err(|e| spawn_failure(&e))?
        };
        let hot = HotTable {
            reader: TableReader { shared },
            thread: ReloadThread::new(wake, Wake::Stop, worker, watcher, signals),
        };
        Ok((hot, report))
    }

    pub fn reader(&self) -> TableReader {
        self.reader.clone()
    }

    /// The current table.
    pub fn load(&self) -> Guard<Arc<RoutingTable>> {
        self.reader.load()
    }

    /// Asks for a reload that re-reads every file, as SIGHUP does. Returns
    /// at once; [`HotTable::wait_for`] waits for the outcome.
    pub fn reload_now(&self) {
        self.thread.wake(Wake::Request);
    }

    pub fn status(&self) -> ReloadStatus {
        self.reader.status()
    }

    /// Waits until `done` holds for the reload status, or `timeout` passes;
    /// returns the status either way.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&ReloadStatus) -> bool,
    ) -> ReloadStatus {
        let deadline = Instant::now() + timeout;
        let shared = &self.reader.shared;
        let mut status = shared.status();
        while !done(&status) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            status = shared
                .status_changed
                .wait_timeout(status, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        status.clone()
    }
}

fn spawn_failure(e: &std::io::Error) -> Rejected {
    let file: Arc<Path> = Arc::from(Path::new("-"));
    let diagnostic =
        super::report::Diagnostic::error(&file, 0, format!("cannot start the reload thread: {e}"));
    Rejected {
        report: Report::new(vec![diagnostic]),
    }
}

/// Watches the directory that holds the data: the data's own directory, or
/// a file's parent.
fn watch(path: &Path, debounce: Duration, wake: Sender<Wake>) -> Option<DirWatch> {
    let dir: PathBuf = if path.is_dir() {
        path.to_owned()
    } else {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        }
    };
    watch_dirs(&[dir], debounce, "the routing data", move || {
        let _ = wake.send(Wake::FileEvent);
    })
}

fn reload_loop(
    mut loader: Loader,
    shared: &Shared,
    wakes: &Receiver<Wake>,
    poll: Option<Duration>,
) {
    loop {
        let first = next_wake(wakes, poll, Wake::Poll, Wake::Stop);
        // Everything that arrived meanwhile is served by the same reload.
        let mut requested = first.rereads_everything();
        let mut trigger = first.trigger();
        let mut stop = first == Wake::Stop;
        while let Ok(wake) = wakes.try_recv() {
            requested |= wake.rereads_everything();
            trigger = stronger(trigger, wake.trigger());
            stop |= wake == Wake::Stop;
        }
        if stop {
            return;
        }
        reload_once(&mut loader, shared, requested, trigger);
    }
}

fn reload_once(loader: &mut Loader, shared: &Shared, requested: bool, trigger: Trigger) {
    if requested {
        loader.forget_fingerprints();
    } else if !loader.changed() {
        shared.status().checks += 1;
        shared.status_changed.notify_all();
        return;
    }
    let serving_hash = shared.status().serving.map(|s| s.content_hash);
    let started = Instant::now();
    let result = loader.load();
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    match result {
        Ok(loaded)
            if loaded.stats.parsed == 0
                && loaded.stats.cached == 0
                && Some(loaded.stats.content_hash) == serving_hash =>
        {
            if requested {
                info!("routing data unchanged");
            } else {
                debug!("routing data unchanged");
            }
            shared.status().checks += 1;
        }
        Ok(Loaded {
            table,
            report,
            stats,
        }) => {
            // The new table serves at once; what changed is worked out
            // after, here, before the status says the reload is done.
            let new = Arc::new(table);
            let old = shared.table.swap(Arc::clone(&new));
            let diff_started = Instant::now();
            let diff = audit_diff(shared.compare, &old, &new);
            let diff_ms = diff_started.elapsed().as_secs_f64() * 1e3;
            drop(old);
            let record = match &diff {
                Some(diff) => ReloadRecord::succeeded(trigger, &stats, diff, diff_ms),
                None => ReloadRecord::succeeded_without_diff(trigger, &stats, diff_ms),
            };
            drop(diff);
            info!(
                trigger = trigger.as_str(),
                changes = record.summary.as_deref().unwrap_or_default(),
                accounts = stats.counts.accounts,
                users = stats.counts.users,
                numbers = stats.counts.numbers,
                contacts = stats.counts.contacts,
                files = stats.files,
                parsed = stats.parsed,
                reused = stats.reused,
                cached = stats.cached,
                ms = stats.elapsed.as_secs_f64() * 1e3,
                diff_ms,
                warnings = report.warnings().count(),
                "routing data reloaded"
            );
            for warning in report.warnings() {
                warn!("{warning}");
            }
            shared.audit.push(record);
            let mut status = shared.status();
            status.checks += 1;
            status.reloads += 1;
            status.last_error = None;
            status.serving = Some(stats);
            status.serving_since = Some(SystemTime::now());
            drop(status);
            // The new table serves and the old one is gone: what it held,
            // and the holes the reload left, go back to the kernel (see
            // `memory`). A bulk load has already done this in `load`.
            if stats.parsed + stats.cached == 1 {
                let trim_started = Instant::now();
                release_free_memory();
                debug!(
                    trim_ms = trim_started.elapsed().as_secs_f64() * 1e3,
                    "freed memory returned"
                );
            }
        }
        Err(rejected) => {
            let mut status = shared.status();
            status.checks += 1;
            if status.last_error.as_ref() == Some(&rejected.report) {
                // The same broken data seen again (another event in its
                // directory, or within the modification-time window): said
                // and recorded once already.
                debug!("routing data still has the same errors");
            } else {
                status.failures += 1;
                error!(
                    trigger = trigger.as_str(),
                    errors = rejected.report.errors().count(),
                    "routing data reload failed; the last good data keeps serving:\n{}",
                    rejected.report
                );
                shared
                    .audit
                    .push(ReloadRecord::failed(trigger, load_ms, &rejected.report));
                status.last_error = Some(rejected.report);
            }
        }
    }
    shared.status_changed.notify_all();
}

/// What changed from `old` to `new` for the audit trail, `None` when
/// working it out panicked (a bug: no data makes it panic).
///
/// The new table already serves and is not in question, and the panic
/// must not end this thread: uncaught, it would stop hot reload for the
/// life of the process while the server kept answering from a table that
/// no longer changes. So the panic is caught, logged as an error, and the
/// reload is recorded as [`super::audit::DIFF_UNAVAILABLE`]: the audit
/// record is where an operator looks for a reload's changes, and where
/// their absence shows. The tables are immutable, so nothing the
/// comparison was doing can be left half-done by unwinding out of it.
fn audit_diff(compare: Compare, old: &RoutingTable, new: &RoutingTable) -> Option<TableDiff> {
    let panic = match catch_unwind(AssertUnwindSafe(|| compare(old, new))) {
        Ok(Ok(diff)) => return Some(diff),
        Ok(Err(panicked)) => panicked.to_string(),
        Err(payload) => panic_message(payload.as_ref()),
    };
    error!(
        panic,
        "comparing the reloaded routing table with the old one panicked; the new table serves, its audit record says the diff is unavailable"
    );
    None
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::routing::Region;
    use crate::routing_data::audit::{DIFF_UNAVAILABLE, Outcome};

    const WAIT: Duration = Duration::from_secs(15);

    /// Reloads only when asked (`reload_now`), so each step is one reload.
    fn on_request() -> ReloadOptions {
        ReloadOptions {
            debounce: Duration::from_millis(50),
            poll: None,
            sighup: false,
            watch: false,
        }
    }

    fn account(id: &str, number: &str) -> String {
        format!(
            "accounts:\n  - id: {id}\n    numbers:\n      - number: \"{number}\"\n        forward_to: \"+14155550001\"\n"
        )
    }

    /// Whether the serving table routes `dialed` somewhere (else: 404).
    fn routes(hot: &HotTable, dialed: &str) -> bool {
        hot.load().decide(dialed.as_bytes(), None).target.is_some()
    }

    #[test]
    fn a_reload_whose_compile_panics_keeps_the_last_good_table() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("acme.yaml"),
            account("acme", "+18005550100"),
        )
        .unwrap();
        let loader = Loader::new(dir.path(), Region::us()).panic_when_compiling("boom.yaml");
        let (hot, _) = HotTable::start(loader, on_request()).expect("good data loads");

        fs::write(
            dir.path().join("boom.yaml"),
            account("boom", "+18005550200"),
        )
        .unwrap();
        hot.reload_now();
        let status = hot.wait_for(WAIT, |s| s.failures >= 1);
        assert_eq!((status.failures, status.reloads), (1, 0), "{status:?}");
        let report = status.last_error.expect("the failure is kept");
        let error = report.errors().next().expect("an error");
        assert!(error.file.ends_with("boom.yaml"), "{error}");
        assert!(error.message.contains("panicked"), "{error}");
        assert!(routes(&hot, "+18005550100"), "the last good table serves");
        assert!(!routes(&hot, "+18005550200"));
        let records = hot.reader().audit().newest_first();
        assert_eq!(records[0].outcome, Outcome::Failed);

        // The thread lives on: the same account under another name loads.
        fs::rename(dir.path().join("boom.yaml"), dir.path().join("beta.yaml")).unwrap();
        hot.reload_now();
        let status = hot.wait_for(WAIT, |s| s.reloads >= 1);
        assert!(status.last_error.is_none(), "{status:?}");
        assert!(routes(&hot, "+18005550100") && routes(&hot, "+18005550200"));
    }

    /// The real comparison, except that it panics when the new table has
    /// an account `boom`.
    fn panics_on_boom(old: &RoutingTable, new: &RoutingTable) -> Result<TableDiff, WorkerPanicked> {
        assert!(
            !new.accounts().iter().any(|a| &*a.id == "boom"),
            "injected panic in the audit diff"
        );
        try_diff_tables(old, new)
    }

    #[test]
    fn a_panicking_audit_diff_is_recorded_and_the_reload_thread_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("acme.yaml"),
            account("acme", "+18005550100"),
        )
        .unwrap();
        let loader = Loader::new(dir.path(), Region::us());
        let (hot, _) = HotTable::start_comparing(loader, on_request(), panics_on_boom)
            .expect("good data loads");

        fs::write(
            dir.path().join("boom.yaml"),
            account("boom", "+18005550200"),
        )
        .unwrap();
        hot.reload_now();
        let status = hot.wait_for(WAIT, |s| s.reloads >= 1);
        assert_eq!((status.reloads, status.failures), (1, 0), "{status:?}");
        assert!(routes(&hot, "+18005550200"), "the new table serves");
        let record = &hot.reader().audit().newest_first()[0];
        assert_eq!(record.outcome, Outcome::Ok);
        assert_eq!(record.summary.as_deref(), Some(DIFF_UNAVAILABLE));
        assert!(record.counts.is_none() && record.changes.is_none());

        // A later good reload still applies, with its diff.
        fs::remove_file(dir.path().join("boom.yaml")).unwrap();
        fs::write(
            dir.path().join("beta.yaml"),
            account("beta", "+18005550300"),
        )
        .unwrap();
        hot.reload_now();
        let status = hot.wait_for(WAIT, |s| s.reloads >= 2);
        assert_eq!(status.reloads, 2, "{status:?}");
        assert!(routes(&hot, "+18005550300"));
        assert!(!routes(&hot, "+18005550200"));
        let record = &hot.reader().audit().newest_first()[0];
        assert_eq!(
            record.summary.as_deref(),
            Some("1 account added, 1 account removed")
        );
    }
}
