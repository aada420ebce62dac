//! Parsing routing data YAML with explicit safety budgets (docs/security.md).
//!
//! serde-saphyr with aliases, anchors and merge keys refused (the CRM's
//! export has no use for them, and they are how YAML bombs work),
//! duplicate keys rejected, and budgets sized for a million-contact file.

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::options::{DuplicateKeyPolicy, MergeKeyPolicy};
use serde_saphyr::{Budget, Options};

use super::contacts_scan::{Block, take_contact_blocks};
use super::fast::{Unsure, read_routing_file};
use super::schema::{Lined, RoutingFile};

/// Limits on one routing data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlLimits {
    /// Largest file read, in bytes; larger files are refused unread.
    pub max_file_bytes: u64,
    /// Most YAML nodes (scalars, sequences, mappings) in one file.
    pub max_nodes: usize,
    /// Deepest nesting; the schema needs 6.
    pub max_depth: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        YamlLimits {
            // A million contacts with two phones each is about 80 MB of YAML.
            max_file_bytes: 256 * 1024 * 1024,
            max_nodes: 20_000_000,
            max_depth: 16,
        }
    }
}

/// A parse failure, with the line it happened on (0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub line: u32,
    pub message: String,
}

/// [`parse_routing_file_noting`] for tests that do not ask why.
#[cfg(test)]
pub fn parse_routing_file(text: &str, limits: &YamlLimits) -> Result<RoutingFile, YamlError> {
    parse_routing_file_noting(text, limits, |_| {})
}

/// Parses one routing data file: the whole of it by the `fast` reader when
/// it is in the subset exports write; else its contact blocks by
/// `contacts_scan` where that reader is sure of them, the rest (and
/// anything it is not sure of) by the YAML parser. `slow` hears why the
/// fast reader gave the file up when it does: the loader logs it, so that
/// an operator can see which files of an export take the slow road.
pub fn parse_routing_file_noting(
    text: &str,
    limits: &YamlLimits,
    slow: impl FnOnce(Unsure),
) -> Result<RoutingFile, YamlError> {
    match read_routing_file(text, limits) {
        Ok(doc) => return Ok(doc),
        Err(unsure) => slow(unsure),
    }
    if let Some(taken) = take_contact_blocks(text)
        && let Some(rest_nodes) = limits.max_nodes.checked_sub(taken.nodes)
        // The blocks' values count against the file's node budget.
        && let Ok(mut doc) = parse_yaml(
            &taken.text,
            &YamlLimits {
                max_nodes: rest_nodes,
                ..*limits
            },
        )
        && put_back(&mut doc, taken.blocks)
    {
        return Ok(doc);
    }
    // No block taken, or the rest did not parse, or a block did not land
    // in an account (its `contacts:` line was inside a string, say): the
    // whole file through the parser, for its exact result or error.
    parse_yaml(text, limits)
}

/// Puts each block back into the account whose `contacts: []` is on the
/// block's line; false when a block has no such account.
fn put_back(doc: &mut RoutingFile, blocks: Vec<Block>) -> bool {
    let mut accounts = doc.accounts.iter_mut();
    for block in blocks {
        // Blocks and accounts are both in the file's order.
        let account =
            accounts.find(|a| a.contacts.line == block.key_line && a.contacts.value.is_empty());
        match account {
            Some(account) => {
                account.contacts = Lined {
                    value: block.contacts,
                    line: block.first_line,
                }
            }
            None => return false,
        }
    }
    true
}

/// Parses YAML text as routing data, with the budgets.
pub fn parse_yaml(text: &str, limits: &YamlLimits) -> Result<RoutingFile, YamlError> {
    let options = options(limits);
    serde_saphyr::from_str_with_options(text, options).map_err(|e| YamlError {
        line: e
            .location()
            .map(|l| u32::try_from(l.line()).unwrap_or(u32::MAX))
            .unwrap_or(0),
        message: match e.without_snippet() {
            serde_saphyr::Error::Budget { breach, .. } => budget_message(breach, limits),
            other => first_line(&other.to_string()),
        },
    })
}

/// What a breached budget means for whoever wrote the file.
fn budget_message(breach: &BudgetBreach, limits: &YamlLimits) -> String {
    match breach {
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::MergeKeys { .. } => {
            "YAML anchors, aliases and merge keys (&, *, <<) are not accepted: write each value out"
                .to_owned()
        }
        BudgetBreach::Depth { .. } => format!(
            "nested deeper than the limit of {} levels (routing data needs 6)",
            limits.max_depth
        ),
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => format!(
            "more than the limit of {} YAML values in one file: split it, one account per file",
            limits.max_nodes
        ),
        BudgetBreach::Documents { .. } => {
            "more than one YAML document (---): give one per file".to_owned()
        }
        BudgetBreach::ScalarBytes { .. } | BudgetBreach::InputBytes { .. } => format!(
            "over the limit of {} bytes: split it, one account per file",
            limits.max_file_bytes
        ),
        other => format!("over a parser budget ({other:?})"),
    }
}

