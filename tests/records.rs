//! Call records against the real binary (issue #24, docs/operations.md
//! "Call records"): a record per decided call and none for
//! retransmissions or untrusted traffic, each valid against
//! docs/records.schema.json; rotation under load with a reader tailing
//! the files as a shipper does; a webhook receiver that verifies the
//! signatures, goes down, sees the server killed with SIGKILL and
//! restarted, and ends with every record, no two deliveries differing; a
//! full filesystem (a small tmpfs in a private mount namespace) where
//! calls are still answered and records are dropped, counted, then written
//! again; and the admin endpoint's probes under 1,000 idle connections.
//!
//! Loopback only; every loop is bounded in count and time.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{
    Server, TcpClient, UdpClient, example_data, http, invite, metric_value, project_path, status,
};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

const TOKEN: &str = "records-test-token";

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(project_path("docs/records.schema.json")).expect("schema");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

/// Fails naming the record and every error when `record` breaks the schema.
fn assert_valid(validator: &jsonschema::Validator, record: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(record)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{record}: {errors:?}");
}

/// Every record in the files of `dir`, oldest file first.
fn records_in(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("records dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    // INSTANCE-STAMP.jsonl sort by age; INSTANCE.jsonl is the newest.
    files.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        (!name.contains('-'), name)
    });
    let mut records = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a records file");
        for line in text.lines() {
            records.push(serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")));
        }
    }
    records
}

fn token_file(dir: &Path) -> String {
    let path = dir.join("token");
    std::fs::write(&path, TOKEN).unwrap();
    path.display().to_string()
}

fn scrape(admin: SocketAddr) -> String {
    http(admin, "GET", "/metrics", "").body
}

/// Waits (at most `limit`) until `done` holds; whether it did.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

fn call(client: &UdpClient, to: SocketAddr, dialed: &str, caller: &str, call_id: &str) -> u16 {
    status(&client.exchange(to, &invite(dialed, caller, call_id, client.port())))
}

