//! Scalars: quoted ones read to their characters, and which plain ones
//! the schema may take without asking the full parser.
//!
//! YAML's meaning of a plain scalar depends on its text: `~` and `null`
//! are null, `true` a boolean, `0x1F` and `+16505550123` integers (YAML
//! 1.2 core schema). The schema's string fields take integers and floats
//! as the text written (the full parser does, and `tests` hold the two to
//! each other), so for a string field only null and boolean spellings,
//! old YAML 1.1 ones included, are left to the parser, along with anything
//! that does not start like ordinary text.

use std::borrow::Cow;

/// A double-quoted scalar on one line: its characters, and the bytes up to
/// its closing quote. `None` for one this reader does not take: a line
/// break inside, a control character, or an escape beyond the common ones.
pub(super) fn double_quoted(s: &str) -> Option<(Cow<'_, str>, usize)> {
    let bytes = s.as_bytes();
    let stop = memchr::memchr3(b'"', b'\\', b'\n', bytes)?;
    if bytes[stop] == b'"' {
        let inner = &s[..stop];
        if inner.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return None;
        }
        return Some((Cow::Borrowed(inner), stop));
    }
    let mut out = String::with_capacity(s.len().min(64));
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((Cow::Owned(out), i)),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\u{b}',
                    'f' => '\u{c}',
                    'r' => '\r',
                    'e' => '\u{1b}',
                    ' ' => ' ',
                    '"' => '"',
                    '/' => '/',
                    '\\' => '\\',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    // PyYAML writes non-ASCII letters so unless told to
                    // allow Unicode: `M\xFCller`.
                    'x' => hex(&mut chars, 2)?,
                    'u' => hex(&mut chars, 4)?,
                    'U' => hex(&mut chars, 8)?,
                    _ => return None,
                });
            }
            c if c.is_control() => return None,
            c => out.push(c),
        }
    }
    None
}

/// The character of an escape's `digits` hex digits. A lone surrogate
/// (JSON's way of writing astral characters) is not a YAML character.
fn hex(chars: &mut std::str::CharIndices<'_>, digits: usize) -> Option<char> {
    let mut code = 0u32;
    for _ in 0..digits {
        code = code * 16 + chars.next()?.1.to_digit(16)?;
    }
    char::from_u32(code)
}

/// A single-quoted scalar on one line (`''` is a quote).
pub(super) fn single_quoted(s: &str) -> Option<(Cow<'_, str>, usize)> {
    let bytes = s.as_bytes();
    let mut at = 0;
    let mut owned: Option<String> = None;
    loop {
        let stop = at + memchr::memchr2(b'\'', b'\n', &bytes[at..])?;
        if bytes[stop] == b'\n' {
            return None;
        }
        let piece = &s[at..stop];
        if piece.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return None;
        }
        if bytes.get(stop + 1) == Some(&b'\'') {
            let text = owned.get_or_insert_with(String::new);
            text.push_str(piece);
            text.push('\'');
            at = stop + 2;
            continue;
        }
        return Some(match owned {
            Some(mut text) => {
                text.push_str(piece);
                (Cow::Owned(text), stop)
            }
            None => (Cow::Borrowed(piece), stop),
        });
    }
}

/// Whether a plain scalar reads as its own text in a string field.
pub(super) fn plain_is_text(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let starts_well = first.is_ascii_alphanumeric()
        || first == '+'
        || first == '('
        || (!first.is_ascii() && first.is_alphabetic());
    starts_well && !text.chars().any(char::is_control) && !is_null(text) && !is_boolish(text)
}

/// YAML's null spellings (the empty value is handled by the reader).
pub(super) fn is_null(text: &str) -> bool {
    matches!(text, "~" | "null" | "Null" | "NULL")
}

/// Boolean spellings of YAML 1.2 and 1.1, in any case: a parser may read
/// any of them as a boolean.
fn is_boolish(text: &str) -> bool {
    text.len() <= 5
        && matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_scalars_read_to_their_characters() {
        assert_eq!(double_quoted("abc\" x"), Some((Cow::Borrowed("abc"), 3)));
        assert_eq!(
            double_quoted(r#"a\"b\u00e9\\" x"#).map(|(t, n)| (t.into_owned(), n)),
            Some(("a\"bé\\".to_owned(), 12))
        );
        assert_eq!(double_quoted("a\nb\""), None);
        assert_eq!(double_quoted(r#"\ud83d\ude00""#), None);
        assert_eq!(
            double_quoted(r#"M\xFCller\U0001F600""#).map(|(t, _)| t.into_owned()),
            Some("Müller😀".to_owned())
        );
        assert_eq!(double_quoted(r#"\q""#), None);
        assert_eq!(
            single_quoted("it''s' x"),
            Some((Cow::Owned("it's".into()), 5))
        );
        assert_eq!(single_quoted("abc'"), Some((Cow::Borrowed("abc"), 3)));
        assert_eq!(single_quoted("abc\n'"), None);
    }

    #[test]
    fn plain_text_leaves_nulls_and_booleans_to_the_parser() {
        for text in [
            "+16505550123",
            "0x1F",
            "1e3",
            "José",
            "u-000-0042",
            "Dana Lee",
        ] {
            assert!(plain_is_text(text), "{text}");
        }
        for text in [
            "", "~", "null", "NULL", "true", "No", "off", "Y", ".5", "-1", "@x",
        ] {
            assert!(!plain_is_text(text), "{text}");
        }
    }
}
