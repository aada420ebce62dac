//! The compiled-data cache, through the real binary: a restart from the
//! cache answers every call as the YAML does, keeps reporting the data's
//! warnings with file and line, ignores and rebuilds entries that are
//! damaged, truncated, from another build or format, or of another file,
//! only warns when the directory cannot be written, and serves a file
//! changed under a running server (docs/operations.md, "Cache directory").

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Server, UdpClient, header, invite, status};
use serde_json::Value;

/// Account a: a user with a phone, one without (a warning at its line),
/// numbers and owned contacts.
const A: &str = "accounts:
  - id: a
    forward_to: \"+14155550000\"
    users:
      - id: bob
        phone: \"+14155550101\"
        numbers: [\"+18005550100\"]
      - id: carol
        numbers: [\"+18005550101\"]
    numbers:
      - number: \"+18005550100\"
      - number: \"+18005550101\"
      - number: \"+18005550102\"
    contacts:
      - phones: [\"+16505550123\", \"650-555-0124\"]
        user: bob
      - phones: [\"+16505550125\"]
        user: carol
";

/// Account b, in London: national spellings, a SIP phone, the contact's
/// owner first.
const B: &str = "accounts:
  - id: b
    region: GB
    forward_to: \"+442079460000\"
    ring_number_user_first: false
    users:
      - id: dee
        phone: \"sip:dee@pbx.example.net\"
      - id: eve
        phone: \"+442079460002\"
        numbers: [\"+442079460100\"]
    numbers:
      - number: \"+442079460100\"
      - number: \"020 7946 0101\"
        forward_to: \"+442079460199\"
    contacts:
      - phones: [\"07700 900123\"]
        user: dee
";

/// Account c: a number with nowhere to go (a warning at line 5).
const C: &str = "accounts:
  - id: c
    numbers:
      - number: \"+18005550200\"
      - number: \"+18005550201\"
        forward_to: \"+14155550201\"
";

/// Calls that between them take every rule over the three accounts.
const CALLS: [(&str, &str); 10] = [
    ("+18005550100", "+19995550000"),
    ("+18005550101", "+19995550000"),
    ("+18005550102", "+16505550123"),
    ("+18005550102", "+16505550124"),
    ("+18005550102", "+16505550125"),
    ("+442079460100", "+447700900123"),
    ("+442079460101", "+447700900999"),
    ("+442079460101", "+447700900123"),
    ("+18005550200", "+19995550000"),
    ("+18005550201", "+19995550000"),
];

struct Setup {
    _dir: tempfile::TempDir,
    /// The routing data: a.yaml, b.yaml, c.yaml.
    data: PathBuf,
    cache: PathBuf,
    /// Logs are kept apart from the data: the server watches that.
    logs: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    for (name, text) in [("a.yaml", A), ("b.yaml", B), ("c.yaml", C)] {
        fs::write(data.join(name), text).unwrap();
    }
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    Setup {
        cache: dir.path().join("cache"),
        data,
        logs,
        _dir: dir,
    }
}

/// One run of `serve`: its answer to each call and its log.
struct Run {
    answers: Vec<String>,
    log: Vec<Value>,
}

impl Run {
    /// The fields of the `switchboard started` line.
    fn started(&self) -> &Value {
        &self
            .log
            .iter()
            .find(|l| l["fields"]["message"] == "switchboard started")
            .expect("a started line")["fields"]
    }

    fn messages(&self, level: &str) -> Vec<String> {
        self.log
            .iter()
            .filter(|l| l["level"] == level)
            .map(|l| l["fields"]["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// Starts the server (with `--cache-dir cache` when given), asks every
/// call, stops it and returns what it answered and logged.
fn serve(setup: &Setup, cache: Option<&Path>, name: &str) -> Run {
    serve_then(setup, cache, name, |_, _| {})
}

fn serve_then(
    setup: &Setup,
    cache: Option<&Path>,
    name: &str,
    then: impl FnOnce(&Server, &Path),
) -> Run {
    let log = setup.logs.join(format!("{name}.json"));
    let data = setup.data.display().to_string();
    let mut args = vec!["--routing", &data, "--log-format", "json"];
    let cache_arg = cache.map(|c| c.display().to_string());
    if let Some(c) = &cache_arg {
        args.extend(["--cache-dir", c]);
    }
    let server = Server::start_logging(&args, &log);
    let read_log = || -> Vec<Value> {
        fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    // `switchboard started` follows the `listening on` lines.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read_log()
        .iter()
        .any(|l| l["fields"]["message"] == "switchboard started")
    {
        assert!(Instant::now() < deadline, "no start logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    let answers = answers(&server);
    then(&server, &log);
    server.stop();
    Run {
        answers,
        log: read_log(),
    }
}

/// Each call's status and Contact header, one line each.
fn answers(server: &Server) -> Vec<String> {
    let client = UdpClient::new();
    CALLS
        .iter()
        .enumerate()
        .map(|(i, (dialed, caller))| {
            let answer = client.exchange(
                server.udp,
                &invite(dialed, caller, &format!("cache-{i}"), client.port()),
            );
            format!(
                "{dialed} from {caller}: {} {}",
                status(&answer),
                header(&answer, "Contact").unwrap_or("-")
            )
        })
        .collect()
}

/// The entry of data file `name` in the cache directory.
fn entry(cache: &Path, name: &str) -> PathBuf {
    let entries: Vec<PathBuf> = fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}."))
        })
        .collect();
    assert_eq!(entries.len(), 1, "one entry for {name}: {entries:?}");
    entries[0].clone()
}

fn warnings_with_lines(run: &Run) -> Vec<String> {
    let mut warnings: Vec<String> = run
        .messages("WARN")
        .into_iter()
        .filter(|m| m.contains(": warning: "))
        .collect();
    warnings.sort();
    warnings
}

#[test]
fn a_restart_from_the_cache_answers_and_warns_as_the_yaml_does() {
    let s = setup();
    let plain = serve(&s, None, "plain");
    let cold = serve(&s, Some(&s.cache), "cold");
    let warm = serve(&s, Some(&s.cache), "warm");

    assert_eq!(cold.started()["parsed"], 3, "{}", cold.started());
    assert_eq!(cold.started()["cached"], 0);
    assert_eq!(warm.started()["parsed"], 0, "{}", warm.started());
    assert_eq!(warm.started()["cached"], 3);
    for name in ["a.yaml", "b.yaml", "c.yaml"] {
        entry(&s.cache, name);
    }

    assert!(
        plain.answers.iter().any(|a| a.contains(" 302 ")),
        "{:#?}",
        plain.answers
    );
    assert_eq!(cold.answers, plain.answers);
    assert_eq!(warm.answers, plain.answers);

    // The data's warnings, file and line, whether compiled or cached.
    let expected = warnings_with_lines(&plain);
    let a = s.data.join("a.yaml").display().to_string();
    let c = s.data.join("c.yaml").display().to_string();
    assert!(
        expected
            .iter()
            .any(|w| w.starts_with(&format!("{a}:8: warning: user carol has no phone"))),
        "{expected:#?}"
    );
    assert!(
        expected.iter().any(|w| w.starts_with(&format!(
            "{c}:4: warning: number +18005550200 has no forward_to"
        ))),
        "{expected:#?}"
    );
    assert_eq!(warnings_with_lines(&cold), expected);
    assert_eq!(warnings_with_lines(&warm), expected);
    assert!(!warm.messages("WARN").iter().any(|m| m.contains("cache")));
}

#[test]
fn damaged_foreign_and_stale_entries_are_ignored_rebuilt_and_never_served() {
    let s = setup();
    let baseline = serve(&s, Some(&s.cache), "baseline");
    let good_a = fs::read(entry(&s.cache, "a.yaml")).unwrap();
    let good_c = fs::read(entry(&s.cache, "c.yaml")).unwrap();

    type Damage = fn(&Path);
    let cases: [(&str, &str, Damage, &str); 5] = [
        (
            "truncated",
            "a.yaml",
            |e| {
                let bytes = fs::read(e).unwrap();
                fs::write(e, &bytes[..bytes.len() / 2]).unwrap();
            },
            "truncated",
        ),
        (
            "corrupt",
            "a.yaml",
            |e| {
                let mut bytes = fs::read(e).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 0x40;
                fs::write(e, bytes).unwrap();
            },
            "checksum mismatch",
        ),
        // Bytes 16..32 hold the id of the build that wrote the entry.
        (
            "other build",
            "a.yaml",
            |e| {
                let mut bytes = fs::read(e).unwrap();
                bytes[20] ^= 0x01;
                fs::write(e, bytes).unwrap();
            },
            "another build of switchboard",
        ),
        // Bytes 8..12 hold the format version.
        (
            "other format",
            "a.yaml",
            |e| {
                let mut bytes = fs::read(e).unwrap();
                bytes[8..12].copy_from_slice(&999u32.to_le_bytes());
                fs::write(e, bytes).unwrap();
            },
            "cache format 999",
        ),
        // a.yaml's entry under c.yaml's name: its accounts must not serve
        // for c's.
        (
            "other file",
            "c.yaml",
            |e| {
                let a = fs::read_dir(e.parent().unwrap())
                    .unwrap()
                    .map(|x| x.unwrap().path())
                    .find(|p| {
                        p.file_name()
                            .unwrap()
                            .to_string_lossy()
                            .starts_with("a.yaml.")
                    })
                    .unwrap();
                fs::copy(a, e).unwrap();
            },
            "another data file",
        ),
    ];
    for (what, file, damage, reason) in cases {
        let victim = entry(&s.cache, file);
        damage(&victim);
        let run = serve(&s, Some(&s.cache), what);
        let ignored: Vec<String> = run
            .log
            .iter()
            .filter(|l| {
                l["fields"]["message"] == "routing cache entry ignored; compiling the file again"
            })
            .map(|l| format!("{} {}", l["fields"]["file"], l["fields"]["reason"]))
            .collect();
        assert_eq!(ignored.len(), 1, "{what}: {ignored:?}");
        assert!(
            ignored[0].contains(file) && ignored[0].contains(reason),
            "{what}: {ignored:?}"
        );
        assert_eq!(run.started()["parsed"], 1, "{what}: {}", run.started());
        assert_eq!(run.started()["cached"], 2, "{what}");
        assert_eq!(run.answers, baseline.answers, "{what}");
        // Rebuilt: the entry is again the one a clean compile writes.
        let good = if file == "a.yaml" { &good_a } else { &good_c };
        assert_eq!(&fs::read(&victim).unwrap(), good, "{what}: rebuilt");
    }

    // A data file changed while the server was down: its entry is stale,
    // recompiled quietly, and the new data serves.
    fs::write(
        s.data.join("c.yaml"),
        C.replace("+14155550201", "+14155550299"),
    )
    .unwrap();
    let changed = serve(&s, Some(&s.cache), "changed");
    assert_eq!(changed.started()["parsed"], 1, "{}", changed.started());
    assert!(!changed.messages("WARN").iter().any(|m| m.contains("cache")));
    assert!(
        changed
            .answers
            .iter()
            .any(|a| a.starts_with("+18005550201") && a.contains("+14155550299")),
        "{:#?}",
        changed.answers
    );
}

#[test]
fn an_unwritable_cache_directory_costs_a_warning_not_the_service() {
    let s = setup();
    let plain = serve(&s, None, "plain");
    // Under a regular file, no directory can be made, even by root.
    let blocker = s.logs.join("not-a-directory");
    fs::write(&blocker, "").unwrap();
    let cache = blocker.join("cache");
    let run = serve(&s, Some(&cache), "unwritable");
    let warnings: Vec<String> = run
        .messages("WARN")
        .into_iter()
        .filter(|m| m.contains("cannot write the routing cache"))
        .collect();
    assert_eq!(warnings.len(), 1, "warned once: {:#?}", run.log);
    assert_eq!(run.answers, plain.answers);
    assert_eq!(run.started()["parsed"], 3);
}

#[test]
fn a_file_changed_under_a_running_server_serves_and_is_cached() {
    let s = setup();
    serve(&s, Some(&s.cache), "warm-up");
    let c = s.data.join("c.yaml");
    let run = serve_then(&s, Some(&s.cache), "reload", |server, _| {
        // Replaced by rename, as a CRM export would.
        let temp = s.data.join(".c.yaml.new");
        fs::write(&temp, C.replace("+14155550201", "+14155550277")).unwrap();
        fs::rename(&temp, &c).unwrap();
        let client = UdpClient::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let answer = client.exchange(
                server.udp,
                &invite("+18005550201", "+19995550000", "reload", client.port()),
            );
            if header(&answer, "Contact").is_some_and(|h| h.contains("+14155550277")) {
                break;
            }
            assert!(Instant::now() < deadline, "the change never served");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert_eq!(run.started()["cached"], 3, "{}", run.started());
    // The reload stored the changed file's entry: the next start parses
    // nothing and serves the change.
    let next = serve(&s, Some(&s.cache), "after-reload");
    assert_eq!(next.started()["cached"], 3, "{}", next.started());
    assert!(
        next.answers
            .iter()
            .any(|a| a.starts_with("+18005550201") && a.contains("+14155550277")),
        "{:#?}",
        next.answers
    );
}
