//! The writer thread: takes records off the queue, drops retransmissions,
//! names each record, appends it to `INSTANCE.jsonl`, flushes at least
//! once a second and at shutdown, rotates by rename at a size or an age,
//! and deletes old rotated files, never one not yet delivered.
//!
//! A write the disk refuses (full, read-only) drops the records it held,
//! counted, and cuts the file back to its last whole line; the next flush
//! tries again, so writing resumes when space returns.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant, SystemTime};

use tracing::{error, info, warn};

use super::record::{Formatted, Naming, file_stamp};
use super::spool::{Position, Spool, cut_partial_line};
use super::{DropReason, Message, Numbers, Recent, Shared};
use crate::routing::Region;
use crate::settings::RecordsSettings;

/// Records are written out at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// How long the writer naps when the queue is empty. It drains the queue
/// on a clock instead of blocking on it: a blocked receiver is woken by
/// every record sent, a context switch per call that cost more CPU than
/// writing the record (bench/records.sh: 16.6 against 7.1 µs per request
/// with records on and off when it blocked). 10 ms of a 65,536-record
/// queue holds over 6 million records a second.
const TICK: Duration = Duration::from_millis(10);
/// Records taken per round at most, so that a flood of them still lets
/// the flush and rotation checks run.
const DRAIN_MAX: usize = 4096;
/// Records taken off the queue together: their transactions are looked
/// up in the retransmission set one after another before any of them is
/// written, so that the set's cache misses overlap instead of each
/// stalling the writer (a third of its time under load, perf).
const BATCH: usize = 64;
/// ...and sooner when this much is buffered.
const FLUSH_AT: usize = 256 * 1024;
/// How often retention and the spool size are looked at.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// An INVITE is retransmitted for at most 64·T1 = 32 s (RFC 3261
/// §17.1.1.2); its transaction is remembered at least twice that.
const RETRANSMISSION_WINDOW: Duration = Duration::from_secs(64);
/// Transactions a generation of [`Retransmissions`] holds at most (8
/// bytes and a control byte each, at most two generations).
const MAX_REMEMBERED: usize = 1 << 20;

pub struct Writer {
    spool: Spool,
    numbers: Numbers,
    shared: Arc<Shared>,
    recent: Arc<Recent>,
    /// National spellings of callers are read in it.
    region: Region,
    rotate_bytes: u64,
    rotate_after: Duration,
    keep_files: usize,
    keep_for: Duration,
    webhook: bool,
    /// The run's id prefix (unique to this run: with the sequence
    /// number, a record's `id`) and instance.
    naming: Naming,
    sequence: u64,
    file: Option<OpenFile>,
    buffer: Vec<u8>,
    buffered: u64,
    seen: Retransmissions,
    /// Taken off the queue, not yet written.
    batch: VecDeque<Box<super::CallEvent>>,
    /// Written, numbered, for `/calls`: handed over once a round.
    kept: Vec<(Box<super::CallEvent>, u64)>,
    /// Boxes done with (forgotten by `/calls`, or retransmissions), on
    /// their way back to the request path: the boxes are what is reused.
    #[allow(clippy::vec_box)]
    done: Vec<Box<super::CallEvent>>,
    spares: crossbeam_channel::Sender<Box<super::CallEvent>>,
    formatted: Formatted,
    /// Whether the last write failed, to log the change once.
    failing: bool,
}

struct OpenFile {
    file: File,
    stamp: String,
    len: u64,
    opened: Instant,
}

