//! Per-request cost of the routing rules: one `RoutingTable::decide` per
//! iteration, on a table the size of issue #4's data set (10,000 users,
//! 20,000 numbers, 100,000 contacts), for each rule and spelling.
//!
//! Run: `cargo bench --bench decide`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard::routing::{
    Account, Contacts, E164, NoPhonePolicy, Number, OnNoAnswer, Region, RoutingTable, Target, User,
};

const ACCOUNTS: u64 = 100;
const USERS_PER_ACCOUNT: u64 = 100;
const NUMBERS_PER_ACCOUNT: u64 = 200;
const CONTACTS_PER_ACCOUNT: u64 = 1_000;

fn e164(value: u64) -> E164 {
    E164::parse_plus(&format!("+{value}")).expect("E.164")
}

/// Account `a`'s numbers are +1800 555 a nnn...: numbers below 100 are
/// assigned to the user of the same index, the rest forward.
fn did(a: u64, n: u64) -> u64 {
    18_000_000_000 + a * 1_000 + n
}

fn contact(a: u64, c: u64) -> u64 {
    16_500_000_000 + a * 10_000 + c
}

fn table() -> RoutingTable {
    let accounts = (0..ACCOUNTS)
        .map(|a| {
            let users = (0..USERS_PER_ACCOUNT)
                .map(|u| User {
                    id: format!("u{a}-{u}").into(),
                    name: None,
                    phone: Some(Target::Number(e164(14_150_000_000 + a * 1_000 + u))),
                })
                .collect();
            let numbers = (0..NUMBERS_PER_ACCOUNT)
                .map(|n| Number {
                    number: e164(did(a, n)),
                    user: (n < USERS_PER_ACCOUNT).then_some(n as u32),
                    forward_to: Some(Target::Number(e164(14_080_000_000 + n))),
                    on_no_answer: OnNoAnswer::None,
                    ring_seconds: None,
                })
                .collect();
            let contacts = Contacts::from_pairs(
                (0..CONTACTS_PER_ACCOUNT)
                    .map(|c| (e164(contact(a, c)), (c % USERS_PER_ACCOUNT) as u32))
                    .collect(),
            );
            Arc::new(Account {
                id: format!("acct-{a}").into(),
                region: Region::us(),
                forward_to: None,
                ring_number_user_first: true,
                when_user_has_no_phone: NoPhonePolicy::Reject,
                contact_template: None,
                diversion: None,
                ring_seconds: None,
                users,
                numbers,
                contacts_listed: contacts.len(),
                contacts,
            })
        })
        .collect();
    RoutingTable::new(accounts, Region::us()).expect("no clashes")
}

fn bench(c: &mut Criterion) {
    let table = table();
    let cases: [(&str, &str, String, Option<String>); 7] = [
        (
            "rule1_number_user",
            "number_user",
            format!("+{}", did(42, 7)),
            Some(format!("+{}", contact(42, 3))),
        ),
        (
            "rule2_contact_owner",
            "contact_owner",
            format!("+{}", did(42, 150)),
            Some(format!("+{}", contact(42, 3))),
        ),
        (
            "rule2_national_caller",
            "contact_owner",
            format!("+{}", did(42, 150)),
            Some(format!("{}", contact(42, 3) - 10_000_000_000)),
        ),
        (
            "rule3_forwarding",
            "forwarding",
            format!("+{}", did(42, 150)),
            Some("+14155559999".to_owned()),
        ),
        (
            "rule3_anonymous",
            "forwarding",
            format!("+{}", did(42, 150)),
            Some("anonymous".to_owned()),
        ),
        ("not_found", "none", "+19995550000".to_owned(), None),
        (
            "sip_uri_national_dialed",
            "number_user",
            format!(
                "sip:{}@trunk.example;user=phone",
                did(42, 7) - 10_000_000_000
            ),
            None,
        ),
    ];
    let mut group = c.benchmark_group("decide");
    for (name, rule, dialed, caller) in &cases {
        let caller = caller.as_deref().map(str::as_bytes);
        // The case decides by the rule its name says, or it measures nothing.
        let decision = table.decide(dialed.as_bytes(), caller);
        assert_eq!(decision.rule.as_str(), *rule, "{name}: {:?}", decision);
        group.bench_function(*name, |b| {
            b.iter(|| {
                black_box(
                    table
                        .decide(black_box(dialed.as_bytes()), black_box(caller))
                        .disposition,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
