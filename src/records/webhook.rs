//! Delivery to the CRM's webhook (docs/operations.md, "Receiving the
//! webhook"), per Standard Webhooks v1: each POST is a JSON array of
//! records with `webhook-id`, `webhook-timestamp` and `webhook-signature:
//! v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the
//! `whsec_` secret.
//!
//! At least once: the record files are the spool, read from a checkpoint
//! saved durably (`.INSTANCE.checkpoint`). Before a batch is first sent
//! its end is saved too, so a batch resent after an outage, a restart or
//! `kill -9` is the same bytes under the same `webhook-id`. Only a 2xx
//! moves the checkpoint; anything else is retried with exponential
//! backoff and jitter (a `Retry-After` in seconds is honoured); `410 Gone`
//! stops delivery and says so loudly.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tracing::{error, info, warn};

use super::spool::{Checkpoint, Position, Spool};
use super::{RecordsError, Shared};
use crate::settings::RecordsSettings;

/// The most bytes read for one batch.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// How long a POST may take, connection included.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle delivery thread looks for new records.
const IDLE_POLL: Duration = Duration::from_millis(200);
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A `Retry-After` longer than this is cut to it.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(600);

/// The Standard Webhooks secret: the key bytes of `whsec_<base64>`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Reads `whsec_` and base64.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or("the secret must start with whsec_ (Standard Webhooks)")?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|e| format!("the part after whsec_ is not base64: {e}"))?;
        if key.len() < 16 {
            return Err("the key must be at least 16 bytes (24 base64 characters)".into());
        }
        Ok(Secret(key))
    }
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn sign(secret: &Secret, id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[derive(Debug)]
pub struct Config {
    url: String,
    secret: Secret,
    batch: usize,
}

impl Config {
    pub fn from_settings(settings: &RecordsSettings) -> Result<Option<Config>, RecordsError> {
        let (Some(url), Some(path)) = (&settings.webhook, &settings.webhook_secret_file) else {
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(RecordsError::WebhookUrl {
                url: url.clone(),
                problem: "give an http:// or https:// URL".into(),
            });
        }
        let problem = |problem: String| RecordsError::WebhookSecret {
            path: path.clone(),
            problem,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| problem(format!("cannot read it: {e}")))?;
        let secret = Secret::parse(&text).map_err(problem)?;
        Ok(Some(Config {
            url: url.clone(),
            secret,
            batch: settings.webhook_batch,
        }))
    }
}

/// The delivery thread, running.
pub struct Running {
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl Running {
    /// Asks the thread to stop and waits up to `wait` for it.
    pub fn stop(self, wait: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        if self.done.recv_timeout(wait).is_ok() {
            let _ = self.thread.join();
        } else {
            warn!("the webhook POST under way did not finish; it is sent again at the next start");
        }
    }
}

pub fn start(config: Config, spool: Spool, shared: Arc<Shared>) -> io::Result<Running> {
    let stop = Arc::new(AtomicBool::new(false));
    let (finished, done) = mpsc::channel();
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("records-webhook".into())
            .spawn(move || {
                Delivery::new(config, spool, shared, stop).run();
                let _ = finished.send(());
            })?
    };
    Ok(Running { stop, done, thread })
}

/// A batch: whole lines `[start, end)` of one file.
struct Batch {
    start: Position,
    end: u64,
    body: Vec<u8>,
    records: u64,
    /// The first record's time, for the lag.
    oldest: Option<SystemTime>,
}

enum Answer {
    Delivered,
    Gone,
    Retry(Option<Duration>),
}

struct Delivery {
    config: Config,
    spool: Spool,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    agent: ureq::Agent,
    checkpoint: Checkpoint,
    jitter: AtomicU64,
}

impl Delivery {
    fn new(config: Config, spool: Spool, shared: Arc<Shared>, stop: Arc<AtomicBool>) -> Delivery {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(POST_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let checkpoint = spool.load_checkpoint().unwrap_or_default();
        Delivery {
            config,
            spool,
            shared,
            stop,
            agent,
            checkpoint,
            jitter: AtomicU64::new(0),
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps `wait`, waking early to stop.
    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        while !self.stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let stats = &shared.stats;
        while !self.stopping() {
            let batch = match self.next_batch() {
                Ok(Some(batch)) => batch,
                Ok(None) => {
                    stats.lag_ms.store(0, Ordering::Relaxed);
                    self.pause(IDLE_POLL);
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the call records spool");
                    self.pause(Duration::from_secs(1));
                    continue;
                }
            };
            let end = Position {
                file: batch.start.file.clone(),
                offset: batch.end,
            };
            if self.checkpoint.sending_to.as_ref() != Some(&end) {
                self.checkpoint.delivered = Some(batch.start.clone());
                self.checkpoint.sending_to = Some(end.clone());
                if let Err(e) = self.spool.save_checkpoint(&self.checkpoint) {
                    warn!(error = %e, "cannot save the webhook checkpoint");
                    self.pause(Duration::from_secs(1));
                    continue;
                }
            }
            let id = format!(
                "msg_{}_{}_{}_{}",
                self.spool.instance, batch.start.file, batch.start.offset, batch.end
            );
            let mut backoff = BACKOFF_FIRST;
            let mut failures = 0u64;
            loop {
                if self.stopping() {
                    return;
                }
                if let Some(oldest) = batch.oldest {
                    let lag = SystemTime::now().duration_since(oldest).unwrap_or_default();
                    stats
                        .lag_ms
                        .store(lag.as_millis() as u64, Ordering::Relaxed);
                }
                match self.post(&id, &batch.body) {
                    Answer::Delivered => break,
                    Answer::Gone => {
                        stats.delivery_stopped.store(true, Ordering::Relaxed);
                        error!(
                            url = %self.config.url,
                            "the webhook answered 410 Gone: call record delivery STOPPED; \
                             records are still written to the files (and kept: they are \
                             undelivered). Fix the receiver or the URL and restart"
                        );
                        return;
                    }
                    Answer::Retry(after) => {
                        failures += 1;
                        stats.delivery_failures.fetch_add(1, Ordering::Relaxed);
                        let wait = after.unwrap_or_else(|| self.jittered(backoff));
                        if failures == 1 || failures.is_power_of_two() {
                            warn!(
                                id = %id,
                                failures,
                                retry_in_ms = wait.as_millis() as u64,
                                "call records not delivered to the webhook; retrying"
                            );
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        self.pause(wait);
                    }
                }
            }
            if failures > 0 {
                info!(id = %id, failures, "call records delivered to the webhook again");
            }
            stats.delivered.fetch_add(batch.records, Ordering::Relaxed);
            self.checkpoint.delivered = Some(end.clone());
            self.checkpoint.sending_to = None;
            if let Err(e) = self.spool.save_checkpoint(&self.checkpoint) {
                warn!(error = %e, "cannot save the webhook checkpoint");
            }
            *self
                .shared
                .delivered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(end);
        }
    }

    /// Full jitter over the upper half: between `d/2` and `d`.
    fn jittered(&self, d: Duration) -> Duration {
        let n = self.jitter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let r = xxhash_rust::xxh3::xxh3_64(&[n.to_le_bytes(), nanos.to_le_bytes()].concat());
        let half = d / 2;
        half + Duration::from_nanos(r % (half.as_nanos().max(1) as u64))
    }

    fn post(&self, id: &str, body: &[u8]) -> Answer {
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let signature = sign(&self.config.secret, id, timestamp, body);
        let sent = self
            .agent
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .send(body);
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                tracing::debug!(error = %e, "webhook POST failed");
                return Answer::Retry(None);
            }
        };
        let status = response.status().as_u16();
        match status {
            200..=299 => Answer::Delivered,
            410 => Answer::Gone,
            _ => Answer::Retry(
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(RETRY_AFTER_MAX)),
            ),
        }
    }

    /// The batch to send: the one saved as being sent, else the next
    /// whole lines after the checkpoint, moving past finished files.
    fn next_batch(&mut self) -> io::Result<Option<Batch>> {
        loop {
            let Some(start) = self.start_position()? else {
                return Ok(None);
            };
            let resend = self
                .checkpoint
                .sending_to
                .as_ref()
                .filter(|end| end.file == start.file && end.offset > start.offset)
                .map(|end| end.offset);
            let (file, is_current) = self.open(&start.file)?;
            let Some(mut file) = file else {
                // Gone (deleted by hand): on to the next file.
                if !self.advance_past(&start.file)? {
                    return Ok(None);
                }
                continue;
            };
            file.seek(SeekFrom::Start(start.offset))?;
            let limit = match resend {
                Some(end) => (end - start.offset) as usize,
                None => MAX_BATCH_BYTES,
            };
            let mut bytes = Vec::new();
            file.take(limit as u64).read_to_end(&mut bytes)?;
            let batch_size = if resend.is_some() {
                usize::MAX
            } else {
                self.config.batch
            };
            if let Some(batch) = batch_of(&start, &bytes, batch_size) {
                return Ok(Some(batch));
            }
            if is_current || !self.advance_past(&start.file)? {
                return Ok(None);
            }
        }
    }

    /// Where delivery goes on from: the checkpoint, else the oldest file.
    fn start_position(&mut self) -> io::Result<Option<Position>> {
        if let Some(p) = &self.checkpoint.delivered {
            return Ok(Some(p.clone()));
        }
        let first = self.files()?.into_iter().next();
        Ok(first.map(|file| Position { file, offset: 0 }))
    }

    /// Every file's stamp, oldest first, the one being written last.
    fn files(&self) -> io::Result<Vec<String>> {
        let mut stamps: Vec<String> = self.spool.rotated()?.into_iter().map(|r| r.stamp).collect();
        if let Some(current) = self.shared.current().clone() {
            stamps.push(current);
        }
        Ok(stamps)
    }

    /// Moves the checkpoint to the start of the file after `stamp`;
    /// whether there is one.
    fn advance_past(&mut self, stamp: &str) -> io::Result<bool> {
        let next = self.files()?.into_iter().find(|s| s.as_str() > stamp);
        match next {
            Some(file) => {
                self.checkpoint.delivered = Some(Position { file, offset: 0 });
                self.checkpoint.sending_to = None;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Opens the file with `stamp`: the one being written if it is that,
    /// else the rotated one. Looked up under the writer's lock, so a
    /// rotation cannot swap the file between the look and the open.
    fn open(&self, stamp: &str) -> io::Result<(Option<File>, bool)> {
        let current = self.shared.current();
        let is_current = current.as_deref() == Some(stamp);
        let path: PathBuf = if is_current {
            self.spool.current_path()
        } else {
            self.spool.rotated_path(stamp)
        };
        match File::open(&path) {
            Ok(file) => Ok((Some(file), is_current)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((None, is_current)),
            Err(e) => Err(e),
        }
    }
}

/// Up to `max` whole lines of `bytes` as a JSON array, or `None`.
fn batch_of(start: &Position, bytes: &[u8], max: usize) -> Option<Batch> {
    let mut body = Vec::with_capacity(bytes.len() + 2);
    body.push(b'[');
    let (mut used, mut records) = (0usize, 0u64);
    let mut oldest = None;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if records as usize >= max || line.last() != Some(&b'\n') {
            break;
        }
        used += line.len();
        let record = line[..line.len() - 1].trim_ascii();
        if record.is_empty() {
            continue;
        }
        if records > 0 {
            body.push(b',');
        }
        if oldest.is_none() {
            oldest = record_time(record);
        }
        body.extend_from_slice(record);
        records += 1;
    }
    body.push(b']');
    (used > 0 && records > 0).then(|| Batch {
        start: start.clone(),
        end: start.offset + used as u64,
        body,
        records,
        oldest,
    })
}

/// A record's `time`.
fn record_time(line: &[u8]) -> Option<SystemTime> {
    #[derive(serde::Deserialize)]
    struct Time<'a> {
        #[serde(borrow)]
        time: &'a str,
    }
    let time: Time<'_> = serde_json::from_slice(line).ok()?;
    super::parse_rfc3339_micros(time.time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(Secret::parse("whsec_!!").is_err());
    }

    #[test]
    fn a_batch_takes_whole_lines_only() {
        let start = Position {
            file: "f".into(),
            offset: 10,
        };
        let bytes = b"{\"a\":1}\n{\"b\":2}\n{\"c\":";
        let batch = batch_of(&start, bytes, 100).unwrap();
        assert_eq!(batch.body, b"[{\"a\":1},{\"b\":2}]");
        assert_eq!(batch.end, 26);
        assert_eq!(batch.records, 2);
        let one = batch_of(&start, bytes, 1).unwrap();
        assert_eq!(one.body, b"[{\"a\":1}]");
        assert_eq!(one.end, 18);
        assert!(batch_of(&start, b"{\"c\":", 100).is_none());
    }
}
