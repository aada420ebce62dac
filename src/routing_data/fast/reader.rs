//! A pull reader for the subset of YAML that export libraries write: block
//! mappings and sequences (indented or not under their key), flow
//! collections over one or many lines (so JSON too), plain, single- and
//! double-quoted scalars on one line, comments, `---` and `...`.
//!
//! It knows structure only: the caller (`doc`) asks for a value where the
//! schema expects one, and walks mappings and sequences with closures.
//! Whatever falls outside the subset, or is an error, stops the read with
//! [`Unsure`], and the file goes to the full parser, which reads it exactly
//! or reports the error with its line. So this reader never has to be right
//! about a construct it does not take: anchors, tags, block scalars,
//! multi-line scalars, complex keys, tabs, CR line ends, directives.

use std::borrow::Cow;

use super::Unsure;
use super::scalar::{double_quoted, single_quoted};

type R<T> = Result<T, Unsure>;

/// Where a value is read.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ctx {
    /// In block context, inside a block collection at column `parent`
    /// (-1 at the document's root). `indentless`: the value of a mapping
    /// key, which may be a sequence whose dashes sit at the key's column.
    Block { parent: isize, indentless: bool },
    /// Inside a flow collection.
    Flow,
}

/// A value's kind, with the reader positioned to read its content.
#[derive(Debug)]
pub(super) enum Node<'a> {
    /// Nothing written (`key:` with no value).
    Empty,
    Scalar(Scalar<'a>),
    BlockMap {
        col: usize,
    },
    BlockSeq {
        col: usize,
    },
    FlowMap,
    FlowSeq,
}

/// A scalar's text, as YAML reads its characters (quotes and escapes
/// resolved), and whether it was plain (its type then depends on the text).
#[derive(Debug)]
pub(super) struct Scalar<'a> {
    pub text: Cow<'a, str>,
    pub plain: bool,
}

/// What follows in block context.
enum Next {
    /// A content line, indented this far; the reader is at its start.
    Line(usize),
    /// The end of the document (the input's, or a `...` line).
    End,
}

pub(super) struct Reader<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// The 1-based line `pos` is on, and where that line starts.
    line: u32,
    line_start: usize,
    nodes: usize,
    max_nodes: usize,
    depth: usize,
    max_depth: usize,
    /// Open flow collections, and the column their lines must stay right
    /// of (YAML: flow content inside a block collection is indented more
    /// than it).
    flow_level: usize,
    flow_floor: isize,
}

fn unsure<T>(line: u32, why: &'static str) -> R<T> {
    Err(Unsure { line, why })
}

impl<'a> Reader<'a> {
    pub(super) fn new(src: &'a str, max_nodes: usize, max_depth: usize) -> Self {
        Reader {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
            nodes: 0,
            max_nodes,
            depth: 0,
            max_depth,
            flow_level: 0,
            flow_floor: -1,
        }
    }