#[test]
fn a_record_per_decided_call_and_none_for_retransmissions_or_untrusted_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    let token = token_file(dir.path());
    let server = Server::start_with(&[
        "--routing",
        &example_data(),
        "--records-dir",
        records.to_str().unwrap(),
        "--records-numbers",
        "full",
        "--trust",
        "127.0.0.1/32",
        "--admin",
        "127.0.0.1:0",
        "--admin-token-file",
        &token,
    ]);
    let admin = server.admin.expect("admin");
    let client = UdpClient::new();
    let expected = [
        ("+18005550100", "+16505550123", "rec-302", 302),
        ("+19995550100", "+16505550123", "rec-404", 404),
        ("8005550111", "650-555-0124", "rec-480", 480),
    ];
    for (dialed, caller, call_id, code) in expected {
        assert_eq!(call(&client, server.udp, dialed, caller, call_id), code);
    }
    // A retransmission: the same INVITE again, answered again, no record.
    assert_eq!(
        call(
            &client,
            server.udp,
            "+18005550100",
            "+16505550123",
            "rec-302"
        ),
        302
    );
    // Over TCP.
    let mut tcp = TcpClient::connect(server.tcp);
    let port = tcp.port();
    tcp.send(&invite("+18005550100", "+16505550123", "rec-tcp", port));
    assert_eq!(status(&tcp.read_responses(1)[0]), 302);
    // From an address outside the trust list: silence, no record.
    let stranger = UdpClient::bind("127.0.0.2:0");
    stranger.send(
        server.udp,
        &invite(
            "+18005550100",
            "+16505550123",
            "rec-untrusted",
            stranger.port(),
        ),
    );
    assert!(
        stranger
            .receive_within(Duration::from_millis(300))
            .is_none()
    );
    // An OPTIONS decides nothing.
    let options = String::from_utf8(invite("+18005550100", "+16505550123", "rec-options", 1))
        .unwrap()
        .replace("INVITE", "OPTIONS");
    client.send(server.udp, options.as_bytes());
    assert!(client.receive_within(Duration::from_secs(2)).is_some());

    assert!(
        wait_until(Duration::from_secs(5), || metric_value(
            &scrape(admin),
            "switchboard_records_written_total"
        ) == Some(4.0)),
        "{}",
        scrape(admin)
    );
    let metrics = scrape(admin);
    assert_eq!(
        metric_value(&metrics, "switchboard_records_retransmissions_total"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "switchboard_records_dropped_total{reason=\"queue_full\"}"
        ),
        Some(0.0)
    );
    let hash = metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_routing_data_info{hash=\""))
        .and_then(|rest| rest.split('"').next())
        .expect("the data's hash")
        .to_owned();

    // `/calls`: behind the token, newest first, by either number.
    let calls = http(admin, "GET", "/calls?number=%2B16505550123", "");
    assert_eq!(calls.code, 401);
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let calls = http(admin, "GET", "/calls?number=%2B16505550123", &auth);
    assert_eq!(calls.code, 200, "{}", calls.body);
    let listed: Vec<Value> = serde_json::from_str(&calls.body).unwrap();
    let ids: Vec<&str> = listed
        .iter()
        .map(|r| r["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["rec-tcp", "rec-404", "rec-302"]);
    let calls = http(admin, "GET", "/calls?number=4155550101&limit=1", &auth);
    let listed: Vec<Value> = serde_json::from_str(&calls.body).unwrap();
    assert_eq!(listed.len(), 0, "targets are not matched: {}", calls.body);
    let calls = http(admin, "GET", "/calls?number=18005550111&limit=5", &auth);
    let listed: Vec<Value> = serde_json::from_str(&calls.body).unwrap();
    assert_eq!(listed.len(), 1, "{}", calls.body);
    assert_eq!(http(admin, "GET", "/calls?limit=0", &auth).code, 400);

    server.stop();
    let written = records_in(&records);
    let validator = validator();
    for record in &written {
        assert_valid(&validator, record);
        assert_eq!(record["data_version"], Value::String(hash.clone()));
    }
    let by_call: HashMap<&str, &Value> = written
        .iter()
        .map(|r| (r["call_id"].as_str().unwrap(), r))
        .collect();
    assert_eq!(written.len(), 4);
    assert_eq!(by_call.len(), 4);
    let ids: HashSet<&str> = written.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4);
    let routed = by_call["rec-302"];
    assert_eq!(routed["status"], 302);
    assert_eq!(routed["rule"], "number_user");
    assert_eq!(routed["user"], "alice");
    assert_eq!(routed["dialed"], "+18005550100");
    assert_eq!(routed["caller"], "+16505550123");
    assert_eq!(routed["transport"], "udp");
    assert_eq!(routed["targets"][0]["target"], "+14155550101");
    assert_eq!(by_call["rec-tcp"]["transport"], "tcp");
    assert_eq!(by_call["rec-404"]["status"], 404);
    assert_eq!(by_call["rec-404"]["account"], Value::Null);
    let unavailable = by_call["rec-480"];
    assert_eq!(unavailable["status"], 480);
    assert_eq!(unavailable["rule"], "contact_owner");
    assert_eq!(unavailable["caller"], "+16505550124");
    assert_eq!(unavailable["dialed"], "+18005550111");
}

