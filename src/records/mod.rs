//! Call records (issue #24; docs/operations.md "Call records",
//! docs/records.schema.json): one JSON line per decided call, written off
//! the request path by one thread, rotated by rename, kept by count and
//! age, and delivered at least once to a webhook (Standard Webhooks v1)
//! with the files as the spool.
//!
//! The request path only copies a call into a [`CallEvent`] (fixed-size,
//! unformatted: the writer thread formats it) and
//! `try_send`s it into a bounded queue ([`RecordSender`]): it never waits
//! on a disk or a network; a full queue drops the record and counts it.
//! The boxes the events travel in go round: the writer hands the ones it
//! is done with back ([`SPARES`]), so that in steady state the request
//! path allocates nothing for records.
//! This module imports nothing of `server/` (docs/architecture.md): the
//! tap that feeds it lives there.

mod privacy;
mod recent;
mod record;
mod spool;
mod webhook;
mod writer;

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::warn;

pub use privacy::{Numbers, mask};
pub use recent::Recent;
pub use record::{
    CallEvent, CallRecord, EventNumber, EventPlace, EventReason, EventTarget, Formatted, ProxyLeg,
    ProxyOutcome, RecordTarget, SCHEMA_VERSION, Span, Text, file_stamp, parse_rfc3339_micros,
    rfc3339_micros,
};
pub use spool::{Checkpoint, Position, Spool};
pub use webhook::{Secret, sign};

use crate::routing::{Region, Spelling};
use crate::settings::RecordsSettings;

/// Boxes handed back from the writer to the request path at most. A box
/// made on a worker and freed on the writer cost the pair about 370
/// instructions a record in glibc's allocator (the worker's thread cache
/// never refilled, the writer's always full: both fell through to the
/// arena); taking a spare and giving it back cost a channel operation
/// each (bench/records.sh instructions). A round of the writer (10 ms)
/// at 100,000 calls/s frees about 1,000; past this they are freed.
pub const SPARES: usize = 4096;

/// How long shutdown waits for the webhook thread to finish a POST.
const DELIVERY_STOP_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("records.dir {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("records.hmac_key_file {path}: {problem}")]
    HmacKey { path: PathBuf, problem: String },
    #[error("records.webhook_secret_file {path}: {problem}")]
    WebhookSecret { path: PathBuf, problem: String },
    #[error("records.webhook {url:?}: {problem}")]
    WebhookUrl { url: String, problem: String },
    #[error("records.instance {0:?}: use letters, digits, '.', '_' and '-' only")]
    Instance(String),
    #[error("cannot start the records threads: {0}")]
    Spawn(std::io::Error),
}

/// Why a record was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The writer's queue was full.
    QueueFull,
    /// The disk refused the write (full, read-only, gone).
    WriteFailed,
    /// Undelivered records reached `spool_limit_bytes`.
    SpoolFull,
}

impl DropReason {
    pub const ALL: [DropReason; 3] = [
        DropReason::QueueFull,
        DropReason::WriteFailed,
        DropReason::SpoolFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::WriteFailed => "write_failed",
            DropReason::SpoolFull => "spool_full",
        }
    }
}

/// What the records threads count, read by the metrics at scrape time.
#[derive(Debug, Default)]
pub struct Stats {
    pub written: AtomicU64,
    dropped: [AtomicU64; 3],
    /// Retransmitted INVITEs that added no record.
    pub retransmissions: AtomicU64,
    pub delivered: AtomicU64,
    /// Webhook POSTs that failed (each retry counts).
    pub delivery_failures: AtomicU64,
    /// Age of the oldest undelivered record, in milliseconds.
    pub lag_ms: AtomicU64,
    /// Bytes of records not yet delivered.
    pub spool_bytes: AtomicU64,
    pub spool_limit_bytes: AtomicU64,
    /// The receiver answered 410 Gone: delivery stopped.
    pub delivery_stopped: AtomicBool,
    pub webhook_on: AtomicBool,
}

impl Stats {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    fn count_dropped(&self, reason: DropReason, n: u64) {
        self.dropped[reason as usize].fetch_add(n, Ordering::Relaxed);
    }
}

/// State the writer and the delivery thread share.
#[derive(Debug, Default)]
struct Shared {
    stats: Stats,
    /// The stamp of the file being written. Held while the writer renames
    /// it, so delivery never opens `INSTANCE.jsonl` mid-rotation.
    current: Mutex<Option<String>>,
    /// How far delivery got, when a webhook is set: retention keeps what
    /// is past it.
    delivered: Mutex<Option<Position>>,
}

