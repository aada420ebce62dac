//! Contact templates (docs/operations.md): the text of a 302's Contact URI, with
//! placeholders filled per request.
//!
//! `{number}` is the E.164 target with `+`, `{source}` the sender's
//! `host:port`, `{source_host}` the sender's host, `{transport}` the
//! transport the request came on (`udp`, `tcp` or `tls`, for a
//! `;transport=` parameter: RFC 3261 §19.1.1). Parsed once when the
//! setting or the routing data is loaded; expansion only copies bytes.

use std::fmt;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Box<str>),
    Number,
    Source,
    SourceHost,
    Transport,
}

/// A parsed Contact template.
#[derive(Clone, PartialEq, Eq)]
pub struct ContactTemplate {
    text: Box<str>,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("it must start with sip: or sips:")]
    NotSipUri,
    #[error("it has no {{number}} placeholder, so every call would go to the same place")]
    NoNumber,
    #[error(
        "{{{0}}} is not a placeholder: use {{number}}, {{source}}, {{source_host}} or {{transport}}"
    )]
    UnknownPlaceholder(String),
    #[error("it has an unclosed '{{'")]
    Unclosed,
    #[error("it contains {0:?}, which cannot appear in a Contact URI")]
    BadCharacter(char),
}

/// What the placeholders stand for in one request.
#[derive(Debug, Clone, Copy)]
pub struct Fill<'a> {
    /// E.164 with `+`.
    pub number: &'a str,
    /// `host:port` of the sender (IPv6 hosts in brackets).
    pub source: &'a str,
    /// The sender's host (IPv6 in brackets).
    pub source_host: &'a str,
    /// `udp`, `tcp` or `tls`.
    pub transport: &'a str,
}

/// Whether `text` starts with `sip:` or `sips:` (any case).
pub fn has_sip_scheme(text: &str) -> bool {
    let lower = text
        .get(..5)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    lower.starts_with("sip:") || lower.starts_with("sips:")
}

/// The first character that cannot appear in a Contact URI written between
/// angle brackets: white space, controls, `<`, `>` or `"`.
pub fn unfit_for_contact(text: &str) -> Option<char> {
    text.chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
}

impl ContactTemplate {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if !has_sip_scheme(text) {
            return Err(TemplateError::NotSipUri);
        }
        if let Some(c) = unfit_for_contact(text) {
            return Err(TemplateError::BadCharacter(c));
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].into()));
            }
            let close = rest[open..].find('}').ok_or(TemplateError::Unclosed)? + open;
            pieces.push(match &rest[open + 1..close] {
                "number" => Piece::Number,
                "source" => Piece::Source,
                "source_host" => Piece::SourceHost,
                "transport" => Piece::Transport,
                other => return Err(TemplateError::UnknownPlaceholder(other.to_owned())),
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.into()));
        }
        if !pieces.contains(&Piece::Number) {
            return Err(TemplateError::NoNumber);
        }
        Ok(ContactTemplate {
            text: text.into(),
            pieces,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Appends the filled template to `out`.
    pub fn expand_into(&self, fill: &Fill<'_>, out: &mut Vec<u8>) {
        self.expand_with(out, |placeholder, out| {
            let text = match placeholder {
                Placeholder::Number => fill.number,
                Placeholder::Source => fill.source,
                Placeholder::SourceHost => fill.source_host,
                Placeholder::Transport => fill.transport,
            };
            out.extend_from_slice(text.as_bytes());
        });
    }

    /// Appends the template to `out`, with `fill` writing each placeholder
    /// straight into it: no intermediate strings on the request path.
    pub fn expand_with(&self, out: &mut Vec<u8>, mut fill: impl FnMut(Placeholder, &mut Vec<u8>)) {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                Piece::Number => fill(Placeholder::Number, out),
                Piece::Source => fill(Placeholder::Source, out),
                Piece::SourceHost => fill(Placeholder::SourceHost, out),
                Piece::Transport => fill(Placeholder::Transport, out),
            }
        }
    }
}

/// A placeholder of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{number}`: E.164 with `+`.
    Number,
    /// `{source}`: the sender's `host:port`.
    Source,
    /// `{source_host}`: the sender's host.
    SourceHost,
    /// `{transport}`: `udp`, `tcp` or `tls`.
    Transport,
}

impl fmt::Debug for ContactTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContactTemplate({:?})", self.text)
    }
}

impl fmt::Display for ContactTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(t: &str) -> String {
        let template = ContactTemplate::parse(t).unwrap();
        let mut out = Vec::new();
        template.expand_into(
            &Fill {
                number: "+14155550101",
                source: "[2001:db8::1]:5062",
                source_host: "[2001:db8::1]",
                transport: "tls",
            },
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fills_every_placeholder() {
        assert_eq!(
            expand("sip:{number}@{source_host};user=phone"),
            "sip:+14155550101@[2001:db8::1];user=phone"
        );
        assert_eq!(
            expand("sips:{number}@{source}"),
            "sips:+14155550101@[2001:db8::1]:5062"
        );
        assert_eq!(
            expand("sip:{number}@pstn.example.net"),
            "sip:+14155550101@pstn.example.net"
        );
        assert_eq!(
            expand("sip:{number}@{source};transport={transport}"),
            "sip:+14155550101@[2001:db8::1]:5062;transport=tls"
        );
    }

    #[test]
    fn rejects_bad_templates() {
        use TemplateError::*;
        let err = |t: &str| ContactTemplate::parse(t).unwrap_err();
        assert_eq!(err("http://{number}"), NotSipUri);
        assert_eq!(err("sip:fixed@host"), NoNumber);
        assert_eq!(err("sip:{num}@host"), UnknownPlaceholder("num".into()));
        assert_eq!(err("sip:{number@host"), Unclosed);
        assert_eq!(err("sip:{number}@ho st"), BadCharacter(' '));
        assert_eq!(err("sip:{number}@host>"), BadCharacter('>'));
    }
}
