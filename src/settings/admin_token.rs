//! The admin access token (docs/security.md): a secret read from
//! `admin_token_file`, never printed, compared in constant time. A
//! setting like any other: the admin endpoint only asks whether a
//! presented token matches.

/// The admin access token: a secret, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(Box<[u8]>);

impl AdminToken {
    pub fn new(token: &[u8]) -> AdminToken {
        AdminToken(token.into())
    }

    /// Whether `presented` is the token, in time that depends on the
    /// length of `presented` only, not on where it first differs.
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(presented, &self.0)
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// `presented == expected` without an early exit: every byte of
/// `presented` is looked at whatever the others are, so the time taken
/// says nothing about how much of a guess was right. Lengths that differ
/// are folded into the result the same way.
pub fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    let mut diff = u8::from(presented.len() != expected.len());
    for (i, &byte) in presented.iter().enumerate() {
        diff |= byte ^ expected[i % expected.len()];
    }
    // Keeps the compiler from turning the loop back into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_whole_in_constant_time() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cres", b"s3cret"));
        assert!(!constant_time_eq(b"t3cret", b"s3cret"));
        // Prefixes and extensions: the lengths differ.
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"s3crets3cret", b"s3cret"));
        assert!(!constant_time_eq(b"", b"s3cret"));
        // No empty token matches anything, not even an empty guess.
        assert!(!constant_time_eq(b"", b""));
        let token = AdminToken::new(b"s3cret");
        assert!(token.matches(b"s3cret"));
        assert_eq!(format!("{token:?}"), "AdminToken(..)");
    }
}
