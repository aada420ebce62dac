//! Hot reload, driven the way operators and orchestrators change files:
//! replace by rename, edit in place, a Kubernetes ConfigMap `..data` swap,
//! broken YAML, SIGHUP, the poll, and one changed file among many.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard::routing::Region;
use switchboard::routing_data::{HotTable, Loader, ReloadOptions, ReloadStatus};

const WAIT: Duration = Duration::from_secs(15);

/// One account whose only number forwards to `forward`.
fn account(id: &str, number: &str, forward: &str) -> String {
    format!(
        "accounts:\n  - id: {id}\n    numbers:\n      - number: \"{number}\"\n        forward_to: \"{forward}\"\n"
    )
}

fn target(hot: &HotTable, dialed: &str) -> Option<String> {
    let table = hot.load();
    table
        .decide(dialed.as_bytes(), None)
        .target
        .map(|t| t.to_string())
}

fn start(path: &Path, options: ReloadOptions) -> HotTable {
    let loader = Loader::new(path, Region::us());
    HotTable::start(loader, options)
        .expect("initial data loads")
        .0
}

fn watching() -> ReloadOptions {
    ReloadOptions {
        debounce: Duration::from_millis(50),
        poll: None,
        sighup: false,
        watch: true,
    }
}

fn reloaded(n: u64) -> impl Fn(&ReloadStatus) -> bool {
    move |s| s.reloads >= n
}

#[test]
fn a_file_replaced_by_rename_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.yaml");
    fs::write(&file, account("acme", "+18005550100", "+14155550001")).unwrap();
    let hot = start(&file, watching());
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550001")
    );

    let tmp = dir.path().join(".routing.yaml.tmp");
    fs::write(&tmp, account("acme", "+18005550100", "+14155550002")).unwrap();
    fs::rename(&tmp, &file).unwrap();
    let status = hot.wait_for(WAIT, reloaded(1));
    assert_eq!(status.reloads, 1, "{status:?}");
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550002")
    );
}

#[test]
fn a_file_edited_in_place_is_reloaded_even_at_the_same_size() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.yaml");
    fs::write(&file, account("acme", "+18005550100", "+14155550001")).unwrap();
    let hot = start(&file, watching());
    // Same length, same inode, possibly the same coarse mtime.
    fs::write(&file, account("acme", "+18005550100", "+14155550009")).unwrap();
    hot.wait_for(WAIT, reloaded(1));
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550009")
    );
}

#[test]
fn a_configmap_data_symlink_swap_is_reloaded() {
    // The layout kubelet writes: versioned directories, `..data` pointing at
    // the current one, and the visible file a symlink through `..data`.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("..2026_11_25_v1")).unwrap();
    fs::write(
        root.join("..2026_11_25_v1/routing.yaml"),
        account("acme", "+18005550100", "+14155550001"),
    )
    .unwrap();
    symlink("..2026_11_25_v1", root.join("..data")).unwrap();
    symlink("..data/routing.yaml", root.join("routing.yaml")).unwrap();
    let hot = start(root, watching());
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550001")
    );

    fs::create_dir(root.join("..2026_11_25_v2")).unwrap();
    fs::write(
        root.join("..2026_11_25_v2/routing.yaml"),
        account("acme", "+18005550100", "+14155550002"),
    )
    .unwrap();
    symlink("..2026_11_25_v2", root.join("..data_tmp")).unwrap();
    fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    fs::remove_dir_all(root.join("..2026_11_25_v1")).unwrap();

    let status = hot.wait_for(WAIT, reloaded(1));
    assert_eq!(status.reloads, 1, "{status:?}");
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550002")
    );
}

#[test]
fn the_configmap_file_path_itself_can_be_watched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("..v1")).unwrap();
    fs::write(
        root.join("..v1/routing.yaml"),
        account("acme", "+18005550100", "+14155550001"),
    )
    .unwrap();
    symlink("..v1", root.join("..data")).unwrap();
    symlink("..data/routing.yaml", root.join("routing.yaml")).unwrap();
    let hot = start(&root.join("routing.yaml"), watching());

    fs::create_dir(root.join("..v2")).unwrap();
    fs::write(
        root.join("..v2/routing.yaml"),
        account("acme", "+18005550100", "+14155550002"),
    )
    .unwrap();
    symlink("..v2", root.join("..data_tmp")).unwrap();
    fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();

    hot.wait_for(WAIT, reloaded(1));
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550002")
    );
}