#[test]
fn files_rotate_under_load_and_a_tailing_reader_sees_every_record_once() {
    const CALLS: usize = 1500;
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    let config = dir.path().join("switchboard.yaml");
    std::fs::write(
        &config,
        format!(
            "records:\n  dir: {}\n  instance: rot\n  rotate_bytes: 16384\n",
            records.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(&[
        "--routing",
        &example_data(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let tail = {
        let stop = Arc::clone(&stop);
        let dir = records.clone();
        std::thread::spawn(move || tail_lines(&dir, CALLS, &stop))
    };
    let client = UdpClient::new();
    for window in 0..CALLS / 50 {
        for i in 0..50 {
            let id = format!("load-{}", window * 50 + i);
            client.send(
                server.udp,
                &invite("+18005550100", "+16505550123", &id, client.port()),
            );
        }
        for _ in 0..50 {
            client
                .receive_within(Duration::from_secs(5))
                .expect("an answer");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tail.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let seen = tail.join().expect("the reader");
    if seen.len() != CALLS {
        let names: Vec<_> = std::fs::read_dir(&records)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        eprintln!("files: {names:?}");
    }
    let ids: HashSet<&str> = seen.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let calls: HashSet<&str> = seen
        .iter()
        .map(|r| r["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(seen.len(), CALLS, "the reader saw every record once");
    assert_eq!(ids.len(), CALLS);
    assert_eq!(calls.len(), CALLS);
    // Masked by default without a webhook (docs/security.md).
    assert_eq!(seen[0]["caller"], "+1******0123");
    assert_eq!(seen[0]["dialed"], "+1******0100");
    server.stop();
    let rotated = std::fs::read_dir(&records)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("rot-") && name.ends_with(".jsonl")
        })
        .count();
    assert!(rotated >= 3, "{rotated} rotated files");
    let validator = validator();
    for record in records_in(&records) {
        assert_valid(&validator, &record);
    }
}

/// Reads `dir/*.jsonl` as a shipper does (Vector's `file` source,
/// Fluent Bit's `tail`): each file known by its inode with an offset, so
/// a rotation by rename is the same file under a new name, and the new
/// `INSTANCE.jsonl` a new one. Returns the records read, after `want` or
/// when told to stop.
fn tail_lines(dir: &Path, want: usize, stop: &AtomicBool) -> Vec<Value> {
    let mut seen = Vec::new();
    // inode → bytes consumed (whole lines only).
    let mut offsets: HashMap<u64, u64> = HashMap::new();
    while seen.len() < want && !stop.load(Ordering::Relaxed) {
        let mut progressed = false;
        let Ok(entries) = std::fs::read_dir(dir) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue; // renamed between the listing and the open
            };
            let inode = file.metadata().unwrap().ino();
            let offset = offsets.entry(inode).or_insert(0);
            let mut bytes = Vec::new();
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(*offset)).unwrap();
            file.read_to_end(&mut bytes).unwrap();
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in bytes[..whole]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
            {
                seen.push(serde_json::from_slice(line).expect("a whole record per line"));
            }
            *offset += whole as u64;
            progressed |= whole > 0;
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    seen
}

/// A webhook receiver: verifies each POST's signature, keeps every record
/// delivered by id, and answers 503 while down.
struct Receiver {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<Received>>,
}

#[derive(Default)]
struct Received {
    /// Record id → the record as first delivered.
    records: HashMap<String, Value>,
    /// webhook-id → the body as first delivered.
    bodies: HashMap<String, Vec<u8>>,
    call_ids: HashSet<String>,
    /// Deliveries of a record or a webhook-id that differed from the first.
    differing: Vec<String>,
    bad_signatures: usize,
    refused: usize,
    /// webhook-ids answered 503, and those answered 2xx.
    refused_ids: HashSet<String>,
    delivered_ids: HashSet<String>,
}

impl Receiver {
    fn start(key: Vec<u8>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(Received::default()));
        {
            let (down, stop, state) = (down.clone(), stop.clone(), state.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = serve_post(stream, &key, &down, &state);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        Receiver {
            addr,
            down,
            stop,
            state,
        }
    }

    fn delivered(&self) -> usize {
        self.state.lock().unwrap().call_ids.len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_post(
    mut stream: TcpStream,
    key: &[u8],
    down: &AtomicBool,
    state: &Mutex<Received>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut headers = HashMap::new();
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let answer = |stream: &mut TcpStream, status: &str, extra: &str| {
        write!(
            stream,
            "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
    };
    let id = headers.get("webhook-id").cloned().unwrap_or_default();
    let timestamp = headers
        .get("webhook-timestamp")
        .cloned()
        .unwrap_or_default();
    let signature = headers
        .get("webhook-signature")
        .cloned()
        .unwrap_or_default();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let mut state = state.lock().unwrap();
    if !signature.split(' ').any(|s| s == expected) {
        state.bad_signatures += 1;
        return answer(&mut stream, "400 Bad Request", "");
    }
    // Refused or not, a webhook-id always carries the same body.
    if let Some(first) = state.bodies.get(&id)
        && *first != body
    {
        state.differing.push(format!("webhook-id {id}"));
    }
    state
        .bodies
        .entry(id.clone())
        .or_insert_with(|| body.clone());
    if down.load(Ordering::Relaxed) {
        state.refused += 1;
        state.refused_ids.insert(id);
        drop(state);
        return answer(&mut stream, "503 Service Unavailable", "Retry-After: 1\r\n");
    }
    state.delivered_ids.insert(id);
    let batch: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
    for record in batch {
        let record_id = record["id"].as_str().unwrap().to_owned();
        state
            .call_ids
            .insert(record["call_id"].as_str().unwrap().to_owned());
        match state.records.get(&record_id) {
            Some(first) if *first != record => state.differing.push(record_id),
            Some(_) => {}
            None => {
                state.records.insert(record_id, record);
            }
        }
    }
    drop(state);
    answer(&mut stream, "204 No Content", "")
}

#[test]
fn the_webhook_gets_every_record_across_an_outage_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    let key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let secret = dir.path().join("webhook.secret");
    std::fs::write(&secret, format!("whsec_{}\n", STANDARD.encode(&key))).unwrap();
    let receiver = Receiver::start(key);
    let url = format!("http://{}/hook", receiver.addr);
    let args = [
        "--routing",
        &example_data(),
        "--records-dir",
        records.to_str().unwrap(),
        "--records-webhook",
        &url,
        "--records-webhook-secret-file",
        secret.to_str().unwrap(),
        "--admin",
        "127.0.0.1:0",
    ];
    let server = Server::start_with(&args);
    let client = UdpClient::new();
    let mut placed = 0;
    let mut place = |server: &Server, n: usize| {
        for _ in 0..n {
            placed += 1;
            let id = format!("hook-{placed}");
            assert_eq!(
                call(&client, server.udp, "+18005550100", "+16505550123", &id),
                302
            );
        }
    };
    place(&server, 20);
    assert!(
        wait_until(Duration::from_secs(15), || receiver.delivered() == 20),
        "delivered {}",
        receiver.delivered()
    );

    // The receiver goes down; calls go on and reach the disk.
    receiver.down.store(true, Ordering::Relaxed);
    place(&server, 30);
    assert!(wait_until(Duration::from_secs(10), || records_in(&records)
        .len()
        == 50));
    assert!(wait_until(Duration::from_secs(10), || receiver
        .state
        .lock()
        .unwrap()
        .refused
        > 0));
    let admin = server.admin.expect("admin");
    let metrics = scrape(admin);
    assert!(metric_value(&metrics, "switchboard_webhook_failed_total").unwrap_or(0.0) >= 1.0);
    assert!(
        metric_value(&metrics, "switchboard_records_spool_bytes").unwrap_or(0.0) > 0.0,
        "{metrics}"
    );

    // Killed during the outage, without a chance to say anything.
    let refused_before_kill = receiver.state.lock().unwrap().refused_ids.clone();
    let killed = Command::new("kill")
        .args(["-KILL", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(server);
    let server = Server::start_with(&args);
    place(&server, 10);
    std::thread::sleep(Duration::from_millis(1500));
    receiver.down.store(false, Ordering::Relaxed);
    assert!(
        wait_until(Duration::from_secs(40), || receiver.delivered() == 60),
        "delivered {} of 60",
        receiver.delivered()
    );
    let admin = server.admin.expect("admin");
    assert!(wait_until(Duration::from_secs(5), || metric_value(
        &scrape(admin),
        "switchboard_webhook_lag_seconds"
    ) == Some(0.0)));
    server.stop();
    let state = receiver.state.lock().unwrap();
    assert_eq!(state.bad_signatures, 0);
    // The batch being sent when the server was killed was sent again by
    // the next run: the same webhook-id, and (checked above) the same body.
    assert!(
        refused_before_kill
            .iter()
            .any(|id| state.delivered_ids.contains(id)),
        "refused before the kill: {refused_before_kill:?}; delivered: {:?}",
        state.delivered_ids
    );
    assert!(state.differing.is_empty(), "{:?}", state.differing);
    let validator = validator();
    for record in state.records.values() {
        assert_valid(&validator, record);
        // Full numbers by default with a webhook (docs/security.md).
        assert_eq!(record["caller"], "+16505550123");
    }
    assert_eq!(state.records.len(), 60);
}

/// A running server started by this file (in a mount namespace of its own).
struct Spawned {
    child: Child,
    udp: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut command: Command) -> Spawned {
    let mut child = command
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut udp, mut admin) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (udp.is_none() || admin.is_none()) && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!(
                "switchboard in a mount namespace of its own did not start: this test needs \
                 root (unshare -m and mount -t tmpfs)"
            );
        };
        let addr = line.rsplit(' ').next().and_then(|a| a.parse().ok());
        if line.starts_with("listening on udp ") {
            udp = addr;
        } else if line.starts_with("listening on http ") {
            admin = addr;
        }
    }
    Spawned {
        child,
        udp: udp.expect("udp"),
        admin: admin.expect("admin"),
    }
}

#[test]
fn a_full_disk_drops_records_counted_while_calls_are_answered_then_writing_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("records");
    std::fs::create_dir(&mount).unwrap();
    let mut command = Command::new("unshare");
    command
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=256k,mode=0700 tmpfs \"$0\" && exec \"$@\"")
        .arg(&mount)
        .arg(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--routing", &example_data()])
        .args(["--listen", "127.0.0.1:0", "--workers", "2"])
        .args(["--admin", "127.0.0.1:0", "--records-dir"])
        .arg(&mount);
    let server = spawn(command);
    // The server's view of its tmpfs, from outside its namespace.
    let inside = PathBuf::from(format!("/proc/{}/root", server.child.id()))
        .join(mount.strip_prefix("/").unwrap());
    let filler = inside.join("filler");
    {
        let mut file = std::fs::File::create(&filler).expect("the tmpfs");
        let chunk = vec![0u8; 4096];
        let mut filled = false;
        for _ in 0..1024 {
            if file
                .write_all(&chunk)
                .and_then(|()| file.sync_all())
                .is_err()
            {
                filled = true;
                break;
            }
        }
        assert!(filled, "the 256 KiB tmpfs did not fill up");
    }
    let client = UdpClient::new();
    for i in 0..40 {
        let id = format!("full-{i}");
        assert_eq!(
            call(&client, server.udp, "+18005550100", "+16505550123", &id),
            302
        );
    }
    let dropped = "switchboard_records_dropped_total{reason=\"write_failed\"}";
    assert!(
        wait_until(Duration::from_secs(5), || metric_value(
            &scrape(server.admin),
            dropped
        ) == Some(40.0)),
        "{}",
        scrape(server.admin)
    );
    assert_eq!(
        metric_value(&scrape(server.admin), "switchboard_records_written_total"),
        Some(0.0)
    );

    // Space returns: so do the records.
    std::fs::remove_file(&filler).unwrap();
    for i in 0..10 {
        let id = format!("back-{i}");
        assert_eq!(
            call(&client, server.udp, "+18005550100", "+16505550123", &id),
            302
        );
    }
    assert!(wait_until(Duration::from_secs(5), || metric_value(
        &scrape(server.admin),
        "switchboard_records_written_total"
    ) == Some(10.0)));
    let written = records_in(&inside);
    let calls: Vec<&str> = written
        .iter()
        .map(|r| r["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(calls.len(), 10, "{calls:?}");
    assert!(calls.iter().all(|c| c.starts_with("back-")));
}

#[test]
fn probes_answer_within_a_second_under_1000_idle_or_trickling_connections() {
    let server = Server::start_with(&["--routing", &example_data(), "--admin", "127.0.0.1:0"]);
    let admin = server.admin.expect("admin");
    let mut idle = Vec::new();
    for i in 0..1000 {
        let mut stream = TcpStream::connect(admin).expect("connect");
        if i % 2 == 0 {
            // Trickling: a head that never ends.
            stream.write_all(b"GET /metr").expect("write");
        }
        idle.push(stream);
    }
    for round in 0..3 {
        for path in ["/healthz", "/readyz"] {
            let mut probe = TcpStream::connect_timeout(&admin, Duration::from_secs(1))
                .unwrap_or_else(|e| panic!("{path}, round {round}: connect: {e}"));
            probe
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            write!(probe, "GET {path} HTTP/1.1\r\nHost: k8s\r\n\r\n").unwrap();
            let mut answer = String::new();
            probe
                .read_to_string(&mut answer)
                .unwrap_or_else(|e| panic!("{path}, round {round}: no answer within 1 s: {e}"));
            assert!(answer.starts_with("HTTP/1.1 200 "), "{path}: {answer:?}");
        }
        for stream in idle.iter_mut().step_by(2) {
            let _ = stream.write_all(b"i");
        }
    }
    drop(idle);
}

#[test]
fn a_webhook_answering_410_stops_delivery_loudly_and_keeps_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    let secret = dir.path().join("webhook.secret");
    std::fs::write(&secret, format!("whsec_{}\n", STANDARD.encode([7u8; 32]))).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/gone", listener.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let posts = Arc::new(Mutex::new(0usize));
    let gone = {
        let (stop, posts) = (stop.clone(), posts.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let mut length = 0usize;
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                *posts.lock().unwrap() += 1;
                let mut stream = stream;
                let _ = stream.write_all(
                    b"HTTP/1.1 410 Gone\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        })
    };
    let log = dir.path().join("server.log");
    let server = Server::start_logging(
        &[
            "--routing",
            &example_data(),
            "--records-dir",
            records.to_str().unwrap(),
            "--records-webhook",
            &url,
            "--records-webhook-secret-file",
            secret.to_str().unwrap(),
            "--admin",
            "127.0.0.1:0",
        ],
        &log,
    );
    let admin = server.admin.expect("admin");
    let client = UdpClient::new();
    for i in 0..3 {
        let id = format!("gone-{i}");
        assert_eq!(
            call(&client, server.udp, "+18005550100", "+16505550123", &id),
            302
        );
    }
    assert!(wait_until(Duration::from_secs(10), || metric_value(
        &scrape(admin),
        "switchboard_webhook_stopped"
    ) == Some(1.0)));
    // Stopped: more calls are written, not sent.
    assert_eq!(
        call(
            &client,
            server.udp,
            "+18005550100",
            "+16505550123",
            "gone-3"
        ),
        302
    );
    assert!(wait_until(Duration::from_secs(5), || records_in(&records)
        .len()
        == 4));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(*posts.lock().unwrap(), 1, "one POST, then no more");
    let metrics = scrape(admin);
    assert_eq!(
        metric_value(&metrics, "switchboard_webhook_delivered_total"),
        Some(0.0)
    );
    server.stop();
    stop.store(true, Ordering::Relaxed);
    gone.join().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("ERROR") && text.contains("410 Gone") && text.contains("STOPPED"),
        "{text}"
    );
}

#[test]
fn unusable_records_settings_stop_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "not-a-standard-webhooks-secret\n").unwrap();
    let records = dir.path().join("records");
    let cases: [(&[&str], &str); 3] = [
        (
            &["--records-webhook", "http://127.0.0.1:9/"],
            "records.webhook needs records.dir",
        ),
        (
            &[
                "--records-dir",
                records.to_str().unwrap(),
                "--records-webhook",
                "http://127.0.0.1:9/",
                "--records-webhook-secret-file",
                secret.to_str().unwrap(),
            ],
            "whsec_",
        ),
        (
            &[
                "--records-dir",
                records.to_str().unwrap(),
                "--records-numbers",
                "hmac",
            ],
            "hmac_key_file",
        ),
    ];
    for (args, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "serve",
                "--routing",
                &example_data(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("switchboard runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn probes_are_answered_past_the_admin_connection_cap() {
    // The cap is 4,096 waiting connections (server/admin.rs): past it the
    // longest-waiting one is closed, never the newcomer.
    const HELD: usize = 4_400;
    let server = Server::start_with(&["--routing", &example_data(), "--admin", "127.0.0.1:0"]);
    let admin = server.admin.expect("admin");
    let mut held = Vec::with_capacity(HELD);
    for _ in 0..HELD {
        held.push(TcpStream::connect(admin).expect("connect"));
    }
    let mut probe = TcpStream::connect_timeout(&admin, Duration::from_secs(1)).expect("connect");
    probe
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    write!(probe, "GET /healthz HTTP/1.1\r\nHost: k8s\r\n\r\n").unwrap();
    let mut answer = String::new();
    probe
        .read_to_string(&mut answer)
        .expect("an answer within 1 s");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:?}");
    // The oldest held connections were the ones closed.
    let mut closed = 0;
    for stream in held.iter_mut().take(HELD - 4_096) {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => closed += 1,
            Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                closed += 1
            }
            _ => {}
        }
    }
    assert_eq!(closed, HELD - 4_096, "the oldest connections are closed");
}

/// A phone for proxy mode on a UDP socket: answers the first INVITE it is
/// sent `first`, the next ones 200, acknowledging nothing (the proxy's
/// ACKs and the caller's come and go).
fn phone(first: u16) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let addr = socket.local_addr().expect("address");
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_535];
        let mut invites = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && invites < 2 {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !request.starts_with("INVITE ") {
                continue;
            }
            invites += 1;
            let code = if invites == 1 { first } else { 200 };
            let mut answer = format!("SIP/2.0 {code} Answer\r\n");
            for line in request.lines() {
                let lower = line.to_ascii_lowercase();
                if ["via:", "from:", "call-id:", "cseq:"]
                    .iter()
                    .any(|h| lower.starts_with(h))
                {
                    answer.push_str(line.trim_end());
                    answer.push_str("\r\n");
                } else if lower.starts_with("to:") {
                    answer.push_str(line.trim_end());
                    answer.push_str(";tag=phone\r\n");
                }
            }
            answer.push_str("Contact: <sip:phone@127.0.0.1>\r\nContent-Length: 0\r\n\r\n");
            let _ = socket.send_to(answer.as_bytes(), from);
        }
    });
    (addr, thread)
}

#[test]
fn a_relayed_call_is_recorded_once_with_its_outcome() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let records = dir.path().join("records");
    std::fs::create_dir(&records).expect("records dir");
    let settings = dir.path().join("switchboard.yaml");
    // A short T1: the call ends (Timer L/M) soon after its answer.
    std::fs::write(&settings, "proxy:\n  t1_ms: 20\n").expect("settings");
    let (next_hop, phone) = phone(486);
    let server = Server::start_with(&[
        "--config",
        &settings.display().to_string(),
        "--routing",
        &example_data(),
        "--records-dir",
        &records.display().to_string(),
        "--mode",
        "proxy",
        "--next-hop",
        &format!("sip:{next_hop}"),
    ]);
    let client = UdpClient::new();
    let port = client.port();
    // The support line: Alice, busy, then the forwarding number answers.
    client.send(
        server.udp,
        &invite("+18005550188", "+12125550199", "relayed", port),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut statuses = Vec::new();
    while Instant::now() < deadline && !statuses.contains(&200) {
        if let Some(answer) = client.receive_within(Duration::from_millis(200)) {
            statuses.push(status(&String::from_utf8_lossy(&answer)));
        }
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    phone.join().expect("the phone");
    let mut found = Vec::new();
    // A failed leg keeps its transaction for Timer D (32 s) before the
    // call ends and its record is written.
    let done = wait_until(Duration::from_secs(45), || {
        found = records_in(&records);
        !found.is_empty()
    });
    assert!(done, "no record of the relayed call");
    assert_eq!(found.len(), 1, "{found:?}");
    let record = &found[0];
    assert_valid(&validator(), record);
    assert_eq!(record["call_id"], "relayed");
    assert_eq!(record["status"], 200);
    let proxy = &record["proxy"];
    assert_eq!(proxy["final_status"], 200, "{record}");
    assert_eq!(proxy["answered_by"], 1, "{record}");
    assert_eq!(proxy["cancelled_by_caller"], false);
    let legs: Vec<(u64, &str)> = proxy["legs"]
        .as_array()
        .expect("legs")
        .iter()
        .map(|leg| {
            (
                leg["status"].as_u64().unwrap_or(0),
                leg["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(legs, [(486, "busy"), (200, "answered")], "{record}");
}