fn options(limits: &YamlLimits) -> Options {
    let mut budget = Budget::default();
    budget.max_reader_input_bytes = usize::try_from(limits.max_file_bytes).ok();
    budget.max_events = limits.max_nodes.saturating_mul(2);
    budget.max_nodes = limits.max_nodes;
    budget.max_depth = limits.max_depth;
    budget.max_aliases = 0;
    budget.max_anchors = 0;
    budget.max_documents = 1;
    budget.max_merge_keys = 0;
    budget.max_total_scalar_bytes = usize::try_from(limits.max_file_bytes).unwrap_or(usize::MAX);
    serde_saphyr::options! {
        budget: Some(budget),
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Error,
    }
}

/// serde-saphyr's message without its location suffix and snippet lines.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(text: &str) -> YamlError {
        parse_routing_file(text, &YamlLimits::default()).unwrap_err()
    }

    /// The loader hears of each file the fast reader gives up, with the
    /// line and the reason, and of no other.
    #[test]
    fn a_file_the_fast_path_gives_up_is_noted_with_its_line() {
        let limits = YamlLimits::default();
        let mut noted = None;
        let aliased = "accounts:\n  - id: a\n    forward_to: &f \"+14155550100\"\n";
        let _ = parse_routing_file_noting(aliased, &limits, |u| noted = Some(u));
        assert_eq!(noted.map(|u| u.line), Some(3));
        let mut noted = None;
        let plain = "accounts:\n  - id: a\n    forward_to: \"+14155550100\"\n";
        assert!(parse_routing_file_noting(plain, &limits, |u| noted = Some(u)).is_ok());
        assert_eq!(noted, None);
    }

    #[test]
    fn parses_the_contract_shape() {
        let text = "accounts:\n  - id: acme\n    users:\n      - id: alice\n        phone: \"+14155550101\"\n";
        let file = parse_routing_file(text, &YamlLimits::default()).unwrap();
        assert_eq!(file.accounts[0].id.value, "acme");
        assert_eq!(file.accounts[0].id.line, 2);
        assert_eq!(file.accounts[0].users[0].phone.as_ref().unwrap().line, 5);
    }

    #[test]
    fn unquoted_numbers_are_read_as_text() {
        let text = "accounts:\n  - id: 42\n    numbers:\n      - number: +18005550100\n";
        let file = parse_routing_file(text, &YamlLimits::default()).unwrap();
        assert_eq!(file.accounts[0].id.value, "42");
        assert_eq!(file.accounts[0].numbers[0].number.value, "+18005550100");
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_line() {
        let e = err("accounts:\n  - id: acme\n    colour: blue\n");
        assert_eq!(e.line, 3, "{e:?}");
        assert!(e.message.contains("colour"), "{e:?}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = err("accounts:\n  - id: acme\n    id: other\n");
        assert_eq!(e.line, 3, "{e:?}");
    }

    #[test]
    fn aliases_and_merge_keys_are_refused() {
        let bomb = "accounts:\n  - &a [x, x]\n  - &b [*a, *a]\n";
        let e = err(bomb);
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.contains("aliases"), "{e:?}");
        let merge = "accounts:\n  - &base\n    id: a\n  - <<: *base\n    id: b\n";
        assert!(parse_routing_file(merge, &YamlLimits::default()).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("accounts: {}{}", "[".repeat(100), "]".repeat(100));
        // Refused at the first level the schema has no room for.
        assert_eq!(err(&deep).line, 1);
    }

    /// Scalars of every kind the contacts reader must read as YAML does,
    /// or leave to the parser.
    const SCALARS: &[&str] = &[
        "\"+16505550123\"",
        "+16505550123",
        "650-555-0124",
        "(650) 555 0125",
        "42",
        "0x1F",
        "1e3",
        "+.inf",
        ".5",
        "1_000",
        "007",
        "null",
        "Null",
        "~",
        "true",
        "yes",
        "No",
        "off",
        "y",
        "\"\"",
        "\"a,b\"",
        "\"a]\"",
        "\"x\\ty\"",
        "\"José\"",
        "José",
        "a: b",
        "a #b",
        "&x a",
        "*x",
        "!tag a",
        "u-000-0042",
        "Dana Lee",
        "Dana  Lee",
        "'q'",
        "a,b",
        "[a]",
        "{a: b}",
        "-",
        "- a",
        "2001-12-14",
        "@x",
        "`x`",
        "%x",
        "|",
        ">",
        "? a",
    ];

    fn arb_block() -> impl Strategy<Value = String> {
        let scalar = proptest::sample::select(SCALARS);
        let phones = proptest::collection::vec(scalar.clone(), 0..3)
            .prop_map(|p| format!("[{}]", p.join(", ")));
        let item = (
            phones,
            proptest::option::of(scalar.clone()),
            proptest::option::of(scalar),
            any::<bool>(),
            0usize..4,
        )
            .prop_map(|(phones, user, name, user_first, blank)| {
                let mut fields = vec![format!("phones: {phones}")];
                if let Some(u) = user {
                    fields.push(format!("user: {u}"));
                }
                if let Some(n) = name {
                    fields.push(format!("name: {n}"));
                }
                if user_first {
                    fields.rotate_left(1);
                }
                let mut item = format!("      - {}\n", fields[0]);
                for f in &fields[1..] {
                    item.push_str(&format!("        {f}\n"));
                }
                if blank == 0 {
                    item.push('\n');
                }
                item
            });
        proptest::collection::vec(item, 1..5).prop_map(|items| items.concat())
    }

    fn file_with(block: &str, after: &str) -> String {
        format!(
            "accounts:\n  - id: a\n    users:\n      - id: u-000-0042\n    contacts:\n{block}{after}  - id: b\n    contacts:\n{block}"
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The contacts reader and the parser agree on every file: the
        /// same contacts, lines and errors.
        #[test]
        fn the_contacts_reader_reads_as_the_parser_does(
            block in arb_block(),
            after in proptest::sample::select(&[
                "",
                "    numbers: []\n",
                "\n    numbers: []\n",
                "    region: US\n\n",
                "    numbers: [] # a comment\n",
                "    # a comment\n    numbers: []\n",
                "# a comment\n",
                "      # a comment\n      - phones: []\n",
                "\t\n",
            ][..]),
        ) {
            let text = file_with(&block, after);
            let limits = YamlLimits::default();
            let fast = parse_routing_file(&text, &limits);
            let slow = parse_yaml(&text, &limits);
            proptest::prop_assert_eq!(fast, slow, "{}", text);
        }
    }

    /// Each scalar alone in each place, and in pairs: read as the parser
    /// reads it, or left to it.
    #[test]
    fn every_scalar_reads_as_the_parser_reads_it() {
        let limits = YamlLimits::default();
        let mut taken = 0;
        for a in SCALARS {
            for b in SCALARS {
                for block in [
                    format!("      - phones: [{a}, {b}]\n"),
                    format!("      - phones: [{a}]\n        user: {b}\n"),
                    format!("      - user: {a}\n        phones: []\n        name: {b}\n"),
                ] {
                    let text = file_with(&block, "    numbers: []\n");
                    taken += usize::from(take_contact_blocks(&text).is_some());
                    assert_eq!(
                        parse_routing_file(&text, &limits),
                        parse_yaml(&text, &limits),
                        "{text}"
                    );
                }
            }
        }
        // The reader must take a good share, or this proves nothing.
        assert!(taken > SCALARS.len() * SCALARS.len() / 4, "{taken} taken");
    }

    /// Contacts taken by the reader still count against the node budget:
    /// a file over it is refused as the parser refuses it.
    #[test]
    fn taken_contacts_count_against_the_node_budget() {
        let block = "      - phones: [\"+16505550123\"]\n        user: u-000-0042\n".repeat(40);
        let text = file_with(&block, "");
        assert!(take_contact_blocks(&text).is_some());
        let tight = YamlLimits {
            max_nodes: 300,
            ..YamlLimits::default()
        };
        let refused = parse_routing_file(&text, &tight).unwrap_err();
        assert!(
            refused.message.contains("more than the limit of 300"),
            "{refused:?}"
        );
        assert_eq!(Err(refused), parse_yaml(&text, &tight));
        assert!(parse_routing_file(&text, &YamlLimits::default()).is_ok());
    }

    #[test]
    fn the_contacts_reader_takes_the_exports_shape() {
        let block = "      - phones: [\"+16505550123\", \"+16505550124\"]\n        user: u-000-0042\n      - phones: [\"+16505550125\"]\n";
        let text = file_with(block, "    numbers: []\n");
        let taken = take_contact_blocks(&text).expect("both blocks taken");
        assert_eq!(taken.blocks.len(), 2);
        let fast = parse_routing_file(&text, &YamlLimits::default()).unwrap();
        assert_eq!(fast, parse_yaml(&text, &YamlLimits::default()).unwrap());
        assert_eq!(fast.accounts[1].contacts.value.len(), 2);
        assert_eq!(fast.accounts[1].contacts.value[0].phones[1].line, 12);
    }

    #[test]
    fn broken_yaml_names_a_line() {
        let e = err("accounts:\n  - id: acme\n    users: [\n");
        assert!(e.line >= 3, "{e:?}");
    }
}