impl Shared {
    fn current(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn delivered(&self) -> Option<Position> {
        self.delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

enum Message {
    Call(Box<CallEvent>),
    /// Flush and stop.
    Stop,
}

/// The request path's end of the queue: cheap to clone into every worker.
#[derive(Clone)]
pub struct RecordSender {
    queue: SyncSender<Message>,
    /// Boxes the writer is done with.
    spares: crossbeam_channel::Receiver<Box<CallEvent>>,
    keys: TransactionKeys,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RecordSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSender").finish_non_exhaustive()
    }
}

impl RecordSender {
    /// Queues a record without waiting; a full queue drops it, counted.
    pub fn send(&self, event: CallEvent) {
        let event = match self.spares.try_recv() {
            Ok(mut spare) => {
                *spare = event;
                spare
            }
            Err(_) => Box::new(event),
        };
        match self.queue.try_send(Message::Call(event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.stats.count_dropped(DropReason::QueueFull, 1);
            }
        }
    }

    /// How the events sent here key their transactions.
    pub fn transaction_keys(&self) -> &TransactionKeys {
        &self.keys
    }
}

/// The key of an INVITE transaction (RFC 3261 §17.2.3: Call-ID, top Via
/// branch and CSeq, which a retransmission repeats), by which the writer
/// records a call once. One seed for the process (the writer compares
/// keys from every worker), random: a peer cannot choose a Call-ID whose
/// key is another call's and have that call's record taken for a
/// retransmission. foldhash: fewer instructions than the xxh3
/// stream it replaced.
#[derive(Clone, Debug, Default)]
pub struct TransactionKeys(foldhash::quality::RandomState);

impl TransactionKeys {
    pub fn key(&self, call_id: &[u8], branch: &[u8], cseq: &[u8]) -> u64 {
        let mut key = self.0.build_hasher();
        for part in [call_id, branch, cseq] {
            key.write_usize(part.len());
            key.write(part);
        }
        key.finish()
    }
}

/// The running records threads.
pub struct Records {
    sender: RecordSender,
    shared: Arc<Shared>,
    recent: Arc<Recent>,
    writer: Option<JoinHandle<()>>,
    delivery: Option<webhook::Running>,
}

impl Records {
    /// Creates the directory if needed, recovers the files a previous run
    /// left, and starts the writer (and the webhook thread, when set).
    /// National spellings of callers are read in `region`.
    pub fn start(
        settings: &RecordsSettings,
        region: Region,
    ) -> Result<Option<Records>, RecordsError> {
        let Some(dir) = &settings.dir else {
            return Ok(None);
        };
        let instance = match &settings.instance {
            Some(name) => name.clone(),
            None => host_name(),
        };
        if instance.is_empty()
            || !instance
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(RecordsError::Instance(instance));
        }
        let dir_error = |source| RecordsError::Dir {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_error)?;
        let numbers = Numbers::new(settings.numbers_mode(), read_hmac_key(settings)?);
        let webhook = webhook::Config::from_settings(settings)?;
        let spool = Spool::new(dir, &instance);
        let shared = Arc::new(Shared::default());
        shared
            .stats
            .spool_limit_bytes
            .store(settings.spool_limit_bytes, Ordering::Relaxed);
        shared
            .stats
            .webhook_on
            .store(webhook.is_some(), Ordering::Relaxed);
        if webhook.is_some() {
            let checkpoint = spool.load_checkpoint().unwrap_or_default();
            *shared
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = checkpoint.delivered;
        }
        let recent = Arc::new(Recent::new(settings.recent, region.clone()));
        let (queue, received) = mpsc::sync_channel(settings.queue);
        let (give_back, spares) = crossbeam_channel::bounded(SPARES);
        let writer = writer::Writer::open(
            give_back,
            spool.clone(),
            settings,
            numbers,
            Arc::clone(&shared),
            Arc::clone(&recent),
            region,
        )
        .map_err(dir_error)?;
        let writer = std::thread::Builder::new()
            .name("records-writer".into())
            .spawn(move || writer.run(&received))
            .map_err(RecordsError::Spawn)?;
        let delivery = match webhook {
            Some(config) => Some(
                webhook::start(config, spool, Arc::clone(&shared)).map_err(RecordsError::Spawn)?,
            ),
            None => None,
        };
        Ok(Some(Records {
            sender: RecordSender {
                queue,
                spares,
                keys: TransactionKeys::default(),
                shared: Arc::clone(&shared),
            },
            shared,
            recent,
            writer: Some(writer),
            delivery,
        }))
    }

    pub fn sender(&self) -> RecordSender {
        self.sender.clone()
    }

    /// The recent records, for `/calls`.
    pub fn recent(&self) -> Arc<Recent> {
        Arc::clone(&self.recent)
    }

    pub fn stats(&self) -> RecordsStats {
        RecordsStats(Arc::clone(&self.shared))
    }

    /// Writes out what is queued and stops (SIGTERM): the writer flushes
    /// every record it was given; the webhook thread gets a moment to
    /// finish the POST under way, and resends it after a restart if not.
    pub fn shutdown(mut self) {
        let _ = self.sender.queue.send(Message::Stop);
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            warn!("the records writer panicked");
        }
        if let Some(delivery) = self.delivery.take() {
            delivery.stop(DELIVERY_STOP_WAIT);
        }
    }
}