    fn unsure<T>(&self, why: &'static str) -> R<T> {
        unsure(self.line, why)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn byte_at(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    fn col(&self) -> usize {
        self.pos - self.line_start
    }

    /// One more node against the file's budget, as the parser counts them.
    fn count(&mut self) -> R<()> {
        self.nodes += 1;
        if self.nodes > self.max_nodes {
            return self.unsure("over the node budget");
        }
        Ok(())
    }

    fn enter(&mut self) -> R<()> {
        self.count()?;
        self.depth += 1;
        // At the limit rather than past it: the parser may count the
        // document itself, and a file this deep is not routing data.
        if self.depth >= self.max_depth {
            return self.unsure("nested too deep");
        }
        Ok(())
    }

    fn slice(&self, from: usize, to: usize) -> R<&'a str> {
        match self.src.get(from..to) {
            Some(s) => Ok(s),
            None => self.unsure("not at a character boundary"),
        }
    }

    /// Crosses the line break at `pos`.
    fn newline(&mut self) {
        self.pos += 1;
        self.line = self.line.saturating_add(1);
        self.line_start = self.pos;
    }

    /// Spaces on this line. A tab is separation YAML allows in some places
    /// and not others: not this reader's to decide.
    fn skip_spaces(&mut self) -> R<()> {
        while let Some(b) = self.peek() {
            match b {
                b' ' => self.pos += 1,
                b'\t' => return self.unsure("a tab"),
                _ => break,
            }
        }
        Ok(())
    }

    /// The rest of the line must be spaces and maybe a comment; crosses its
    /// line break.
    fn end_of_line(&mut self) -> R<()> {
        self.skip_spaces()?;
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.newline();
                Ok(())
            }
            // A comment needs space before it, or starts the line.
            Some(b'#') if self.pos == self.line_start || self.bytes[self.pos - 1] == b' ' => {
                self.skip_to_line_end()?;
                if self.peek() == Some(b'\n') {
                    self.newline();
                }
                Ok(())
            }
            Some(b'\r') => self.unsure("a CR line end"),
            Some(_) => self.unsure("more after a value on its line"),
        }
    }

    fn skip_to_line_end(&mut self) -> R<()> {
        let rest = &self.bytes[self.pos..];
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        if rest[..end].last() == Some(&b'\r') {
            return self.unsure("a CR line end");
        }
        self.pos += end;
        Ok(())
    }

    /// From a line's start, past blank and comment lines to the next
    /// content line, staying at its start.
    fn next_line(&mut self) -> R<Next> {
        loop {
            let start = self.pos;
            let mut indent = 0;
            while self.byte_at(start + indent) == Some(b' ') {
                indent += 1;
            }
            match self.byte_at(start + indent) {
                None => return Ok(Next::End),
                Some(b'\n') => {
                    self.pos = start + indent;
                    self.newline();
                }
                Some(b'#') => {
                    self.pos = start + indent;
                    self.skip_to_line_end()?;
                    if self.peek() == Some(b'\n') {
                        self.newline();
                    }
                }
                Some(b'\t' | b'\r') => return self.unsure("a tab or CR"),
                Some(b'%') if indent == 0 => return self.unsure("a directive"),
                Some(b'-' | b'.') if indent == 0 && self.is_marker(start) => {
                    if self.bytes[start] == b'-' {
                        if self.nodes == 0 {
                            // The document's start: `root` reads it.
                            return Ok(Next::Line(0));
                        }
                        return self.unsure("a second document");
                    }
                    // `...`: the document ends; only comments may follow.
                    self.pos = start + 3;
                    self.end_of_line()?;
                    return match self.next_line()? {
                        Next::End => Ok(Next::End),
                        Next::Line(_) => self.unsure("content after `...`"),
                    };
                }
                Some(_) => return Ok(Next::Line(indent)),
            }
        }
    }

    /// Whether the line at `start` is a `---` or `...` marker.
    fn is_marker(&self, start: usize) -> bool {
        let three = &self.bytes[start..(start + 3).min(self.bytes.len())];
        (three == b"---" || three == b"...")
            && matches!(self.byte_at(start + 3), None | Some(b' ' | b'\n'))
    }

    /// The document's root value: leading comments and a `---` skipped.
    pub(super) fn root(&mut self) -> R<(Node<'a>, u32)> {
        if self.src.starts_with('\u{feff}') {
            return self.unsure("a byte order mark");
        }
        let mut indent = match self.next_line()? {
            Next::Line(indent) => indent,
            Next::End => return self.unsure("an empty document"),
        };
        if indent == 0 && self.is_marker(self.pos) && self.bytes[self.pos] == b'-' {
            self.pos += 3;
            self.end_of_line()?;
            indent = match self.next_line()? {
                Next::Line(indent) => indent,
                Next::End => return self.unsure("an empty document"),
            };
        }
        self.pos += indent;
        self.inline(
            Ctx::Block {
                parent: -1,
                indentless: false,
            },
            true,
        )
    }

    /// After the root value: nothing but comments, or `...`.
    pub(super) fn finish(&mut self) -> R<()> {
        match self.next_line()? {
            Next::End => Ok(()),
            Next::Line(_) => self.unsure("more after the document's root"),
        }
    }

    /// The value at this point of `ctx`, with the line it starts on.
    pub(super) fn value(&mut self, ctx: Ctx) -> R<(Node<'a>, u32)> {
        let Ctx::Block { parent, indentless } = ctx else {
            self.flow_space()?;
            return self.flow_value();
        };
        self.skip_spaces()?;
        let here = self.peek();
        let comment = here == Some(b'#') && self.bytes[self.pos - 1] == b' ';
        if !matches!(here, None | Some(b'\n')) && !comment {
            // A sequence item may be a mapping starting on the dash's line;
            // `key: value` cannot start one on the key's line.
            return self.inline(ctx, !indentless);
        }
        // Nothing on this line: the value is below, or there is none.
        self.end_of_line()?;
        match self.next_line()? {
            Next::Line(indent) if indent as isize > parent => {
                self.pos += indent;
                let line = self.line;
                if self.at_dash() {
                    self.enter()?;
                    return Ok((Node::BlockSeq { col: indent }, line));
                }
                if matches!(self.peek(), Some(b'[' | b'{' | b'"' | b'\'')) {
                    return self.unsure("a value on the line below its key");
                }
                self.enter()?;
                Ok((Node::BlockMap { col: indent }, line))
            }
            Next::Line(indent) if indent as isize == parent && indentless => {
                if self.byte_at(self.pos + indent) == Some(b'-') {
                    self.pos += indent;
                    if self.at_dash() {
                        let line = self.line;
                        self.enter()?;
                        return Ok((Node::BlockSeq { col: indent }, line));
                    }
                    self.pos -= indent;
                }
                self.count()?;
                Ok((Node::Empty, self.line))
            }
            _ => {
                self.count()?;
                Ok((Node::Empty, self.line))
            }
        }
    }

    /// Whether `pos` is at a block sequence's `-` (followed by a space or
    /// the line's end).
    fn at_dash(&self) -> bool {
        self.peek() == Some(b'-') && matches!(self.byte_at(self.pos + 1), None | Some(b' ' | b'\n'))
    }

    /// A block value starting at `pos`, on the line of its key or dash.
    /// `compact`: a mapping may start here (after `- `, or at the root).
    fn inline(&mut self, ctx: Ctx, compact: bool) -> R<(Node<'a>, u32)> {
        let line = self.line;
        let col = self.col();
        let Ctx::Block { parent, .. } = ctx else {
            return self.unsure("a block value in flow context");
        };
        match self.peek() {
            Some(b'[') => {
                self.open_flow(parent)?;
                Ok((Node::FlowSeq, line))
            }
            Some(b'{') => {
                self.open_flow(parent)?;
                Ok((Node::FlowMap, line))
            }
            Some(b'"' | b'\'') => {
                let start = self.pos;
                let text = self.quoted()?;
                self.skip_spaces()?;
                if self.peek() == Some(b':') {
                    if !compact {
                        return self.unsure("a mapping on its key's line");
                    }
                    self.pos = start;
                    self.enter()?;
                    return Ok((Node::BlockMap { col }, line));
                }
                self.end_of_line()?;
                self.count()?;
                Ok((Node::Scalar(Scalar { text, plain: false }), line))
            }
            Some(b) if !plain_start(b) => self.unsure("an indicator starts the value"),
            _ => {
                let rest = &self.bytes[self.pos..];
                let eol = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                let mut end = eol;
                let mut key = false;
                for (i, &b) in rest[..eol].iter().enumerate() {
                    match b {
                        b'#' if i > 0 && rest[i - 1] == b' ' => {
                            end = i;
                            break;
                        }
                        b':' if matches!(rest.get(i + 1), None | Some(b' ' | b'\n')) => {
                            key = true;
                            break;
                        }
                        b'\t' | b'\r' => return self.unsure("a tab or CR"),
                        _ => {}
                    }
                }
                if key {
                    if !compact {
                        return self.unsure("a mapping on its key's line");
                    }
                    self.enter()?;
                    return Ok((Node::BlockMap { col }, line));
                }
                let text = self.slice(self.pos, self.pos + end)?.trim_end_matches(' ');
                self.pos += end;
                self.end_of_line()?;
                self.count()?;
                Ok((
                    Node::Scalar(Scalar {
                        text: Cow::Borrowed(text),
                        plain: true,
                    }),
                    line,
                ))
            }
        }
    }

    fn open_flow(&mut self, parent: isize) -> R<()> {
        self.enter()?;
        self.flow_level = 1;
        self.flow_floor = parent;
        self.pos += 1;
        Ok(())
    }

    /// A single-line quoted scalar at `pos`, which is past it after.
    fn quoted(&mut self) -> R<Cow<'a, str>> {
        let quote = self.bytes[self.pos];
        let start = self.pos + 1;
        let read = if quote == b'"' {
            double_quoted(&self.src[start..])
        } else {
            single_quoted(&self.src[start..])
        };
        match read {
            Some((text, len)) => {
                self.pos = start + len + 1;
                Ok(text)
            }
            None => self.unsure("a quoted scalar this reader does not take"),
        }
    }

    /// Whitespace, line breaks and comments inside a flow collection.
    fn flow_space(&mut self) -> R<()> {
        loop {
            match self.peek() {
                Some(b' ') => self.pos += 1,
                Some(b'\n') => {
                    self.newline();
                    let mut indent = 0;
                    while self.byte_at(self.pos + indent) == Some(b' ') {
                        indent += 1;
                    }
                    let blank = matches!(self.byte_at(self.pos + indent), None | Some(b'\n'));
                    if !blank && indent as isize <= self.flow_floor {
                        return self.unsure("flow content not indented past its block");
                    }
                    self.pos += indent;
                }
                Some(b'#') if matches!(self.bytes[self.pos - 1], b' ' | b'\n') => {
                    self.skip_to_line_end()?;
                }
                Some(b'\t' | b'\r') => return self.unsure("a tab or CR"),
                _ => return Ok(()),
            }
        }
    }

    /// A value inside a flow collection, at `pos`.
    fn flow_value(&mut self) -> R<(Node<'a>, u32)> {
        let line = self.line;
        match self.peek() {
            Some(b'[') => {
                self.enter()?;
                self.flow_level += 1;
                self.pos += 1;
                Ok((Node::FlowSeq, line))
            }
            Some(b'{') => {
                self.enter()?;
                self.flow_level += 1;
                self.pos += 1;
                Ok((Node::FlowMap, line))
            }
            Some(b'"' | b'\'') => {
                let text = self.quoted()?;
                self.count()?;
                Ok((Node::Scalar(Scalar { text, plain: false }), line))
            }
            Some(b) if plain_start(b) => {
                let start = self.pos;
                while let Some(b) = self.peek() {
                    match b {
                        b',' | b']' | b'}' | b'\n' => break,
                        b'#' if self.bytes[self.pos - 1] == b' ' => break,
                        // `:` may end a key or sit inside the scalar:
                        // YAML's rules for it in flow are not this reader's.
                        b':' | b'[' | b'{' | b'\t' | b'\r' => {
                            return self.unsure("an indicator in a flow scalar");
                        }
                        _ => self.pos += 1,
                    }
                }
                let text = self.slice(start, self.pos)?.trim_end_matches(' ');
                self.count()?;
                Ok((
                    Node::Scalar(Scalar {
                        text: Cow::Borrowed(text),
                        plain: true,
                    }),
                    line,
                ))
            }
            _ => self.unsure("no value where a flow value should be"),
        }
    }

    /// The items of a sequence node, each read by `item` in `Ctx`.
    pub(super) fn seq(
        &mut self,
        node: Node<'a>,
        mut item: impl FnMut(&mut Self, Ctx) -> R<()>,
    ) -> R<()> {
        match node {
            Node::BlockSeq { col } => {
                loop {
                    // At the dash.
                    self.pos += 1;
                    item(
                        self,
                        Ctx::Block {
                            parent: col as isize,
                            indentless: false,
                        },
                    )?;
                    match self.next_line()? {
                        Next::Line(indent) if indent == col => {
                            self.pos += indent;
                            if !self.at_dash() {
                                // A key of the mapping this sequence is the
                                // value of: the parent reads it.
                                self.pos -= indent;
                                break;
                            }
                        }
                        Next::Line(indent) if indent > col => {
                            return self.unsure("a line indented into a sequence item");
                        }
                        _ => break,
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            Node::FlowSeq => {
                let mut first = true;
                loop {
                    self.flow_space()?;
                    if self.peek() == Some(b']') && first {
                        break;
                    }
                    item(self, Ctx::Flow)?;
                    first = false;
                    self.flow_space()?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => break,
                        _ => return self.unsure("no `,` or `]` after a flow item"),
                    }
                }
                self.pos += 1;
                self.close_flow()
            }
            _ => self.unsure("a sequence expected"),
        }
    }

    /// The entries of a mapping node: `entry` is given each key and reads
    /// its value in `Ctx`.
    pub(super) fn map(
        &mut self,
        node: Node<'a>,
        mut entry: impl FnMut(&mut Self, &str, Ctx) -> R<()>,
    ) -> R<()> {
        match node {
            Node::BlockMap { col } => {
                loop {
                    let key = self.block_key()?;
                    entry(
                        self,
                        &key,
                        Ctx::Block {
                            parent: col as isize,
                            indentless: true,
                        },
                    )?;
                    match self.next_line()? {
                        Next::Line(indent) if indent == col => {
                            self.pos += indent;
                            if self.at_dash() {
                                return self.unsure("a dash among a mapping's keys");
                            }
                        }
                        Next::Line(indent) if indent > col => {
                            return self.unsure("a line indented into a mapping's value");
                        }
                        _ => break,
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            Node::FlowMap => {
                let mut first = true;
                loop {
                    self.flow_space()?;
                    if self.peek() == Some(b'}') && first {
                        break;
                    }
                    first = false;
                    let key = self.flow_key()?;
                    entry(self, &key, Ctx::Flow)?;
                    self.flow_space()?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => break,
                        _ => return self.unsure("no `,` or `}` after a flow entry"),
                    }
                }
                self.pos += 1;
                self.close_flow()
            }
            _ => self.unsure("a mapping expected"),
        }
    }

    fn close_flow(&mut self) -> R<()> {
        self.depth -= 1;
        self.flow_level -= 1;
        if self.flow_level == 0 {
            // Back in block context: the collection ends its line.
            self.flow_floor = -1;
            self.end_of_line()?;
        }
        Ok(())
    }

    /// A block mapping's key and its `:`, at `pos`.
    fn block_key(&mut self) -> R<Cow<'a, str>> {
        let key = if matches!(self.peek(), Some(b'"' | b'\'')) {
            let key = self.quoted()?;
            self.skip_spaces()?;
            key
        } else {
            Cow::Borrowed(self.plain_key()?)
        };
        if self.peek() != Some(b':')
            || !matches!(self.byte_at(self.pos + 1), None | Some(b' ' | b'\n'))
        {
            return self.unsure("not a `key: value`");
        }
        self.pos += 1;
        self.count()?;
        Ok(key)
    }

    /// A flow mapping's key and its `:`. After a quoted key (JSON's) the
    /// value may follow the `:` at once; after a plain one, a space must.
    fn flow_key(&mut self) -> R<Cow<'a, str>> {
        let key = if matches!(self.peek(), Some(b'"' | b'\'')) {
            let key = self.quoted()?;
            self.skip_spaces()?;
            if self.peek() != Some(b':') {
                return self.unsure("no `:` after a flow key");
            }
            key
        } else {
            let key = self.plain_key()?;
            if self.peek() != Some(b':')
                || !matches!(self.byte_at(self.pos + 1), Some(b' ' | b'\n'))
            {
                return self.unsure("no `: ` after a flow key");
            }
            Cow::Borrowed(key)
        };
        self.pos += 1;
        self.count()?;
        Ok(key)
    }

    /// A plain key: the schema's keys are ASCII words.
    fn plain_key(&mut self) -> R<&'a str> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        if self.pos == start {
            return self.unsure("a key this reader does not take");
        }
        self.slice(start, self.pos)
    }
}

/// Whether a plain scalar this reader takes may start with `b`: not an
/// indicator, which would make it something else or an error.
fn plain_start(b: u8) -> bool {
    !matches!(
        b,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
            | b' '
            | b'\t'
            | b'\r'
            | b'\n'
    )
}
