//! Replays the fuzzers' corpus (`fuzz/corpus/`, minimised, committed)
//! through the same checks the fuzz targets make, on the stable toolchain:
//! every input that once found new code paths keeps passing. The fuzzing
//! itself needs nightly and time: `cargo +nightly fuzz run parse` (docs/security.md).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use switchboard::routing::{Region, RoutingTable};
use switchboard::routing_data::Loader;
use switchboard::server::handler::{Context, Outcome, Peer, Transport};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "the {target} corpus is missing: {}",
        dir.display()
    );
    files
}

#[test]
fn the_parse_corpus_passes() {
    for file in corpus("parse") {
        checks::parse(&fs::read(&file).expect("a corpus file"));
    }
}

/// The shipped example data, which the datagram target routes against.
fn example_table() -> RoutingTable {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.yaml");
    Loader::new(path, Region::us())
        .load()
        .expect("example data")
        .table
}

#[test]
fn the_datagram_corpus_passes() {
    let table = example_table();
    let config = checks::datagram_config();
    for file in corpus("datagram") {
        checks::datagram(&fs::read(&file).expect("a corpus file"), &config, &table);
    }
}

/// The peer `checks::datagram` makes of a selector byte (its first byte),
/// and whether that peer is trusted: by its loopback address (127.0.0.1,
/// ::1), or by its TLS client certificate.
fn datagram_peer(selector: u8) -> (Peer, bool) {
    let (source, listed): (SocketAddr, bool) = match selector % 4 {
        0 => (SocketAddr::from(([127, 0, 0, 1], 5062)), true),
        1 => (SocketAddr::from(([192, 0, 2, 7], 5060)), false),
        2 => ("[::1]:5062".parse().expect("literal address"), true),
        _ => (
            "[2001:db8::7]:5060".parse().expect("literal address"),
            false,
        ),
    };
    match selector & 12 {
        0 => (Peer::at(source, Transport::Udp), listed),
        4 => (Peer::at(source, Transport::Tcp), listed),
        8 => (Peer::at(source, Transport::Tls), listed),
        _ => (
            Peer {
                trusted_by_certificate: true,
                ..Peer::at(source, Transport::Tls)
            },
            true,
        ),
    }
}

/// The largest answer there is stays within the fuzzers' size bound:
/// the smallest request that gets a failover chain, History-Info and its
/// entries in both Contacts, from every kind of peer (every selector
/// `checks::datagram` knows: four addresses, UDP, TCP, TLS and TLS with a
/// client certificate). A trusted peer does get that 302 (else the bound
/// would be checked on a smaller answer), an untrusted one a 403.
#[test]
fn the_largest_302_is_bounded_by_the_request() {
    let table = example_table();
    let config = checks::datagram_config();
    let request = b"INVITE sip:+18005550188@a SIP/2.0\r\n\
Via: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
From: <sip:1@a>;tag=1\r\n\
To: <sip:+18005550188@a>\r\n\
Call-ID: 1\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\
\r\n";
    let mut trusted_peers = 0;
    for selector in 0..16u8 {
        let mut data = vec![selector];
        data.extend_from_slice(request);
        checks::datagram(&data, &config, &table);

        let (peer, trusted) = datagram_peer(selector);
        let mut out = Vec::new();
        let outcome = config.handle(&mut Context::new(&table, &mut out), request, peer);
        let answer = String::from_utf8_lossy(&out).into_owned();
        let Outcome::Reply { status, .. } = outcome else {
            panic!("selector {selector}: no answer ({outcome:?})");
        };
        if !trusted {
            assert_eq!(status, 403, "selector {selector}: {answer}");
            continue;
        }
        trusted_peers += 1;
        assert_eq!(status, 302, "selector {selector}: {answer}");
        assert!(
            answer.starts_with("SIP/2.0 302 Moved Temporarily\r\n"),
            "selector {selector}: {answer}"
        );
        // The failover chain: alice's phone, then the support queue, each
        // Contact carrying its History-Info entry.
        let contacts: Vec<&str> = answer
            .lines()
            .filter(|l| l.starts_with("Contact: "))
            .collect();
        assert_eq!(contacts.len(), 2, "selector {selector}: {answer}");
        assert!(
            contacts[0].contains("+14155550101") && contacts[1].contains("+14155550188"),
            "selector {selector}: {answer}"
        );
        assert!(
            answer.contains("\r\nHistory-Info: "),
            "selector {selector}: {answer}"
        );
        assert!(
            out.len() <= request.len() + 1024,
            "selector {selector}: {} bytes answered to {}",
            out.len(),
            request.len()
        );
    }
    assert_eq!(trusted_peers, 10, "trusted peers among the 16 selectors");
}

/// The cache reader's seed is the example data's entry as this build writes
/// it (`UPDATE_SEEDS=1` rewrites it after a format change), and the reader
/// survives it and every truncation and single-byte change of it: the cache
/// target's corpus, replayed without libFuzzer.
#[test]
fn the_cache_reader_survives_its_seed_cut_and_changed() {
    let example =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.yaml"))
            .expect("example data");
    let seed = checks::cache_seed(&example);
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds-cache/example.swbc");
    if std::env::var_os("UPDATE_SEEDS").is_some() {
        fs::write(&committed, &seed).expect("write the seed");
    }
    assert_eq!(
        fs::read(&committed).expect("fuzz/seeds-cache/example.swbc"),
        seed,
        "the cache format changed: rerun with UPDATE_SEEDS=1"
    );
    checks::cache_entry(&seed);
    for len in 0..seed.len() {
        checks::cache_entry(&seed[..len]);
    }
    for i in 0..seed.len() {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut changed = seed.clone();
            changed[i] = value;
            checks::cache_entry(&changed);
        }
    }
}

/// The response target's seeds (`fuzz/seeds-response/`: what next hops
/// send a proxy, a 1xx with two Via lines, a 2xx with two Via values on one
/// line and a body, a compact LF-ended 487 over IPv6, a 486 with no Via
/// left after ours, a 100 with a folded Via) pass the target's checks, and
/// so does every truncation and every single-byte change of them: its
/// corpus, replayed without libFuzzer. Each seed parses whole.
#[test]
fn the_response_seeds_pass_cut_and_changed() {
    use switchboard::sip::Framing;
    use switchboard::sip::response_head::ResponseHead;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds-response");
    let mut seeds: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "the response seeds are missing");
    for path in seeds {
        let seed = fs::read(&path).expect("a seed");
        assert!(
            ResponseHead::parse(&seed, Framing::Datagram).is_ok(),
            "{} does not parse",
            path.display()
        );
        checks::response(&seed);
        for len in 0..seed.len() {
            checks::response(&seed[..len]);
        }
        for i in 0..seed.len() {
            for value in [0x00, b'\n', b' ', b',', b';', b':', b'0', b'9', 0x7f, 0xff] {
                let mut changed = seed.clone();
                changed[i] = value;
                checks::response(&changed);
            }
        }
    }
}
