//! The Via header lines of one request, which a response copies in order
//! (RFC 3261 §8.2.6.2). A request that came through a chain of proxies
//! carries one line per hop: RFC 4475 §3.1.1.7 has 34. As many are kept as
//! a request can have hops, Max-Forwards' initial value of 70 (§8.1.1.6);
//! one more is a `400 Too Many Via Headers`. The usual few stay inline, so
//! reading them allocates nothing; past that they move to the heap once.

/// The most Via header lines a request may carry (each may hold several
/// comma-separated values).
pub const MAX_VIA_LINES: usize = 70;

/// Lines kept without allocating: a call through a trunk and two proxies
/// has three.
const INLINE: usize = 8;

/// Every Via header line of a request, in order.
#[derive(Debug, Clone)]
pub struct ViaLines<'a> {
    inline: [&'a [u8]; INLINE],
    /// Lines in `inline`, while `spilled` is empty.
    inline_len: usize,
    /// Every line, once there are more than `INLINE`.
    spilled: Vec<&'a [u8]>,
}

impl Default for ViaLines<'_> {
    fn default() -> Self {
        ViaLines {
            inline: [b""; INLINE],
            inline_len: 0,
            spilled: Vec::new(),
        }
    }
}

impl<'a> ViaLines<'a> {
    /// Adds the next line; `false` (and nothing kept) past
    /// [`MAX_VIA_LINES`].
    pub fn push(&mut self, line: &'a [u8]) -> bool {
        if self.len() == MAX_VIA_LINES {
            return false;
        }
        if self.spilled.is_empty() && self.inline_len < INLINE {
            self.inline[self.inline_len] = line;
            self.inline_len += 1;
            return true;
        }
        if self.spilled.is_empty() {
            self.spilled.reserve_exact(MAX_VIA_LINES);
            self.spilled
                .extend_from_slice(&self.inline[..self.inline_len]);
        }
        self.spilled.push(line);
        true
    }

    /// How many lines there are.
    pub fn len(&self) -> usize {
        if self.spilled.is_empty() {
            self.inline_len
        } else {
            self.spilled.len()
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lines, in order.
    pub fn as_slice(&self) -> &[&'a [u8]] {
        if self.spilled.is_empty() {
            &self.inline[..self.inline_len]
        } else {
            &self.spilled
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_line_in_order_up_to_the_limit() {
        let names: Vec<String> = (0..=MAX_VIA_LINES).map(|i| format!("hop{i}")).collect();
        for count in [0, 1, INLINE, INLINE + 1, 34, MAX_VIA_LINES] {
            let mut lines = ViaLines::default();
            for name in &names[..count] {
                assert!(lines.push(name.as_bytes()));
            }
            assert_eq!(lines.len(), count);
            let kept: Vec<&[u8]> = names[..count].iter().map(|n| n.as_bytes()).collect();
            assert_eq!(lines.as_slice(), kept.as_slice());
        }
    }

    #[test]
    fn refuses_the_line_past_the_limit() {
        let mut lines = ViaLines::default();
        for _ in 0..MAX_VIA_LINES {
            assert!(lines.push(b"v"));
        }
        assert!(!lines.push(b"one too many"));
        assert_eq!(lines.len(), MAX_VIA_LINES);
        assert!(!lines.as_slice().contains(&&b"one too many"[..]));
    }

    #[test]
    fn the_usual_few_allocate_nothing() {
        let mut lines = ViaLines::default();
        for _ in 0..INLINE {
            lines.push(b"v");
        }
        assert_eq!(lines.spilled.capacity(), 0);
    }
}
