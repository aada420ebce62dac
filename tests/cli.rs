//! `switchboard check` and `switchboard route`, run as the real binary the
//! way operators and scripts run them (docs/operations.md).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn check_accepts_the_example_with_counts_and_warnings() {
    let out = switchboard(&["check", "config/routing.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ok: 2 accounts, 6 users, 9 numbers, 5 contacts in 1 file(s); 2 warnings"),
        "{text}"
    );
    assert!(
        text.contains("config/routing.yaml:21: warning: user bob has no phone, but 1 number and 1 contact route calls to them"),
        "{text}"
    );
}

#[test]
fn check_names_every_problem_with_its_line() {
    let out = switchboard(&["check", "tests/fixtures/bad.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let expected = [
        "bad.yaml:10: error: number +18005550100 is assigned to both alice (line 7) and carol (line 10)",
        "bad.yaml:10: error: user carol has number +18005550177, which is not one of account acme's numbers",
        "bad.yaml:11: error: user id alice is used twice in account acme (lines 5 and 11)",
        "bad.yaml:14: error: user dave's phone \"call me maybe\" cannot be a phone number",
        "bad.yaml:18: error: number +18005550111 is assigned to user nobody, but account acme has no such user",
        "bad.yaml:19: error: number \"+1800555\" cannot be a phone number: +1800555 has 6 digits after its country code +1",
        "bad.yaml:20: error: number \"+12345678901234567\" cannot be a phone number",
        "bad.yaml:23: error: a contact is assigned to user zed, but account acme has no such user",
        "bad.yaml:24: error: contact phone \"not-a-number\" cannot be a phone number",
        "bad.yaml:26: error: account beta: unknown region \"XX\"",
        "bad.yaml:28: error: number +18005550111 belongs to both account acme (tests/fixtures/bad.yaml line 17) and account beta",
    ];
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("FAILED: 11 error(s)"), "{text}");
    // Every error comes with its fix.
    let errors = text.lines().filter(|l| l.contains(": error: ")).count();
    let fixes = text
        .lines()
        .filter(|l| l.trim_start().starts_with("fix: "))
        .count();
    assert!(fixes >= errors, "{text}");
}