impl Writer {
    /// Recovers what a previous run left (the file it was writing becomes
    /// a rotated file) and gets ready to write.
    pub fn open(
        spares: crossbeam_channel::Sender<Box<super::CallEvent>>,
        spool: Spool,
        settings: &RecordsSettings,
        numbers: Numbers,
        shared: Arc<Shared>,
        recent: Arc<Recent>,
        region: Region,
    ) -> io::Result<Writer> {
        recover(&spool)?;
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = format!(
            "{}/{}/{}",
            spool.instance,
            started.as_nanos(),
            std::process::id()
        );
        let id_prefix = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()));
        recent.name(&spool.instance, &id_prefix);
        let naming = Naming::new(&id_prefix, &spool.instance);
        Ok(Writer {
            spool,
            numbers,
            shared,
            recent,
            region,
            rotate_bytes: settings.rotate_bytes,
            rotate_after: Duration::from_secs(settings.rotate_seconds),
            keep_files: settings.keep_files,
            keep_for: Duration::from_secs(settings.keep_seconds),
            webhook: settings.webhook.is_some(),
            naming,
            sequence: 0,
            file: None,
            buffer: Vec::with_capacity(FLUSH_AT * 2),
            buffered: 0,
            seen: Retransmissions::default(),
            batch: VecDeque::with_capacity(BATCH),
            kept: Vec::with_capacity(DRAIN_MAX),
            done: Vec::with_capacity(DRAIN_MAX),
            spares,
            formatted: Formatted::default(),
            failing: false,
        })
    }

    /// Serves the queue until told to stop (or every sender is gone).
    pub fn run(mut self, queue: &Receiver<Message>) {
        let mut flush_due = Instant::now() + FLUSH_EVERY;
        let mut housekeeping_due = Instant::now();
        loop {
            // One clock reading a round: the retransmission window is
            // 64 s, a round at most a few milliseconds.
            let now = Instant::now();
            let mut stop = false;
            let mut took = 0;
            while took < DRAIN_MAX {
                if self.batch.is_empty() {
                    if stop {
                        break;
                    }
                    stop = self.refill(queue);
                }
                let Some(event) = self.batch.pop_front() else {
                    break;
                };
                self.take(event, now);
                took += 1;
                // Written out, and rotated, at the size they are due at:
                // a file ends near `rotate_bytes` (the rest of the batch
                // waits for the next round).
                if self.buffer.len() >= FLUSH_AT || self.rotation_reached() {
                    break;
                }
            }
            self.recent.keep_all(&mut self.kept, &mut self.done);
            self.give_back();
            if stop || now >= flush_due || self.buffer.len() >= FLUSH_AT || self.rotation_reached()
            {
                let wrote = !self.buffer.is_empty();
                self.flush();
                self.rotate_if_due();
                flush_due = now + FLUSH_EVERY;
                if wrote && self.webhook {
                    // The spool's size follows each write, not a second late.
                    self.housekeeping();
                    housekeeping_due = now + HOUSEKEEPING_EVERY;
                }
            }
            if stop {
                // Anything queued behind the stop is written too.
                let now = Instant::now();
                while let Some(event) = self.batch.pop_front() {
                    self.take(event, now);
                }
                while let Ok(Message::Call(event)) = queue.try_recv() {
                    self.take(event, now);
                }
                self.recent.keep_all(&mut self.kept, &mut self.done);
                self.flush();
                info!(
                    written = self.shared.stats.written.load(Ordering::Relaxed),
                    "call records flushed"
                );
                return;
            }
            if took == 0 {
                std::thread::sleep(TICK);
            }
            if now >= housekeeping_due {
                self.housekeeping();
                housekeeping_due = now + HOUSEKEEPING_EVERY;
            }
        }
    }

    /// Takes up to [`BATCH`] records off the queue and reads where their
    /// transactions are in the retransmission set ahead of writing them.
    /// Whether the queue said stop (or every sender is gone).
    fn refill(&mut self, queue: &Receiver<Message>) -> bool {
        let mut stop = false;
        while self.batch.len() < BATCH {
            match queue.try_recv() {
                Ok(Message::Call(event)) => self.batch.push_back(event),
                Ok(Message::Stop) | Err(TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        self.seen
            .warm(self.batch.iter().map(|event| event.transaction));
        stop
    }

    /// One call: unless a retransmission, named, kept in memory in full,
    /// and buffered as its sinks write numbers.
    fn take(&mut self, mut event: Box<super::CallEvent>, now: Instant) {
        if !self.seen.first_time(event.transaction, now) {
            self.shared
                .stats
                .retransmissions
                .fetch_add(1, Ordering::Relaxed);
            self.done.push(event);
            return;
        }
        self.sequence += 1;
        event.normalise_caller(&self.region);
        if self.spool_full() {
            self.shared.stats.count_dropped(DropReason::SpoolFull, 1);
        } else {
            let start = self.buffer.len();
            let written = event.write_json(
                &self.naming,
                self.sequence,
                &self.numbers,
                &mut self.formatted,
                &mut self.buffer,
            );
            match written {
                Ok(()) => {
                    self.buffer.push(b'\n');
                    self.buffered += 1;
                }
                Err(e) => {
                    // No half line is left behind.
                    self.buffer.truncate(start);
                    error!(error = %e, "a call record could not be encoded");
                    self.shared.stats.count_dropped(DropReason::WriteFailed, 1);
                }
            }
        }
        // `/calls` keeps it with its numbers in full.
        self.kept.push((event, self.sequence));
    }

    /// Hands the boxes done with back to the request path, as many as it
    /// has room for; the rest are freed. Their contents stay until a
    /// worker writes a new event over them.
    fn give_back(&mut self) {
        // Dropping the drain frees what is left when the channel is full.
        for event in self.done.drain(..) {
            if self.spares.try_send(event).is_err() {
                break;
            }
        }
    }

    /// Whether the buffer takes the file to its rotation size: written
    /// out now, a file ends close to `rotate_bytes`, not a buffer past it.
    fn rotation_reached(&self) -> bool {
        let len = self.file.as_ref().map_or(0, |f| f.len);
        len + self.buffer.len() as u64 >= self.rotate_bytes
    }

    fn spool_full(&self) -> bool {
        let stats = &self.shared.stats;
        self.webhook
            && stats.spool_bytes.load(Ordering::Relaxed)
                >= stats.spool_limit_bytes.load(Ordering::Relaxed)
    }

    /// Appends the buffer to the file; what the disk refused is dropped,
    /// counted.
    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let (kept, failure) = match self.append() {
            Ok(()) => (self.buffered, None),
            Err((kept, e)) => (kept, Some(e)),
        };
        let stats = &self.shared.stats;
        stats.written.fetch_add(kept, Ordering::Relaxed);
        match failure {
            None if self.failing => {
                info!("call records are being written again");
                self.failing = false;
            }
            None => {}
            Some(e) => {
                stats.count_dropped(DropReason::WriteFailed, self.buffered - kept);
                if !self.failing {
                    error!(
                        error = %e,
                        dir = %self.spool.dir.display(),
                        "call records cannot be written: dropping them (counted) until the disk takes them again"
                    );
                    self.failing = true;
                }
            }
        }
        self.buffer.clear();
        self.buffered = 0;
    }

    /// Writes the buffer out. On failure, the file is cut after the last
    /// whole record that went out (a reader may have seen those, so they
    /// stay; a half line never does), and the records kept are returned
    /// with the error.
    fn append(&mut self) -> Result<(), (u64, io::Error)> {
        if self.file.is_none() {
            self.file = Some(self.open_current().map_err(|e| (0, e))?);
        }
        let Some(open) = self.file.as_mut() else {
            return Err((0, io::Error::other("no file")));
        };
        let mut written = 0;
        let failure = loop {
            if written == self.buffer.len() {
                break None;
            }
            match open.file.write(&self.buffer[written..]) {
                Ok(0) => break Some(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        let Some(e) = failure else {
            open.len += written as u64;
            return Ok(());
        };
        let whole = &self.buffer[..written];
        let keep = whole.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let kept = whole[..keep].iter().filter(|&&b| b == b'\n').count() as u64;
        if keep < written
            && let Err(cut) = open.file.set_len(open.len + keep as u64)
        {
            warn!(error = %cut, "cannot cut a records file back after a failed write");
            // Reopened (and its half line cut) at the next start.
            self.file = None;
            return Err((kept, e));
        }
        open.len += keep as u64;
        Err((kept, e))
    }

    /// Opens a new `INSTANCE.jsonl`, its stamp saved first. A file left
    /// at that name (a failed write that could not be cut back) is made a
    /// rotated file first. All under the lock delivery opens files with.
    fn open_current(&self) -> io::Result<OpenFile> {
        let mut current = self.shared.current();
        recover(&self.spool)?;
        *current = None;
        let mut stamp = file_stamp(SystemTime::now());
        if let Some(last) = self.spool.rotated()?.last()
            && last.stamp >= stamp
        {
            // The clock went back: stamps must still sort by age.
            stamp = file_stamp(
                super::parse_rfc3339_micros(&unstamp(&last.stamp)).unwrap_or(SystemTime::now())
                    + Duration::from_micros(1),
            );
        }
        self.spool.save_current_stamp(&stamp)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.spool.current_path())?;
        let len = file.metadata()?.len();
        *current = Some(stamp.clone());
        Ok(OpenFile {
            file,
            stamp,
            len,
            opened: Instant::now(),
        })
    }

    fn rotate_if_due(&mut self) {
        let Some(open) = &self.file else { return };
        let due = open.len >= self.rotate_bytes
            || (open.len > 0 && open.opened.elapsed() >= self.rotate_after);
        if !due {
            return;
        }
        let mut current = self.shared.current();
        let renamed = fs::rename(
            self.spool.current_path(),
            self.spool.rotated_path(&open.stamp),
        );
        match renamed {
            Ok(()) => {
                *current = None;
                drop(current);
                self.file = None;
                self.housekeeping();
            }
            Err(e) => warn!(error = %e, "cannot rotate the call records file"),
        }
    }

    /// Retention, and the spool's size for the metrics and the limit.
    fn housekeeping(&mut self) {
        let Ok(rotated) = self.spool.rotated() else {
            return;
        };
        let delivered = self.webhook.then(|| self.shared.delivered()).flatten();
        // Files before the one delivery is in are delivered; with no
        // webhook every file is.
        let is_delivered = |stamp: &str| match (&delivered, self.webhook) {
            (_, false) => true,
            (Some(position), true) => stamp < position.file.as_str(),
            (None, true) => false,
        };
        let now = SystemTime::now();
        let excess = rotated.len().saturating_sub(self.keep_files);
        let mut kept = 0u64;
        for (i, file) in rotated.iter().enumerate() {
            let old = super::parse_rfc3339_micros(&unstamp(&file.stamp))
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > self.keep_for);
            if (i < excess || old) && is_delivered(&file.stamp) {
                if let Err(e) = fs::remove_file(&file.path) {
                    warn!(error = %e, file = %file.path.display(), "cannot delete an old records file");
                }
                continue;
            }
            if !is_delivered(&file.stamp) {
                kept += undelivered_part(file.len, &file.stamp, delivered.as_ref());
            }
        }
        if let Some(open) = &self.file
            && self.webhook
        {
            kept += undelivered_part(open.len, &open.stamp, delivered.as_ref());
        }
        self.shared
            .stats
            .spool_bytes
            .store(if self.webhook { kept } else { 0 }, Ordering::Relaxed);
    }
}

/// Bytes of a file not yet delivered.
fn undelivered_part(len: u64, stamp: &str, delivered: Option<&Position>) -> u64 {
    match delivered {
        Some(p) if p.file == stamp => len.saturating_sub(p.offset),
        Some(p) if stamp < p.file.as_str() => 0,
        _ => len,
    }
}

/// A file stamp back in RFC 3339.
fn unstamp(stamp: &str) -> String {
    // 20261206T054101.123456Z → 2026-12-06T05:41:01.123456Z
    let s = stamp;
    match (
        s.get(0..4),
        s.get(4..6),
        s.get(6..8),
        s.get(9..11),
        s.get(11..13),
        s.get(13..),
    ) {
        (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(rest)) => {
            format!("{y}-{mo}-{d}T{h}:{mi}:{rest}")
        }
        _ => String::new(),
    }
}

/// The file a previous run was writing, made a rotated file: its last
/// half-written line cut, renamed under its saved stamp.
fn recover(spool: &Spool) -> io::Result<()> {
    let current = spool.current_path();
    if !current.exists() {
        return Ok(());
    }
    let len = cut_partial_line(&current)?;
    if len == 0 {
        return fs::remove_file(&current);
    }
    let stamp = spool
        .saved_current_stamp()
        .unwrap_or_else(|| file_stamp(SystemTime::now()));
    let target = spool.rotated_path(&stamp);
    if target.exists() {
        // Never overwrite a file: the one found goes under a new name.
        return fs::rename(&current, spool.rotated_path(&file_stamp(SystemTime::now())));
    }
    fs::rename(&current, target)
}

/// INVITE transactions seen lately: a retransmission adds no record.
///
/// Two generations of keys: new ones go into the current one, which
/// becomes the previous one after [`RETRANSMISSION_WINDOW`] or
/// [`MAX_REMEMBERED`] keys, and the previous one is dropped whole. A
/// key is remembered for one to two windows (or the last
/// `MAX_REMEMBERED` keys at least, at rates past 16,000 a second). This
/// replaced a queue of (time, key) and a removal per record, whose
/// clock arithmetic and removals cost the writer more than the set.
#[derive(Default)]
struct Retransmissions {
    current: KeySet,
    previous: KeySet,
    /// When the current generation ends.
    ends: Option<Instant>,
}

impl Retransmissions {
    fn first_time(&mut self, key: u64, now: Instant) -> bool {
        let ends = *self.ends.get_or_insert(now + RETRANSMISSION_WINDOW);
        if now >= ends || self.current.len() >= MAX_REMEMBERED {
            // The next generation starts as large as this one ended, so
            // it does not grow table by table again.
            let next = KeySet::with_capacity(self.current.len(), self.current.seed);
            self.previous = std::mem::replace(&mut self.current, next);
            self.ends = Some(now + RETRANSMISSION_WINDOW);
        }
        !self.previous.contains(key) && self.current.insert(key)
    }

    /// Reads the slots `keys` start at, so that looking them up next
    /// finds them in the cache: independent reads, whose misses the CPU
    /// overlaps.
    fn warm(&self, keys: impl Iterator<Item = u64>) {
        let mut read = 0;
        for key in keys {
            read ^= self.current.first_slot(key) ^ self.previous.first_slot(key);
        }
        // Used, so the reads are not left out.
        std::hint::black_box(read);
    }
}

/// Slots a [`KeySet`] starts with.
const MIN_SLOTS: usize = 1 << 12;

/// A set of 64-bit keys: open addressing with linear probing, the keys
/// themselves in the slots (0 marks an empty one; the key 0 is kept
/// aside), at most half of them full. A look-up reads one cache line
/// where `HashSet`'s control bytes and buckets were two: under load the
/// set's cache misses were the writer's largest stall (perf).
struct KeySet {
    slots: Vec<u64>,
    /// Keys in `slots`.
    len: usize,
    zero: bool,
    /// Mixed into each key before it picks a slot: keys are unkeyed
    /// hashes of what peers send, so a peer could otherwise aim many at
    /// one run of slots.
    seed: u64,
}

impl Default for KeySet {
    fn default() -> KeySet {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        KeySet::with_capacity(0, seed)
    }
}

impl KeySet {
    fn with_capacity(keys: usize, seed: u64) -> KeySet {
        KeySet {
            slots: vec![0; keys.saturating_mul(2).next_power_of_two().max(MIN_SLOTS)],
            len: 0,
            zero: false,
            seed: seed | 1,
        }
    }

    fn len(&self) -> usize {
        self.len + usize::from(self.zero)
    }

    /// Where `key`'s probe starts: the high bits of a keyed multiply.
    fn start(&self, key: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        // `slots.len()` is a power of two from 2^12, so 64 - bits is
        // 1..=52 and the shift leaves an index below it.
        ((key ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// What is in the slot `key`'s probe starts at.
    fn first_slot(&self, key: u64) -> u64 {
        self.slots[self.start(key) & (self.slots.len() - 1)]
    }

    fn contains(&self, key: u64) -> bool {
        if key == 0 {
            return self.zero;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.start(key);
        loop {
            match self.slots[i & mask] {
                0 => return false,
                k if k == key => return true,
                _ => i += 1,
            }
        }
    }

    /// Adds `key`; whether it was new.
    fn insert(&mut self, key: u64) -> bool {
        if key == 0 {
            return !std::mem::replace(&mut self.zero, true);
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.start(key);
        loop {
            let slot = &mut self.slots[i & mask];
            match *slot {
                0 => {
                    *slot = key;
                    self.len += 1;
                    return true;
                }
                k if k == key => return false,
                _ => i += 1,
            }
        }
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.slots = vec![0; old.len() * 2];
        self.len = 0;
        for key in old.into_iter().filter(|&k| k != 0) {
            self.insert(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_set_holds_what_it_was_given_through_growing() {
        let mut set = KeySet::with_capacity(0, 7);
        // 0 (kept aside) first, then keys that differ in few bits.
        let keys: Vec<u64> = (0..20_000u64)
            .map(|i| i.wrapping_mul(0x0123_4567_89ab_cdef) ^ (i << 60))
            .chain([u64::MAX])
            .collect();
        for &k in &keys {
            assert!(set.insert(k), "{k:#x} is new");
            assert!(!set.insert(k), "{k:#x} is there");
        }
        assert_eq!(set.len(), keys.len());
        assert!(set.slots.len() >= keys.len() * 2);
        for &k in &keys {
            assert!(set.contains(k));
        }
        assert!(!set.contains(1) || keys.contains(&1));
        assert!(!KeySet::default().contains(0));
    }

    #[test]
    fn a_transaction_is_recorded_once_within_the_window() {
        let mut seen = Retransmissions::default();
        let t = Instant::now();
        assert!(seen.first_time(1, t));
        assert!(!seen.first_time(1, t + Duration::from_secs(31)));
        assert!(seen.first_time(2, t));
        // Remembered a window at least, in the previous generation.
        let next = t + RETRANSMISSION_WINDOW + Duration::from_secs(1);
        assert!(!seen.first_time(1, next));
        assert!(!seen.first_time(2, next));
        assert!(seen.first_time(3, next));
        // Forgotten after two.
        let later = next + RETRANSMISSION_WINDOW;
        assert!(seen.first_time(1, later));
        assert!(!seen.first_time(3, later), "the previous generation");
    }

    fn writer(dir: &std::path::Path, keep_files: usize, webhook: bool) -> Writer {
        let settings = RecordsSettings {
            dir: Some(dir.to_owned()),
            keep_files,
            webhook: webhook.then(|| "http://127.0.0.1:9/".to_owned()),
            ..RecordsSettings::default()
        };
        let region = Region::from_code("US").expect("US");
        Writer::open(
            // No spares taken: a box given back is freed.
            crossbeam_channel::bounded(0).0,
            Spool::new(dir, "t"),
            &settings,
            Numbers::Full,
            Arc::new(Shared::default()),
            Arc::new(Recent::new(0, region.clone())),
            region,
        )
        .expect("a writer")
    }

    fn stamps(dir: &std::path::Path) -> Vec<String> {
        Spool::new(dir, "t")
            .rotated()
            .unwrap()
            .into_iter()
            .map(|r| r.stamp)
            .collect()
    }

    #[test]
    fn retention_keeps_a_count_and_an_age_but_never_an_undelivered_file() {
        let dir = tempfile::tempdir().unwrap();
        let recent = file_stamp(SystemTime::now());
        let stamp = |i: u32| format!("{}{i:02}.000000Z", &recent[..13]);
        let old = "20200101T000000.000000Z".to_owned();
        let spool = Spool::new(dir.path(), "t");
        for s in std::iter::once(old.clone()).chain((0..5).map(stamp)) {
            fs::write(spool.rotated_path(&s), "{}\n").unwrap();
        }
        // With a webhook that has delivered only the old file: nothing
        // else goes, however many there are.
        let mut w = writer(dir.path(), 2, true);
        *w.shared.delivered.lock().unwrap() = Some(Position {
            file: stamp(0),
            offset: 0,
        });
        w.housekeeping();
        assert_eq!(stamps(dir.path()), (0..5).map(stamp).collect::<Vec<_>>());
        assert_eq!(w.shared.stats.spool_bytes.load(Ordering::Relaxed), 15);
        // Delivered up to the fourth file: the count is kept, oldest first.
        *w.shared.delivered.lock().unwrap() = Some(Position {
            file: stamp(3),
            offset: 3,
        });
        w.housekeeping();
        assert_eq!(stamps(dir.path()), [stamp(3), stamp(4)]);
        assert_eq!(w.shared.stats.spool_bytes.load(Ordering::Relaxed), 3);
        // Without a webhook every file counts as delivered.
        fs::write(spool.rotated_path(&old), "{}\n").unwrap();
        let mut w = writer(dir.path(), 5, false);
        w.housekeeping();
        assert_eq!(stamps(dir.path()), [stamp(3), stamp(4)], "the old one went");
    }

    #[test]
    fn boxes_done_with_go_back_to_the_request_path_as_far_as_there_is_room() {
        let dir = tempfile::tempdir().unwrap();
        let region = Region::from_code("US").expect("US");
        let (give_back, spares) = crossbeam_channel::bounded(3);
        let mut w = Writer::open(
            give_back,
            Spool::new(dir.path(), "t"),
            &RecordsSettings {
                dir: Some(dir.path().to_owned()),
                ..RecordsSettings::default()
            },
            Numbers::Full,
            Arc::new(Shared::default()),
            Arc::new(Recent::new(2, region.clone())),
            region,
        )
        .expect("a writer");
        let now = Instant::now();
        let event = |transaction| {
            Box::new(super::super::CallEvent {
                transaction,
                ..super::super::CallEvent::unknown_number("+18005550100", "+16505550123")
            })
        };
        // Five calls and a retransmission of the first: `/calls` keeps two.
        for transaction in [1, 2, 3, 4, 5, 1] {
            w.take(event(transaction), now);
        }
        w.recent.keep_all(&mut w.kept, &mut w.done);
        assert_eq!(w.done.len(), 4, "three forgotten, one retransmission");
        w.give_back();
        assert!(w.done.is_empty(), "the rest freed");
        assert_eq!(spares.len(), 3, "as many as there is room for");
        assert_eq!(w.recent.matching(None, 10).len(), 2);
    }

    #[test]
    fn stamps_read_back_as_times() {
        assert_eq!(
            unstamp("20261206T054101.123456Z"),
            "2026-12-06T05:41:01.123456Z"
        );
    }
}
