//! A tighter reading of the bulk of routing data: the `contacts:` blocks.
//!
//! Contacts are nearly all of a CRM's export (95 % of the bytes at ten
//! million), and the general YAML parser reads them at about 10 MB/s a core.
//! Exports write them in one regular shape:
//!
//! ```yaml
//!     contacts:
//!       - phones: ["+16505550123", "+16505550124"]
//!         user: u-000-0042
//!         name: Dana Lee
//! ```
//!
//! This module reads blocks of exactly that shape line by line, and hands
//! the parser the file with each block taken out: its `contacts:` line
//! becomes `contacts: []` and its other lines become empty, so every line
//! keeps its number and the parser still checks everything else.
//! `yaml::parse_routing_file_noting` then puts the contacts back into the account
//! whose `contacts: []` sits on that line.
//!
//! Anything this reader is not sure of leaves the block to the parser,
//! untouched: another key, a duplicate key, a comment, a tab, a quote with
//! an escape, a plain scalar that YAML could read as something other than
//! its text (`null`, `true`, `~`, one starting with an indicator), a value
//! spanning lines, odd indentation. So a block is either read as the YAML
//! parser reads it (`tests` hold the two to each other on generated blocks)
//! or not taken at all.

use super::schema::{ContactDoc, Lined};

/// One block taken out of the text.
#[derive(Debug)]
pub struct Block {
    /// The line of its `contacts:` key.
    pub key_line: u32,
    /// The line of its first item, where the parser would say the
    /// sequence starts.
    pub first_line: u32,
    pub contacts: Vec<ContactDoc>,
}

/// The text with the blocks taken out, and the blocks.
#[derive(Debug)]
pub struct Taken {
    pub text: String,
    pub blocks: Vec<Block>,
    /// YAML nodes the blocks held, for the parser's node budget.
    pub nodes: usize,
}

/// Takes out every block this reader is sure of; `None` when there is none.
pub fn take_contact_blocks(text: &str) -> Option<Taken> {
    let mut out = String::new();
    let mut blocks = Vec::new();
    let mut nodes = 0usize;
    let mut copied = 0usize;
    let mut lines = Lines::new(text);
    while let Some(line) = lines.next() {
        let Some(indent) = contacts_key(line.text) else {
            continue;
        };
        let mut scan = lines.clone();
        let first_line = scan.number;
        let Some((contacts, block_nodes)) = read_block(&mut scan, indent) else {
            continue;
        };
        out.push_str(&text[copied..line.start]);
        out.push_str(&line.text[..indent]);
        out.push_str("contacts: []\n");
        for _ in line.number + 1..scan.number {
            out.push('\n');
        }
        copied = scan.pos;
        blocks.push(Block {
            key_line: line.number,
            first_line,
            contacts,
        });
        nodes += block_nodes;
        lines = scan;
    }
    if blocks.is_empty() {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(Taken {
        text: out,
        blocks,
        nodes,
    })
}

/// One line, without its line break.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    text: &'a str,
    /// Byte offset of its start.
    start: usize,
    /// 1-based.
    number: u32,
}

#[derive(Debug, Clone)]
struct Lines<'a> {
    text: &'a str,
    /// Start of the next line.
    pos: usize,
    /// Number of the next line.
    number: u32,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            text,
            pos: 0,
            number: 1,
        }
    }

    fn peek(&self) -> Option<Line<'a>> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let end = memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len());
        Some(Line {
            text: &rest[..end],
            start: self.pos,
            number: self.number,
        })
    }

    fn next(&mut self) -> Option<Line<'a>> {
        let line = self.peek()?;
        self.pos = (line.start + line.text.len() + 1).min(self.text.len());
        self.number = self.number.saturating_add(1);
        Some(line)
    }
}

/// The indentation of a line that is exactly `contacts:` (trailing spaces
/// allowed).
fn contacts_key(line: &str) -> Option<usize> {
    let indent = spaces(line);
    (line[indent..].trim_end_matches(' ') == "contacts:").then_some(indent)
}

