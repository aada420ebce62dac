//! Choosing the response the caller gets when no leg answered (RFC 3261
//! §16.7 step 6, RFC 3261 §16.9):
//!
//! - a 6xx beats everything (and stops forking, §16.7 step 5);
//! - otherwise the lowest class wins: 3xx, then 4xx, then 5xx;
//! - a failure made up locally never outranks a real answer: a leg we
//!   cancelled ourselves because nobody picked up (its 487 says nothing
//!   about the callee) and a Timer B or C timeout both count as "no
//!   answer" (408), below every real response; a transport error (§16.9:
//!   "as if ... a 503") ranks last;
//! - at equal rank the first one kept wins;
//! - a selected 503 goes upstream as 500 (§16.7 step 6: the caller must
//!   not think this proxy is overloaded).
//!
//! 2xx responses never pass through here: they are forwarded the moment
//! they arrive. 401/407 aggregation (§16.7 step 7) is not done: the
//! challenge of one leg is forwarded like any 4xx.

/// A failure with no real response behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalFailure {
    /// Timer B or C fired, or we cancelled the leg for ringing too long.
    NoAnswer,
    /// The transport could not reach the next hop (§16.9).
    TransportError,
}

/// What goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Relay this response (our Via already removed).
    Relay { status: u16, bytes: Vec<u8> },
    /// Build this one locally.
    Local { status: u16, reason: &'static str },
}

/// The best final response so far.
#[derive(Debug, Default)]
pub struct Best {
    kept: Option<(u8, Kept)>,
}

#[derive(Debug)]
enum Kept {
    Real { status: u16, bytes: Vec<u8> },
    Local(LocalFailure),
}

impl Best {
    /// Offers a real final non-2xx response (300..=699). `bytes` is only
    /// called when it is kept, so losing candidates cost no copy.
    pub fn offer_response(&mut self, status: u16, bytes: impl FnOnce() -> Vec<u8>) {
        let rank = match status / 100 {
            6 => 0,
            3 => 1,
            4 => 2,
            _ => 3,
        };
        if self.beats(rank) {
            self.kept = Some((
                rank,
                Kept::Real {
                    status,
                    bytes: {
                        let mut bytes = bytes();
                        bytes.shrink_to_fit();
                        bytes
                    },
                },
            ));
        }
    }

    pub fn offer_local(&mut self, failure: LocalFailure) {
        let rank = match failure {
            LocalFailure::NoAnswer => 4,
            LocalFailure::TransportError => 5,
        };
        if self.beats(rank) {
            self.kept = Some((rank, Kept::Local(failure)));
        }
    }

    /// Bytes held on the heap, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match &self.kept {
            Some((_, Kept::Real { bytes, .. })) => bytes.capacity(),
            _ => 0,
        }
    }

    /// Whether a 6xx has been kept.
    pub fn has_global_failure(&self) -> bool {
        matches!(self.kept, Some((0, _)))
    }

    fn beats(&self, rank: u8) -> bool {
        self.kept.as_ref().is_none_or(|(kept, _)| rank < *kept)
    }

    /// The response to send upstream; 408 when nothing was offered.
    pub fn choose(&mut self) -> Choice {
        match self.kept.take() {
            Some((_, Kept::Real { status: 503, .. })) => Choice::Local {
                status: 500,
                reason: "Server Internal Error",
            },
            Some((_, Kept::Real { status, bytes })) => Choice::Relay { status, bytes },
            Some((_, Kept::Local(LocalFailure::TransportError))) => Choice::Local {
                status: 500,
                reason: "Server Internal Error",
            },
            Some((_, Kept::Local(LocalFailure::NoAnswer))) | None => Choice::Local {
                status: 408,
                reason: "Request Timeout",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(status: u16) -> Choice {
        Choice::Relay {
            status,
            bytes: status.to_string().into_bytes(),
        }
    }

    fn choose(offers: &[Result<u16, LocalFailure>]) -> Choice {
        let mut best = Best::default();
        for offer in offers {
            match *offer {
                Ok(status) => best.offer_response(status, || status.to_string().into_bytes()),
                Err(failure) => best.offer_local(failure),
            }
        }
        best.choose()
    }

    #[test]
    fn selection_rules() {
        use LocalFailure::*;
        let local = |status, reason| Choice::Local { status, reason };
        // Lowest class wins; first at equal rank.
        assert_eq!(choose(&[Ok(503), Ok(486)]), relay(486));
        assert_eq!(choose(&[Ok(486), Ok(404)]), relay(486));
        assert_eq!(choose(&[Ok(480), Ok(302)]), relay(302));
        // 6xx beats a lower class.
        assert_eq!(choose(&[Ok(302), Ok(603), Ok(486)]), relay(603));
        // 503 becomes 500.
        assert_eq!(choose(&[Ok(503)]), local(500, "Server Internal Error"));
        // A local failure never outranks a real answer, whatever the order.
        assert_eq!(choose(&[Err(NoAnswer), Ok(500)]), relay(500));
        assert_eq!(choose(&[Ok(486), Err(NoAnswer)]), relay(486));
        assert_eq!(
            choose(&[Err(TransportError), Ok(503)]),
            local(500, "Server Internal Error")
        );
        // 408 only when nothing answered.
        assert_eq!(choose(&[Err(NoAnswer)]), local(408, "Request Timeout"));
        assert_eq!(
            choose(&[Err(TransportError), Err(NoAnswer)]),
            local(408, "Request Timeout")
        );
        assert_eq!(
            choose(&[Err(TransportError)]),
            local(500, "Server Internal Error")
        );
        assert_eq!(choose(&[]), local(408, "Request Timeout"));
    }

    #[test]
    fn losing_candidates_are_not_copied() {
        let mut best = Best::default();
        best.offer_response(486, || b"486".to_vec());
        best.offer_response(500, || panic!("a 5xx never beats a 4xx"));
        assert!(!best.has_global_failure());
        best.offer_response(600, || b"600".to_vec());
        assert!(best.has_global_failure());
    }
}
