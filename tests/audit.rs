//! The reload audit trail and the admin endpoints that reveal routing data,
//! on the real binary: `/reloads` and `/route` behind a bearer token set by
//! `admin_token_file`, a number reassigned the way the CRM writes files
//! (a temporary file renamed over the old one), a broken file that changes
//! nothing, and the endpoints absent without a token.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Http, Server, UdpClient, header, invite, status};
use serde_json::Value;

const TOKEN: &str = "2f6c1e0b9a-test-token";

/// One account: +18005550100 assigned to `user`; alice and bob both have
/// phones.
fn acme(user: &str) -> String {
    format!(
        "accounts:\n  - id: acme\n    forward_to: \"+14155550000\"\n    users:\n      - id: alice\n        phone: \"+14155550101\"\n      - id: bob\n        phone: \"+14155550102\"\n    numbers:\n      - number: \"+18005550100\"\n        user: {user}\n      - number: \"+18005550111\"\n"
    )
}

const GLOBEX: &str = "accounts:\n  - id: globex\n    numbers:\n      - number: \"+18005550177\"\n        forward_to: \"+14155550177\"\n";

/// One HTTP/1.1 GET with an optional bearer token.
fn get(admin: SocketAddr, path: &str, token: Option<&str>) -> Http {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    common::http(admin, "GET", path, &auth)
}

fn json(response: &Http) -> Value {
    assert_eq!(response.code, 200, "{}\n{}", response.head, response.body);
    assert!(
        response.head.contains("Content-Type: application/json"),
        "{}",
        response.head
    );
    serde_json::from_str(&response.body).expect("JSON")
}

fn reloads(admin: SocketAddr) -> Vec<Value> {
    match json(&get(admin, "/reloads", Some(TOKEN))) {
        Value::Array(records) => records,
        other => panic!("not a list: {other}"),
    }
}