fn spaces(line: &str) -> usize {
    line.bytes().take_while(|&b| b == b' ').count()
}

/// Reads the items under a `contacts:` key at `key_indent`, leaving `lines`
/// at the first line after them; `None` when the block is not of the shape
/// this reader is sure of.
fn read_block(lines: &mut Lines<'_>, key_indent: usize) -> Option<(Vec<ContactDoc>, usize)> {
    let first = lines.peek()?;
    let item_indent = spaces(first.text);
    if item_indent < key_indent || !first.text[item_indent..].starts_with("- ") {
        return None;
    }
    let mut contacts = Vec::new();
    let mut nodes = 1; // the sequence
    let mut item: Option<Item> = None;
    while let Some(line) = lines.peek() {
        let text = line.text;
        let indent = spaces(text);
        let rest = &text[indent..];
        if indent == text.len() {
            // A blank line: part of the block if more of it follows.
            let mut ahead = lines.clone();
            ahead.next();
            while ahead.peek().is_some_and(|l| spaces(l.text) == l.text.len()) {
                ahead.next();
            }
            let continues = ahead
                .peek()
                .is_some_and(|l| spaces(l.text) >= item_indent && !l.text.trim().is_empty());
            if !continues {
                break;
            }
            lines.next();
            continue;
        }
        // A line of the parent (a key of the account, the next account)
        // ends the block, whatever it holds (a comment after a key, say);
        // a comment line does not: it may sit between items.
        if indent <= key_indent
            && !rest.starts_with(['#', '\t'])
            && !(indent == item_indent && rest.starts_with('-'))
        {
            break;
        }
        if text.bytes().any(|b| b == b'\t' || b == b'\r' || b == b'#') {
            return None;
        }
        if indent == item_indent && rest.starts_with("- ") {
            if let Some(done) = item.take() {
                let (contact, n) = done.finish()?;
                contacts.push(contact);
                nodes += n;
            }
            let mut fresh = Item::default();
            fresh.field(rest[2..].trim_start_matches(' '), line.number)?;
            if rest[2..].starts_with(' ') {
                // `-   phones:` puts the mapping at another indentation.
                return None;
            }
            item = Some(fresh);
        } else if indent == item_indent + 2 {
            item.as_mut()?.field(rest, line.number)?;
        } else {
            return None;
        }
        lines.next();
    }
    let (contact, n) = item?.finish()?;
    contacts.push(contact);
    nodes += n;
    Some((contacts, nodes))
}

#[derive(Default)]
struct Item {
    phones: Option<Vec<Lined<String>>>,
    user: Option<Lined<String>>,
    name: Option<String>,
}

impl Item {
    /// Reads one `key: value` of an item.
    fn field(&mut self, text: &str, line: u32) -> Option<()> {
        let (key, value) = text.split_once(": ")?;
        let value = value.trim_matches(' ');
        match key {
            "phones" if self.phones.is_none() => {
                self.phones = Some(flow_sequence(value, line)?);
            }
            "user" if self.user.is_none() => {
                self.user = Some(Lined {
                    value: scalar(value)?,
                    line,
                });
            }
            "name" if self.name.is_none() => self.name = Some(scalar(value)?),
            _ => return None,
        }
        Some(())
    }

    /// The contact, and the YAML nodes it took: the mapping, each key and
    /// value, and the phones' sequence entries.
    fn finish(self) -> Option<(ContactDoc, usize)> {
        let phones = self.phones?;
        let keys = 1 + usize::from(self.user.is_some()) + usize::from(self.name.is_some());
        let nodes = 1 + 2 * keys + phones.len();
        Some((
            ContactDoc {
                phones,
                user: self.user,
                name: self.name,
            },
            nodes,
        ))
    }
}

