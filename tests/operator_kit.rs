//! The operator's kit (docs/operations.md) against the real server: every
//! metric the Grafana dashboard (deploy/grafana/switchboard.json) and the
//! Prometheus alerts (deploy/prometheus/alerts.yml) query is one the running
//! binary exports, with the labels they select on; the alerts pass
//! `promtool check rules` and their unit tests (`promtool test rules`), which
//! make every alert fire; the dashboard is importable (a templated data
//! source and instance); and the Debian package's settings and assets exist.
//!
//! Adding a panel or an alert for a new feature (TLS, say) needs no change
//! here beyond [`start_server`]: start the server with that feature on and
//! send it the traffic that makes its series exist.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tls::{ServerFiles, TlsClient};
use common::{
    Server, TcpClient, UdpClient, example_data, invite, project_path, request, require, status,
};
use serde_json::Value;

/// How long one promtool run may take.
const PROMTOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// Labels Prometheus adds to every series it scrapes: never in `/metrics`.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

fn read(relative: &str) -> String {
    std::fs::read_to_string(project_path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The server as the kit watches it: the example data, the admin endpoint,
/// and a TLS listener with a test certificate. A feature whose metrics the
/// dashboard or the alerts query must be on here.
fn start_server(tls: &ServerFiles) -> Server {
    let mut args = vec![
        "--routing".to_owned(),
        example_data(),
        "--admin".to_owned(),
        "127.0.0.1:0".to_owned(),
        // Proxy mode for a network that sends nothing here: its series
        // are exported, and every INVITE of the test still gets its 302.
        "--proxy-peer".to_owned(),
        "192.0.2.0/24".to_owned(),
    ];
    args.extend(tls.args());
    // Call records with a webhook, so that their series exist: nothing
    // listens at the URL (the failures are counted, which is all the kit
    // needs), and the files go under the tests' scratch directory.
    let records = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("operator-kit-records-{}", std::process::id()));
    std::fs::create_dir_all(&records).expect("a records directory");
    let secret = records.join("webhook.secret");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").expect("a secret");
    args.extend([
        "--records-dir".to_owned(),
        records.display().to_string(),
        "--records-webhook".to_owned(),
        "http://127.0.0.1:9/records".to_owned(),
        "--records-webhook-secret-file".to_owned(),
        secret.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(&args)
}

/// Sends SIP over UDP, TCP and TLS (an INVITE answered 302, an OPTIONS answered
/// 200, an INVITE to an unknown number answered 404) so that the labelled
/// series exist, then scrapes `/metrics` once they show.
fn scrape_after_traffic(server: &Server, tls_files: &ServerFiles) -> String {
    let admin = server.admin.expect("the admin address");
    let udp = UdpClient::new();
    let answer = udp.exchange(
        server.udp,
        &invite("+18005550100", "+16505550123", "kit-1", udp.port()),
    );
    assert_eq!(status(&answer), 302, "{answer}");
    let answer = udp.exchange(
        server.udp,
        &invite("+18005559999", "+16505550123", "kit-2", udp.port()),
    );
    assert_eq!(status(&answer), 404, "{answer}");
    let options = |transport: &str, port: u16| {
        request(
            &[
                "OPTIONS sip:127.0.0.1 SIP/2.0",
                &format!(
                    "Via: SIP/2.0/{transport} 127.0.0.1:{{port}};branch=z9hG4bK-kit-{transport}"
                ),
                "Max-Forwards: 70",
                "From: <sip:ping@127.0.0.1>;tag=kit",
                "To: <sip:127.0.0.1>",
                &format!("Call-ID: kit-options-{transport}"),
                "CSeq: 1 OPTIONS",
                "Content-Length: 0",
                "",
            ],
            port,
        )
    };
    let answer = udp.exchange(server.udp, &options("UDP", udp.port()));
    assert_eq!(status(&answer), 200, "{answer}");
    // A TCP connection stays open while the scrape runs: the connection gauge
    // has something to count.
    let mut tcp = TcpClient::connect(server.tcp);
    let port = tcp.port();
    tcp.send(&options("TCP", port));
    let answer = tcp.read_responses(1).remove(0);
    assert_eq!(status(&answer), 200, "{answer}");
    // And a TLS connection, open too: the TLS series exist.
    let tls = server.tls.expect("the TLS address");
    let mut tls = TlsClient::connect(tls, &tls_files.ca.cert_pem(), None).expect("a handshake");
    let answer = tls
        .exchange(&options("TLS", 5061))
        .expect("an answer over TLS");
    assert_eq!(status(&answer), 200, "{answer}");

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, body) = common::http_get(admin, "/metrics");
        assert_eq!(code, 200, "{body}");
        let seen = |series: &str| body.lines().any(|l| l.starts_with(series));
        if seen(r#"switchboard_requests_total{method="INVITE",code="302"}"#)
            && seen(r#"switchboard_requests_total{method="OPTIONS",code="200"} 3"#)
        {
            drop((tcp, tls));
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the traffic did not show in /metrics:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a scrape exports: each sample name with the label names seen on
/// it, and each family's type (`# TYPE`).
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<String, BTreeSet<String>>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut exposition = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split_whitespace();
                if let (Some(family), Some(kind)) = (words.next(), words.next()) {
                    exposition.types.insert(family.to_owned(), kind.to_owned());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..end];
            let labels = exposition.samples.entry(name.to_owned()).or_default();
            if line[end..].starts_with('{') {
                labels.extend(label_names(&line[end + 1..]));
            }
        }
        exposition
    }
}

/// The label names in `a="x",b=~"y"}...`: up to the closing brace, quoted
/// values (which may hold `,` `}` or escaped quotes) skipped.
fn label_names(after_brace: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut name = String::new();
    let mut chars = after_brace.chars();
    while let Some(c) = chars.next() {
        match c {
            '}' => break,
            '"' => {
                // A value: skip to its closing quote.
                let mut escaped = false;
                for v in chars.by_ref() {
                    match v {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
            }
            '=' | '!' | '~' => {
                if !name.is_empty() {
                    names.push(std::mem::take(&mut name));
                }
            }
            ',' | ' ' | '\n' | '\t' => name.clear(),
            c => name.push(c),
        }
    }
    names
}

/// A metric selector in a PromQL expression: its name and the label names
/// it matches on.
#[derive(Debug, PartialEq)]
struct Selector {
    name: String,
    labels: Vec<String>,
}

/// Every `switchboard_*` selector in a PromQL expression, parsed loosely:
/// an identifier that starts with `switchboard_` (not inside another
/// identifier), and the label matchers in braces right after it.
fn selectors(expr: &str) -> Vec<Selector> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = expr[from..].find("switchboard_") {
        let start = from + at;
        let end = expr[start..]
            .find(|c: char| !is_ident(c))
            .map_or(expr.len(), |n| start + n);
        from = end;
        if expr[..start].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = expr[end..].trim_start();
        let labels = match rest.strip_prefix('{') {
            Some(inside) => label_names(inside),
            None => Vec::new(),
        };
        found.push(Selector {
            name: expr[start..end].to_owned(),
            labels,
        });
    }
    found
}

/// What a query names that the scrape does not export: an unknown sample
/// name (a counter must be queried with its `_total`), a `_bucket`,
/// `_sum` or `_count` of a family that is not a histogram, or a label the
/// sample does not carry. Empty when all is exported.
fn missing(exposition: &Exposition, queried: &[Selector]) -> Vec<String> {
    let mut problems = Vec::new();
    for selector in queried {
        let name = &selector.name;
        let Some(labels) = exposition.samples.get(name) else {
            problems.push(format!("{name}: not exported"));
            continue;
        };
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(family) = name.strip_suffix(suffix) {
                let kind = exposition.types.get(family).map(String::as_str);
                if kind != Some("histogram") {
                    problems.push(format!("{name}: {family} is a {kind:?}, not a histogram"));
                }
            }
        }
        for label in &selector.labels {
            if !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                problems.push(format!("{name}: no label {label} (it has {labels:?})"));
            }
        }
    }
    problems
}

/// Every PromQL expression in the dashboard: its targets' `expr` and its
/// variables' queries, from anywhere in the JSON (rows nest panels).
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr" | "query" | "definition", Value::String(text)) => {
                            out.push(text.clone())
                        }
                        _ => walk(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/grafana/switchboard.json"))
        .expect("deploy/grafana/switchboard.json is JSON")
}

fn alerts() -> Value {
    serde_saphyr::from_str(&read("deploy/prometheus/alerts.yml"))
        .expect("deploy/prometheus/alerts.yml is YAML")
}

/// Every alerting rule: (name, expression).
fn alert_rules(alerts: &Value) -> Vec<(String, String)> {
    let groups = alerts["groups"].as_array().expect("groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .map(|rule| {
            (
                rule["alert"].as_str().expect("an alert name").to_owned(),
                rule["expr"].as_str().expect("an expr").to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_metric_the_dashboard_and_the_alerts_query_is_exported() {
    let tls = ServerFiles::new();
    let server = start_server(&tls);
    let scrape = Exposition::parse(&scrape_after_traffic(&server, &tls));

    let from_dashboard: Vec<Selector> = dashboard_queries(&dashboard())
        .iter()
        .flat_map(|q| selectors(q))
        .collect();
    let from_alerts: Vec<Selector> = alert_rules(&alerts())
        .iter()
        .flat_map(|(_, expr)| selectors(expr))
        .collect();
    for (what, queried, at_least) in [
        ("deploy/grafana/switchboard.json", &from_dashboard, 12),
        ("deploy/prometheus/alerts.yml", &from_alerts, 10),
    ] {
        // Not a check that passes on nothing: the files query many metrics.
        let names: BTreeSet<&str> = queried.iter().map(|s| s.name.as_str()).collect();
        assert!(
            names.len() >= at_least,
            "{what}: only {names:?} found; is the extraction broken?"
        );
        let problems = missing(&scrape, queried);
        assert!(
            problems.is_empty(),
            "{what} queries what the server does not export:\n  {}\nexported: {:?}",
            problems.join("\n  "),
            scrape.samples
        );
    }
}

/// The check above can fail: made-up names, a counter without `_total`, a
/// bucket of a gauge and a wrong label are each reported, against a real
/// scrape; real names with target labels are not.
#[test]
fn names_and_labels_the_server_does_not_export_are_reported() {
    let tls = ServerFiles::new();
    let server = start_server(&tls);
    let scrape = Exposition::parse(&scrape_after_traffic(&server, &tls));
    let query = r#"
        sum(rate(switchboard_made_up_total[5m]))
        + sum(rate(switchboard_requests[5m]))
        + histogram_quantile(0.9, rate(switchboard_routing_entries_bucket[5m]))
        + sum(rate(switchboard_dropped_total{cause="panic", instance=~"$instance"}[5m]))
        + histogram_quantile(0.9, sum by (le) (rate(switchboard_response_seconds_bucket{le!="", job="switchboard"}[5m])))
        + sum(rate(switchboard_requests_total{method="INVITE", code=~"5..", instance=~"$instance"}[5m]))
        + sum(notswitchboard_requests_total)
    "#;
    let found = selectors(query);
    assert_eq!(
        found.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        [
            "switchboard_made_up_total",
            "switchboard_requests",
            "switchboard_routing_entries_bucket",
            "switchboard_dropped_total",
            "switchboard_response_seconds_bucket",
            "switchboard_requests_total",
        ]
    );
    assert_eq!(found[3].labels, ["cause", "instance"]);
    let problems = missing(&scrape, &found);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for (problem, expected) in problems.iter().zip([
        "switchboard_made_up_total: not exported",
        "switchboard_requests: not exported",
        "switchboard_routing_entries_bucket: not exported",
        "switchboard_dropped_total: no label cause",
    ]) {
        assert!(problem.starts_with(expected), "{problem}");
    }
    // A histogram's suffixes checked against its family's type too.
    let gauge_sum = Exposition {
        samples: BTreeMap::from([("switchboard_gauge_sum".to_owned(), BTreeSet::new())]),
        types: BTreeMap::from([("switchboard_gauge".to_owned(), "gauge".to_owned())]),
    };
    assert_eq!(
        missing(&gauge_sum, &selectors("switchboard_gauge_sum")).len(),
        1
    );
}

/// Runs promtool with these arguments from the repository's root, bounded
/// in time; fails naming the package when promtool is not installed.
fn promtool(args: &[&str]) -> String {
    require("promtool", "prometheus");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("promtool.log");
    let file = std::fs::File::create(&log).expect("a log file");
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(project_path("."))
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("promtool starts");
    let deadline = Instant::now() + PROMTOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for promtool") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("promtool {args:?} took over {PROMTOOL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&log).expect("promtool's output");
    assert!(status.success(), "promtool {args:?}: {status}\n{output}");
    output
}

#[test]
fn the_alerts_pass_promtool_and_each_is_shown_to_fire() {
    let output = promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);
    let rules = alert_rules(&alerts());
    assert!(
        output.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "{output}"
    );
    let output = promtool(&["test", "rules", "deploy/prometheus/alerts.test.yml"]);
    assert!(output.contains("SUCCESS"), "{output}");

    // Every alert has a unit test in which it fires (and so a `for:` and
    // annotations that render).
    let tests: Value = serde_saphyr::from_str(&read("deploy/prometheus/alerts.test.yml"))
        .expect("alerts.test.yml is YAML");
    let mut fired = BTreeSet::new();
    for test in tests["tests"].as_array().expect("tests") {
        for case in test["alert_rule_test"].as_array().expect("alert_rule_test") {
            let expected = case["exp_alerts"].as_array().map_or(0, Vec::len);
            if expected > 0 {
                fired.insert(case["alertname"].as_str().expect("alertname").to_owned());
            }
        }
    }
    let names: BTreeSet<String> = rules.into_iter().map(|(name, _)| name).collect();
    let untested: Vec<_> = names.difference(&fired).collect();
    assert!(untested.is_empty(), "never shown to fire: {untested:?}");
}

#[test]
fn the_dashboard_is_importable_with_a_data_source_and_instance_variable() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "switchboard");
    assert!(dashboard["title"].is_string() && dashboard["schemaVersion"].is_u64());
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    let source = variable("DS_PROMETHEUS");
    assert_eq!(source["type"], "datasource");
    assert_eq!(source["query"], "prometheus");
    let instance = variable("instance");
    assert_eq!(instance["type"], "query");
    assert_eq!(instance["multi"], true);

    let data_source = serde_json::json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    let mut ids = BTreeSet::new();
    let mut targets = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        let id = panel["id"].as_u64().expect("a panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64(), grid["w"].as_u64());
        assert!(
            matches!((x, w), (Some(x), Some(w)) if w > 0 && x + w <= 24),
            "panel {id}: gridPos {grid}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"], data_source, "panel {id}");
        for target in panel["targets"].as_array().expect("targets") {
            targets += 1;
            assert_eq!(target["datasource"], data_source, "panel {id}");
            let expr = target["expr"].as_str().expect("an expr");
            // The instance variable narrows every query.
            for selector in selectors(expr) {
                assert!(
                    selector.labels.iter().any(|l| l == "instance"),
                    "panel {id}: {} ignores $instance in {expr}",
                    selector.name
                );
            }
            if !expr.contains("switchboard_") {
                assert!(expr.contains(r#"instance=~"$instance""#), "{expr}");
            }
        }
    }
    assert!(targets >= 15, "only {targets} queries");
}

/// The prose of docs/operations.md and the alert file agree: the file is
/// linked, and every alert it defines is named there.
#[test]
fn the_operations_guide_names_every_alert() {
    let guide = read("docs/operations.md");
    assert!(guide.contains("(../deploy/prometheus/alerts.yml)"));
    assert!(guide.contains("(../deploy/grafana/switchboard.json)"));
    for (name, _) in alert_rules(&alerts()) {
        assert!(
            guide.contains(&format!("`{name}`")),
            "docs/operations.md does not name {name}"
        );
    }
}

/// The Debian package's settings name the packaged data by its absolute
/// path, and every asset cargo deb is told to package exists.
#[test]
fn the_debian_package_settings_and_assets_exist() {
    let settings =
        switchboard::settings::Settings::from_file(&project_path("deploy/debian/switchboard.yaml"))
            .expect("deploy/debian/switchboard.yaml parses");
    settings.check_limits().expect("valid limits");
    assert_eq!(
        settings.routing.as_deref(),
        Some(std::path::Path::new("/etc/switchboard/routing.yaml"))
    );
    // The same settings as the example, but for the path.
    let example = read("config/switchboard.yaml");
    let packaged = read("deploy/debian/switchboard.yaml");
    let body = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("routing:"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(body(&example), body(&packaged));

    let manifest = read("Cargo.toml");
    let deb = manifest
        .split("[package.metadata.deb]")
        .nth(1)
        .expect("a [package.metadata.deb] section");
    let mut assets = 0;
    for line in deb.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("[\"") else {
            continue;
        };
        let source = rest.split('"').next().expect("a quoted source");
        assets += 1;
        if source.starts_with("target/release/") {
            continue;
        }
        let path = source.strip_suffix("/*.md").unwrap_or(source);
        assert!(project_path(path).exists(), "asset {source} missing");
    }
    assert!(assets >= 5, "{assets} assets");
    for script in ["postinst", "prerm", "postrm"] {
        let text = read(&format!("deploy/debian/maintainer-scripts/{script}"));
        // cargo deb replaces the token wherever it is, even inside a
        // comment (whose remainder then runs as commands): once, alone.
        let token = "#DEBHELPER#";
        assert_eq!(text.matches(token).count(), 1, "{script}: {token} not once");
        assert!(
            text.lines().any(|l| l == token),
            "{script}: {token} not alone on its line"
        );
    }
}