/// The records' counters, shared with the metrics.
#[derive(Debug, Clone)]
pub struct RecordsStats(Arc<Shared>);

impl std::ops::Deref for RecordsStats {
    type Target = Stats;
    fn deref(&self) -> &Stats {
        &self.0.stats
    }
}

fn read_hmac_key(settings: &RecordsSettings) -> Result<Option<Vec<u8>>, RecordsError> {
    let Some(path) = &settings.hmac_key_file else {
        return Ok(None);
    };
    let problem = |problem: String| RecordsError::HmacKey {
        path: path.clone(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| problem(format!("cannot read it: {e}")))?;
    let key = bytes.trim_ascii();
    if key.len() < 16 {
        return Err(problem(
            "give a key of at least 16 bytes (for example `openssl rand -hex 32`)".to_owned(),
        ));
    }
    Ok(Some(key.to_vec()))
}

/// The host's name, for `instance`; `switchboard` when it cannot be read.
/// Asked of the kernel (gethostname), not read from /proc: the systemd
/// unit's `ProcSubset=pid` hides /proc/sys.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name: String = if ok {
        String::from_utf8_lossy(&buf[..len])
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    } else {
        String::new()
    };
    if name.is_empty() {
        "switchboard".to_owned()
    } else {
        name
    }
}

/// A number as records write it: E.164 when it reads as one (a `+`
/// spelling, digits after an international prefix or with a country
/// code, or a national number of `region`), else as received.
pub fn normalise(number: &str, region: &Region) -> String {
    let e164 = Spelling::parse(number.as_bytes())
        .ok()
        .and_then(|s| s.as_e164().or_else(|| s.as_national(region)));
    match e164 {
        Some(number) => number.to_string(),
        None => number.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(transaction: u64) -> CallEvent {
        CallEvent {
            transaction,
            ..CallEvent::unknown_number("+18005550100", "+16505550123")
        }
    }

    #[test]
    fn an_event_travels_in_a_box_the_writer_gave_back_when_there_is_one() {
        let (queue, received) = mpsc::sync_channel(4);
        let (give_back, spares) = crossbeam_channel::bounded(SPARES);
        let sender = RecordSender {
            queue,
            spares,
            keys: TransactionKeys::default(),
            shared: Arc::default(),
        };
        let spare = Box::new(event(1));
        let address = std::ptr::from_ref::<CallEvent>(&spare);
        give_back.send(spare).expect("room");
        sender.send(event(2));
        sender.send(event(3));
        let Ok(Message::Call(first)) = received.try_recv() else {
            panic!("queued")
        };
        let Ok(Message::Call(second)) = received.try_recv() else {
            panic!("queued")
        };
        assert_eq!(first.transaction, 2, "written over the spare");
        assert!(std::ptr::eq(&raw const *first, address), "the spare itself");
        assert_eq!(second.transaction, 3, "in a new box: no spare left");
        assert!(!std::ptr::eq(&raw const *second, address));
    }

    #[test]
    fn transaction_keys_tell_the_parts_apart_and_repeat_for_a_retransmission() {
        let keys = TransactionKeys::default();
        let key = keys.key(b"a@h", b"z9hG4bK1", b"1 INVITE");
        assert_eq!(key, keys.clone().key(b"a@h", b"z9hG4bK1", b"1 INVITE"));
        assert_ne!(key, keys.key(b"a@h", b"z9hG4bK2", b"1 INVITE"));
        assert_ne!(key, keys.key(b"a@h", b"z9hG4bK1", b"2 INVITE"));
        // The same bytes split differently are another transaction.
        assert_ne!(
            keys.key(b"ab", b"c", b""),
            keys.key(b"a", b"bc", b""),
            "lengths are keyed"
        );
    }
}