/// `[a, "b"]` on one line.
fn flow_sequence(value: &str, line: u32) -> Option<Vec<Lined<String>>> {
    let inner = value.strip_prefix('[')?.strip_suffix(']')?;
    let mut items = Vec::new();
    if inner.trim_matches(' ').is_empty() {
        return Some(items);
    }
    for part in inner.split(',') {
        items.push(Lined {
            value: scalar(part.trim_matches(' '))?,
            line,
        });
    }
    Some(items)
}

/// A double-quoted scalar without escapes, or a plain scalar that YAML can
/// only read as its own text.
fn scalar(value: &str) -> Option<String> {
    if let Some(quoted) = value.strip_prefix('"') {
        let inner = quoted.strip_suffix('"')?;
        if inner
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
        {
            return None;
        }
        return Some(inner.to_owned());
    }
    let first = value.chars().next()?;
    let plain = (first.is_ascii_alphanumeric() || first == '+' || first == '(')
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'.' | b'+' | b'(' | b')' | b'-')
        })
        && !value.ends_with(' ')
        && !matches!(
            value.to_ascii_lowercase().as_str(),
            "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    plain.then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_taken_out_line_for_line() {
        let text = "accounts:
  - id: a
    contacts:
      - phones: [\"+16505550123\", 650-555-0124]
        user: bob
        name: Dana Lee

      - phones: []
    numbers: []
";
        let taken = take_contact_blocks(text).expect("a block");
        assert_eq!(
            taken.text,
            "accounts:\n  - id: a\n    contacts: []\n\n\n\n\n\n    numbers: []\n"
        );
        assert_eq!(taken.blocks.len(), 1);
        let block = &taken.blocks[0];
        assert_eq!(block.key_line, 3);
        assert_eq!(block.contacts.len(), 2);
        let first = &block.contacts[0];
        assert_eq!(first.phones[1].value, "650-555-0124");
        assert_eq!(first.phones[1].line, 4);
        assert_eq!(
            first.user.as_ref().map(|u| (u.value.as_str(), u.line)),
            Some(("bob", 5))
        );
        assert_eq!(first.name.as_deref(), Some("Dana Lee"));
        assert!(block.contacts[1].phones.is_empty());
    }

    #[test]
    fn a_comment_after_the_block_ends_it_and_one_inside_leaves_it() {
        let text =
            "accounts:\n  - id: a\n    contacts:\n      - phones: [\"+1\"]\n    numbers: [] # n\n";
        let taken = take_contact_blocks(text).expect("taken");
        assert_eq!(
            taken.text,
            "accounts:\n  - id: a\n    contacts: []\n\n    numbers: [] # n\n"
        );
        let inside = "accounts:\n  - id: a\n    contacts:\n      - phones: [\"+1\"]\n    # c\n      - phones: [\"+2\"]\n";
        assert!(take_contact_blocks(inside).is_none());
    }

    #[test]
    fn blocks_it_is_not_sure_of_are_left() {
        for block in [
            "      - phones: [\"+1\"] # a comment\n",
            "      - phones: [\"+1\"]\n        user: null\n",
            "      - phones: [\"+1\"]\n        user: \"a\\\"b\"\n",
            "      - phones: [\"+1\"]\n        colour: blue\n",
            "      - phones: [\"+1\"]\n        user: a\n        user: b\n",
            "      - user: a\n",
            "      - phones: [\"+1\",\n          \"+2\"]\n",
            "      - phones: [\"+1\"]\n         user: a\n",
            "      - phones: [*anchor]\n",
            "      - phones: [\"+1\"]\n        name: &x Dana\n",
            "      -  phones: [\"+1\"]\n",
            "      - phones: [\"+1\"]\n\tuser: a\n",
        ] {
            let text = format!("accounts:\n  - id: a\n    contacts:\n{block}");
            assert!(take_contact_blocks(&text).is_none(), "{block:?}");
        }
    }
}