#[test]
fn invalid_data_keeps_the_last_good_table_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.yaml");
    fs::write(&file, account("acme", "+18005550100", "+14155550001")).unwrap();
    let hot = start(&file, watching());

    fs::write(&file, "accounts:\n  - id: acme\n    numbers: [\n").unwrap();
    let status = hot.wait_for(WAIT, |s| s.failures >= 1);
    assert_eq!(status.failures, 1, "{status:?}");
    let report = status.last_error.expect("the failure is kept");
    let error = report.errors().next().expect("an error");
    assert!(error.file.ends_with("routing.yaml"), "{error}");
    assert!(error.line >= 3, "{error}");
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550001")
    );

    // Valid again, with a semantic error this time: still refused.
    fs::write(
        &file,
        "accounts:\n  - id: acme\n    users:\n      - id: a\n        numbers: [\"+18005550199\"]\n",
    )
    .unwrap();
    let status = hot.wait_for(WAIT, |s| s.failures >= 2);
    let report = status.last_error.expect("the failure is kept");
    assert!(
        report
            .to_string()
            .contains("not one of account acme's numbers"),
        "{report}"
    );
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550001")
    );

    // Fixed: served, and the error is cleared.
    fs::write(&file, account("acme", "+18005550100", "+14155550003")).unwrap();
    let status = hot.wait_for(WAIT, reloaded(1));
    assert!(status.last_error.is_none(), "{status:?}");
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550003")
    );
}

#[test]
fn sighup_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.yaml");
    fs::write(&file, account("acme", "+18005550100", "+14155550001")).unwrap();
    // No watcher, no poll: only the signal can notice the change.
    let options = ReloadOptions {
        watch: false,
        poll: None,
        sighup: true,
        ..ReloadOptions::default()
    };
    let hot = start(&file, options);
    fs::write(&file, account("acme", "+18005550100", "+14155550002")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550001")
    );

    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).unwrap();
    hot.wait_for(WAIT, reloaded(1));
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550002")
    );
}

#[test]
fn the_poll_is_a_safety_net() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.yaml");
    fs::write(&file, account("acme", "+18005550100", "+14155550001")).unwrap();
    let options = ReloadOptions {
        watch: false,
        poll: Some(Duration::from_millis(100)),
        sighup: false,
        ..ReloadOptions::default()
    };
    let hot = start(&file, options);
    fs::write(&file, account("acme", "+18005550100", "+14155550002")).unwrap();
    hot.wait_for(WAIT, reloaded(1));
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550002")
    );
}

#[test]
fn an_unchanged_request_does_not_swap_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.yaml");
    fs::write(&file, account("acme", "+18005550100", "+14155550001")).unwrap();
    let options = ReloadOptions {
        watch: false,
        poll: None,
        sighup: false,
        ..ReloadOptions::default()
    };
    let hot = start(&file, options);
    let before = hot.reader().snapshot();
    hot.reload_now();
    let status = hot.wait_for(WAIT, |s| s.checks >= 1);
    assert_eq!(status.reloads, 0, "{status:?}");
    assert!(Arc::ptr_eq(&before, &hot.reader().snapshot()));
}

