//! Claims: a name (a username, an entitlement's alias in its app) or a slot
//! (a pair's open request of one kind) held by one holder, written before the
//! holder itself, so that of two concurrent writers exactly one gets it. If
//! the writer dies between the claim and the holder, the claim would hold
//! nothing forever; [`may_take_over`] is the one rule for when another may
//! take it, used by every claim.

/// What the handler found of a claim's current holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// It exists and still uses the claim.
    Live,
    /// It exists but no longer uses it (deleted, renamed away, decided).
    Gone,
    /// It was never written: its writer died after claiming, or is writing
    /// it right now.
    Missing,
}

/// How long a claim whose holder was never written still protects it:
/// ample time for the claimer to write the holder.
pub const ORPHAN_MICROS: i64 = 60_000_000;

/// Whether a claim held by another may be taken over at `now`; `claimed_at`
/// is when the claim was last written.
pub fn may_take_over(holder: Holder, claimed_at: i64, now: i64) -> bool {
    match holder {
        Holder::Live => false,
        Holder::Gone => true,
        Holder::Missing => now.saturating_sub(claimed_at) > ORPHAN_MICROS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_holder_keeps_its_claim_a_gone_one_loses_it_a_missing_one_after_a_minute() {
        let claimed_at = 1_000;
        for now in [claimed_at, claimed_at + ORPHAN_MICROS * 10] {
            assert!(!may_take_over(Holder::Live, claimed_at, now));
            assert!(may_take_over(Holder::Gone, claimed_at, now));
        }
        // A holder being written right now is not robbed of its claim.
        assert!(!may_take_over(
            Holder::Missing,
            claimed_at,
            claimed_at + ORPHAN_MICROS
        ));
        assert!(may_take_over(
            Holder::Missing,
            claimed_at,
            claimed_at + ORPHAN_MICROS + 1
        ));
    }
}