/// Waits (bounded) for the trail to hold `count` records.
fn wait_for_reloads(admin: SocketAddr, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let records = reloads(admin);
        if records.len() >= count {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{count} reload(s) not recorded: {records:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What `switchboard route --json` says for this data.
fn cli_route(routing: &Path, to: &str) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["route", "--json", "--to", to, "--routing"])
        .arg(routing)
        .output()
        .expect("switchboard route runs");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// Replaces `file` as the CRM does: a temporary file renamed over it.
fn replace(file: &Path, contents: &str) {
    let tmp = file.with_file_name(".next.tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// The settings file: the token file and a short debounce.
fn settings(dir: &Path, token_file: Option<&Path>) -> String {
    let settings = dir.join("switchboard.yaml");
    let mut text = "reload:\n  debounce_ms: 20\n  poll_seconds: 1\n".to_owned();
    if let Some(file) = token_file {
        text.push_str(&format!("admin_token_file: {}\n", file.display()));
    }
    std::fs::write(&settings, text).unwrap();
    settings.display().to_string()
}

#[test]
fn a_reassignment_shows_in_reloads_and_route_and_a_broken_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let acme_file = data.join("acme.yaml");
    std::fs::write(&acme_file, acme("alice")).unwrap();
    std::fs::write(data.join("globex.yaml"), GLOBEX).unwrap();
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let server = Server::start_with(&[
        "--config",
        &settings(dir.path(), Some(&token_file)),
        "--routing",
        &data.display().to_string(),
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = server.admin.expect("the admin address");

    // No reload yet; the route is alice's, exactly as the command says.
    assert!(reloads(admin).is_empty());
    let before = json(&get(admin, "/route?to=%2B18005550100", Some(TOKEN)));
    assert_eq!(before["user"], "alice", "{before}");
    assert_eq!(before, cli_route(&data, "+18005550100"));

    // Without the token, or with a wrong one: 401 and a Bearer challenge.
    for path in ["/reloads", "/route?to=%2B18005550100"] {
        for token in [None, Some("wrong"), Some(&TOKEN[..TOKEN.len() - 1])] {
            let refused = get(admin, path, token);
            assert_eq!(refused.code, 401, "{path} {token:?}");
            assert!(
                refused.head.contains("\r\nWWW-Authenticate: Bearer"),
                "{}",
                refused.head
            );
            assert!(!refused.body.contains("alice"), "{}", refused.body);
        }
    }
    // The other endpoints need no token and are as they were.
    assert_eq!(get(admin, "/healthz", None).body, "ok\n");
    assert_eq!(get(admin, "/metrics", None).code, 200);

    // The CRM reassigns the number to bob.
    let replaced = Instant::now();
    replace(&acme_file, &acme("bob"));
    let records = wait_for_reloads(admin, 1);
    let within_ms = replaced.elapsed().as_secs_f64() * 1e3;
    let record = &records[0];
    assert_eq!(record["outcome"], "ok", "{record}");
    assert!(
        record["trigger"] == "watch" || record["trigger"] == "poll",
        "{record}"
    );
    assert_eq!(record["files"], 2, "{record}");
    assert_eq!(record["parsed"], 1, "{record}");
    assert_eq!(record["reused"], 1, "{record}");
    // A number of milliseconds (to the microsecond): reading and parsing a
    // file takes some, and no more than the wait for the record.
    let duration_ms = record["duration_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("duration_ms is not a number: {record}"));
    assert!(
        duration_ms.is_finite() && duration_ms > 0.0 && duration_ms <= within_ms,
        "duration_ms {duration_ms}, expected in (0, {within_ms}]: {record}"
    );
    assert!(record["time"].as_str().unwrap().ends_with('Z'), "{record}");
    assert_eq!(record["counts"]["numbers_reassigned"], 1, "{record}");
    assert_eq!(record["summary"], "1 number reassigned", "{record}");
    assert!(record["errors"].is_null(), "{record}");
    let changes = &record["changes"]["accounts"];
    assert_eq!(changes.as_array().map(Vec::len), Some(1), "{record}");
    assert_eq!(changes[0]["account"], "acme", "{record}");
    assert_eq!(
        changes[0]["numbers_reassigned"][0],
        serde_json::json!({"number": "+18005550100", "from": "alice", "to": "bob"}),
        "{record}"
    );

    // `/route` answers the new way; a leading `+` unencoded reads as `+`.
    let after = json(&get(
        admin,
        "/route?to=+18005550100&from=+16505550123",
        Some(TOKEN),
    ));
    assert_eq!(after["user"], "bob", "{after}");
    assert_eq!(after["target"], "+14155550102", "{after}");
    let cli = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["route", "--json", "--to", "+18005550100"])
        .args(["--from", "+16505550123", "--routing"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(
        get(
            admin,
            "/route?to=%2B18005550100&from=%2B16505550123",
            Some(TOKEN)
        )
        .body
        .as_bytes(),
        cli.stdout,
        "the body is the command's output, byte for byte"
    );
    assert_eq!(get(admin, "/route", Some(TOKEN)).code, 400);
    assert_eq!(get(admin, "/route?to=1&too=2", Some(TOKEN)).code, 400);

    // Broken YAML replaced in: listed with its error, newest first; the
    // last good table keeps answering, over HTTP and over SIP.
    replace(&acme_file, "accounts: [\n");
    let records = wait_for_reloads(admin, 2);
    assert_eq!(records.len(), 2, "{records:?}");
    let failed = &records[0];
    assert_eq!(failed["outcome"], "failed", "{failed}");
    let errors = failed["errors"].as_str().expect("the report");
    assert!(errors.contains("acme.yaml"), "{errors}");
    assert!(errors.contains("error:"), "{errors}");
    assert!(failed["changes"].is_null(), "{failed}");
    assert_eq!(records[1]["outcome"], "ok");
    let still = json(&get(admin, "/route?to=%2B18005550100", Some(TOKEN)));
    assert_eq!(still["user"], "bob", "{still}");
    let client = UdpClient::new();
    let answer = client.exchange(
        server.udp,
        &invite("+18005550100", "+16505550123", "audit-1", client.port()),
    );
    assert_eq!(status(&answer), 302, "{answer}");
    let contact = header(&answer, "Contact").expect("a Contact");
    assert!(contact.contains("+14155550102"), "{contact}");
    // The same broken file seen again (the poll) is not listed twice.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(reloads(admin).len(), 2);
}

#[test]
fn without_a_token_the_routing_endpoints_do_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("acme.yaml");
    std::fs::write(&data, acme("alice")).unwrap();
    let server = Server::start_with(&[
        "--config",
        &settings(dir.path(), None),
        "--routing",
        &data.display().to_string(),
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = server.admin.expect("the admin address");
    for path in ["/reloads", "/route?to=%2B18005550100"] {
        for token in [None, Some(TOKEN)] {
            let answer = get(admin, path, token);
            assert_eq!(answer.code, 404, "{path}: {}", answer.body);
            assert!(!answer.head.contains("WWW-Authenticate"));
        }
    }
    assert_eq!(get(admin, "/healthz", None).code, 200);
    assert_eq!(get(admin, "/readyz", None).code, 200);
}

#[test]
fn an_empty_or_missing_token_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("acme.yaml");
    std::fs::write(&data, acme("alice")).unwrap();
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    for (token_file, expected) in [
        (empty.clone(), "empty"),
        (dir.path().join("absent"), "cannot read it"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(["--config", &settings(dir.path(), Some(&token_file))])
            .arg("--routing")
            .arg(&data)
            .env_remove("RUST_LOG")
            .output()
            .expect("switchboard runs");
        assert!(!output.status.success(), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("admin_token_file") && stderr.contains(expected),
            "{stderr}"
        );
        assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"));
    }
}