#[test]
fn in_a_directory_only_the_changed_file_is_parsed_again() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..10 {
        let body = account(
            &format!("acct-{i}"),
            &format!("+1800555010{i}"),
            "+14155550001",
        );
        fs::write(dir.path().join(format!("account-{i}.yaml")), body).unwrap();
    }
    // Not routing data: hidden files and other extensions are ignored.
    fs::write(dir.path().join(".hidden.yaml"), "not: [valid").unwrap();
    fs::write(dir.path().join("README.txt"), "notes").unwrap();
    let hot = start(dir.path(), watching());
    let before = hot.reader().snapshot();
    assert_eq!(before.counts().accounts, 10);

    let body = account("acct-3", "+18005550103", "+14155550333");
    fs::write(dir.path().join("account-3.yaml"), body).unwrap();
    let status = hot.wait_for(WAIT, reloaded(1));
    let stats = status.serving.expect("serving stats");
    assert_eq!(
        (stats.files, stats.parsed, stats.reused),
        (10, 1, 9),
        "{stats:?}"
    );
    assert_eq!(
        target(&hot, "+18005550103").as_deref(),
        Some("+14155550333")
    );

    // Unchanged accounts are shared with the old table, not rebuilt.
    let after = hot.reader().snapshot();
    for (old, new) in before.accounts().iter().zip(after.accounts()) {
        assert_eq!(
            Arc::ptr_eq(old, new),
            old.id.as_ref() != "acct-3",
            "{}",
            old.id
        );
    }

    // A new file joins, a removed file leaves.
    fs::write(
        dir.path().join("account-x.yaml"),
        account("acct-x", "+18005550200", "+14155550444"),
    )
    .unwrap();
    fs::remove_file(dir.path().join("account-0.yaml")).unwrap();
    hot.wait_for(WAIT, |s| {
        s.serving.is_some_and(|st| st.files == 10)
            && s.reloads >= 2
            && s.serving.is_some_and(|st| st.counts.accounts == 10)
    });
    let table = hot.load();
    assert!(table.decide(b"+18005550100", None).account.is_none());
    assert_eq!(
        table
            .decide(b"+18005550200", None)
            .target
            .map(|t| t.to_string())
            .as_deref(),
        Some("+14155550444")
    );
}

#[test]
fn an_emptied_directory_is_refused_and_the_last_good_data_serves() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("account.yaml");
    fs::write(&file, account("acme", "+18005550100", "+14155550001")).unwrap();
    let hot = start(dir.path(), watching());
    fs::remove_file(&file).unwrap();
    let status = hot.wait_for(WAIT, |s| s.failures >= 1);
    let report = status.last_error.expect("refused");
    assert!(
        report.to_string().contains("holds no routing files"),
        "{report}"
    );
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550001")
    );
    // An empty directory cannot start a server either.
    assert!(Loader::new(dir.path(), Region::us()).load().is_err());
}

/// The classic YAML bombs, each written over the serving file: refused
/// within the parser's budget with a report that says why, the last good
/// table serving throughout.
#[test]
fn hostile_files_are_refused_within_budget_and_the_last_good_table_serves() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.yaml");
    fs::write(&file, account("acme", "+18005550100", "+14155550001")).unwrap();
    let hot = start(&file, watching());

    // A billion laughs: nine levels of nine aliases each.
    let mut laughs = String::from("accounts:\n  - &a0 [\"lol\"]\n");
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 9].join(", ");
        laughs.push_str(&format!("  - &a{level} [{refs}]\n"));
    }
    // Ten thousand levels of nesting.
    let deep = format!("accounts: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    type Writer = Box<dyn Fn(&Path)>;
    let hostile: [(&str, Writer, &str); 3] = [
        (
            "alias bomb",
            Box::new(move |p| fs::write(p, &laughs).unwrap()),
            "aliases",
        ),
        (
            "deep nesting",
            Box::new(move |p| fs::write(p, &deep).unwrap()),
            "recursion limit",
        ),
        (
            "a 10 GB file (sparse: nothing to read)",
            Box::new(|p| {
                let f = fs::File::create(p).unwrap();
                f.set_len(10 << 30).unwrap();
            }),
            "over the limit",
        ),
    ];
    for (n, (what, write, says)) in hostile.iter().enumerate() {
        let next = dir.path().join(".next");
        write(&next);
        fs::rename(&next, &file).unwrap();
        let status = hot.wait_for(WAIT, |s| s.failures > n as u64);
        assert_eq!(status.failures, n as u64 + 1, "{what}: {status:?}");
        let report = status.last_error.expect("the failure is kept").to_string();
        assert!(
            report.to_lowercase().contains(says),
            "{what}: the report should say {says:?}: {report}"
        );
        assert_eq!(
            target(&hot, "+18005550100").as_deref(),
            Some("+14155550001"),
            "{what}"
        );
    }
    fs::write(&file, account("acme", "+18005550100", "+14155550002")).unwrap();
    hot.wait_for(WAIT, reloaded(1));
    assert_eq!(
        target(&hot, "+18005550100").as_deref(),
        Some("+14155550002")
    );
}