#[test]
fn check_reports_problems_across_files_of_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
    write(
        "a.yaml",
        "accounts:\n  - id: shared\n    forward_to: \"+14155550000\"\n    numbers:\n      - number: \"+18005550100\"\n",
    );
    write(
        "b.yaml",
        "accounts:\n  - id: shared\n    numbers:\n      - number: \"+18005550200\"\n  - id: other\n    forward_to: \"+14155550000\"\n    numbers:\n      - number: \"+18005550100\"\n",
    );
    write("c.yaml", "accounts:\n  - id: third\n    colour: blue\n");
    let out = switchboard(&["check", dir.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let a = dir.path().join("a.yaml");
    for line in [
        format!(
            "b.yaml:2: error: account id shared is used twice: {} line 2 and here",
            a.display()
        ),
        format!(
            "b.yaml:8: error: number +18005550100 belongs to both account shared ({} line 5) and account other",
            a.display()
        ),
        "c.yaml:3: error: not valid routing data: unknown field `colour`".to_owned(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn check_fails_on_a_missing_path() {
    let out = switchboard(&["check", "tests/fixtures/no-such-file.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("cannot read"), "{}", stdout(&out));
}

fn route(args: &[&str]) -> Value {
    let mut all = vec!["route", "--routing", "config/routing.yaml", "--json"];
    all.extend_from_slice(args);
    let out = switchboard(&all);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// The JSON of docs/operations.md, without the free-text reason.
fn decision(
    status: u16,
    account: Option<&str>,
    rule: &str,
    user: Option<&str>,
    target: Option<&str>,
) -> Value {
    let targets: Vec<Value> = target
        .map(|t| json!({"target": t, "q": 1.0, "rule": rule}))
        .into_iter()
        .collect();
    json!({"status": status, "account": account, "rule": rule, "user": user, "target": target,
           "targets": targets})
}

fn without_reason(mut v: Value) -> Value {
    v.as_object_mut()
        .unwrap()
        .remove("reason")
        .expect("a reason");
    v
}

#[test]
fn route_applies_every_rule_and_switch() {
    let cases: &[(&[&str], Value)] = &[
        // Rule 1 wins over a contact owner when ring_number_user_first.
        (
            &["--to", "+18005550100", "--from", "+16505550123"],
            decision(
                302,
                Some("acme"),
                "number_user",
                Some("alice"),
                Some("+14155550101"),
            ),
        ),
        // Rule 2: a contact's owner without a phone: 480 (reject).
        (
            &["--to", "+18005550111", "--from", "+16505550124"],
            decision(480, Some("acme"), "contact_owner", Some("bob"), None),
        ),
        // Rule 2 with a phone.
        (
            &["--to", "+18005550111", "--from", "+16505550155"],
            decision(
                302,
                Some("acme"),
                "contact_owner",
                Some("alice"),
                Some("+14155550101"),
            ),
        ),
        // Rule 3, the number's own forwarding; unassigned contacts count as strangers.
        (
            &["--to", "+18005550111", "--from", "+16505550166"],
            decision(302, Some("acme"), "forwarding", None, Some("+14155550199")),
        ),
        (
            &["--to", "+18005550111"],
            decision(302, Some("acme"), "forwarding", None, Some("+14155550199")),
        ),
        // Rule 3, the account's default.
        (
            &["--to", "+18005550133", "--from", "anonymous"],
            decision(302, Some("acme"), "forwarding", None, Some("+14155550000")),
        ),
        // Rule 1 picks a user without a phone: 480.
        (
            &["--to", "+18005550144"],
            decision(480, Some("acme"), "number_user", Some("bob"), None),
        ),
        // A sip: URI phone is used as is.
        (
            &["--to", "+18005550122"],
            decision(
                302,
                Some("acme"),
                "number_user",
                Some("carol"),
                Some("sip:carol@pbx.acme.example"),
            ),
        ),
        // ring_number_user_first: false: the contact's owner wins.
        (
            &["--to", "+442079460100", "--from", "+447911555555"],
            decision(
                302,
                Some("globex-london"),
                "contact_owner",
                Some("frank"),
                Some("+447400123456"),
            ),
        ),
        (
            &["--to", "+442079460100", "--from", "+16505550199"],
            decision(
                302,
                Some("globex-london"),
                "number_user",
                Some("dave"),
                Some("+447911123456"),
            ),
        ),
        // The same caller is a contact of two accounts with different owners.
        (
            &["--to", "+442079460100", "--from", "+16505550123"],
            decision(
                302,
                Some("globex-london"),
                "contact_owner",
                Some("frank"),
                Some("+447400123456"),
            ),
        ),
        // when_user_has_no_phone: forward goes on to rule 3.
        (
            &["--to", "+442079460111"],
            decision(
                302,
                Some("globex-london"),
                "forwarding",
                None,
                Some("+442079460999"),
            ),
        ),
        // National caller spelling in the account's region (GB).
        (
            &["--to", "+442079460122", "--from", "07911 555555"],
            decision(
                302,
                Some("globex-london"),
                "contact_owner",
                Some("frank"),
                Some("+447400123456"),
            ),
        ),
        (
            &["--to", "+442079460122"],
            decision(
                302,
                Some("globex-london"),
                "forwarding",
                None,
                Some("+447911000789"),
            ),
        ),
        // on_no_answer: forward: the phone, then rule 3's target.
        (
            &["--to", "+18005550188", "--from", "+16505550123"],
            json!({"status": 302, "account": "acme", "rule": "number_user", "user": "alice",
            "target": "+14155550101", "targets": [
                {"target": "+14155550101", "q": 1.0, "rule": "number_user"},
                {"target": "+14155550188", "q": 0.5, "rule": "forwarding"},
            ]}),
        ),
        // Not a number of any account.
        (
            &["--to", "+19995550000", "--from", "+16505550123"],
            decision(404, None, "none", None, None),
        ),
        (
            &["--to", "not-a-number"],
            decision(404, None, "none", None, None),
        ),
    ];
    for (args, want) in cases {
        let got = route(args);
        assert!(
            got["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{got}"
        );
        assert_eq!(&without_reason(got), want, "route {args:?}");
    }
}

#[test]
fn route_reads_every_spelling_of_a_dialed_number() {
    let want = decision(
        302,
        Some("acme"),
        "number_user",
        Some("alice"),
        Some("+14155550101"),
    );
    for spelling in [
        "+18005550100",
        "18005550100",
        "8005550100",
        "+1-800-555-0100",
        "(800) 555.0100",
        "tel:+1-800-555-0100",
        "sip:+18005550100@trunk.example;user=phone",
        "sip:%2B18005550100@trunk.example",
        "0018005550100",
        "01118005550100",
    ] {
        assert_eq!(
            without_reason(route(&["--to", spelling])),
            want,
            "{spelling}"
        );
    }
    let london = decision(
        302,
        Some("globex-london"),
        "number_user",
        Some("dave"),
        Some("+447911123456"),
    );
    for spelling in [
        "00442079460100",
        "011442079460100",
        "442079460100",
        "tel:+44-20-7946-0100",
    ] {
        assert_eq!(
            without_reason(route(&["--to", spelling])),
            london,
            "{spelling}"
        );
    }
}

#[test]
fn route_reads_every_spelling_of_a_caller() {
    let want = decision(
        302,
        Some("acme"),
        "contact_owner",
        Some("alice"),
        Some("+14155550101"),
    );
    for spelling in [
        "+16505550155",
        "16505550155",
        "6505550155",
        "650-555-0155",
        "sip:+16505550155@carrier.example;user=phone",
        "tel:+1-650-555-0155",
        "%2B16505550155",
        "01116505550155",
    ] {
        assert_eq!(
            without_reason(route(&["--to", "+18005550111", "--from", spelling])),
            want,
            "{spelling}"
        );
    }
}

#[test]
fn route_explains_in_text_by_default() {
    let out = switchboard(&[
        "route",
        "--routing",
        "config/routing.yaml",
        "--to",
        "+18005550100",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.starts_with("302 Moved Temporarily\n"), "{text}");
    assert!(text.contains("  rule:    number_user\n"), "{text}");
    assert!(
        text.contains("  reason:  +18005550100 is assigned to user alice\n"),
        "{text}"
    );
    // A failover chain lists every Contact in order.
    let out = switchboard(&[
        "route",
        "--routing",
        "config/routing.yaml",
        "--to",
        "+18005550188",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains(
            "  target:  +14155550101\n  then:    +14155550188 (q=0.5, forwarding, when the one before does not answer)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("; if the phone does not answer, then +14155550188\n"),
        "{text}"
    );
}

#[test]
fn route_refuses_invalid_data() {
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bad.yaml")
            .exists()
    );
    let out = switchboard(&[
        "route",
        "--routing",
        "tests/fixtures/bad.yaml",
        "--to",
        "+18005550100",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `switchboard check`"));
}

#[test]
fn serve_names_a_bad_contact_template_once() {
    let output = switchboard(&[
        "serve",
        "--routing",
        "config/routing.yaml",
        "--listen",
        "127.0.0.1:0",
        "--contact-template",
        "sip:nobody@example.com",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sip:nobody@example.com"), "{stderr}");
    assert_eq!(
        stderr.matches("no {number} placeholder").count(),
        1,
        "{stderr}"
    );
}
