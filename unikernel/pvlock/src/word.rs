//! The lock word: one `u32` holding both ticket counters and the slow-path
//! flag.
//!
//! ```text
//!  31                 16 15                 1   0
//! +---------------------+--------------------+---+
//! |  tail (next ticket) |   head (owner)     | F |
//! +---------------------+--------------------+---+
//! ```
//!
//! Tickets are even `u16` values and advance by [`TICKET_INC`] = 2, so bit 0
//! is free in both halves. In the tail it is always 0; in the head it is the
//! slow-path flag F ("a waiter may be halted: the unlocker must kick").
//!
//! Keeping head, flag and tail in one word is what makes the protocol work:
//! the locker that clears a stale flag must check "nobody else queued"
//! (tail == head + 2) in the same atomic step, and the waiter's flag-setting
//! RMW and the unlocker's releasing RMW are totally ordered because they hit
//! the same location.
//!
//! Carries: taking a ticket adds 2 to the high half, where a carry out of
//! bit 31 is simply dropped. Releasing adds 2 to the low half; when the head
//! wraps (0xfffe|F to 0|F) the carry lands in bit 16, [`WRAP_CARRY`], which no
//! ticket uses (tickets are even) and every reader masks out. The next owner
//! clears it while it holds the lock. So `unlock` is one bare `fetch_add`: it
//! needs no earlier load of the word, which cost about 40% of an uncontended
//! lock+unlock pair (`examples/uncontended.rs`).

/// A ticket: an even `u16`.
pub(crate) type Ticket = u16;

/// Tickets advance by 2, leaving bit 0 of the head for [`SLOWPATH`].
pub(crate) const TICKET_INC: u16 = 2;

/// Bit 0 of the head: some waiter entered the slow path and may be halted.
pub(crate) const SLOWPATH: u16 = 1;

/// The largest ticket; releasing it wraps the head to 0.
#[cfg(test)]
pub(crate) const LAST_TICKET: Ticket = u16::MAX - 1;

const TAIL_SHIFT: u32 = 16;

/// What `lock` adds to the word to take a ticket.
pub(crate) const TAIL_INC: u32 = (TICKET_INC as u32) << TAIL_SHIFT;

/// The head half: the owner's ticket plus the [`SLOWPATH`] flag.
#[inline(always)]
pub(crate) const fn head(word: u32) -> u16 {
    word as u16
}

/// The tail half: the next ticket to hand out.
/// Bit 0 of the tail half. Tickets are even, so no ticket uses it: it takes the
/// carry out of the head when the head wraps (`unlock` is a bare `fetch_add`),
/// and the next owner clears it while it holds the lock. Readers mask it out.
pub(crate) const WRAP_CARRY: u32 = 1 << TAIL_SHIFT;

#[inline(always)]
pub(crate) const fn tail(word: u32) -> Ticket {
    (word >> TAIL_SHIFT) as u16 & !1
}

/// The ticket that owns (or, if equal to the tail, may take) the lock.
#[inline(always)]
pub(crate) const fn owner(word: u32) -> Ticket {
    head(word) & !SLOWPATH
}

/// Whether the slow-path flag is set.
#[inline(always)]
pub(crate) const fn slowpath(word: u32) -> bool {
    head(word) & SLOWPATH != 0
}

/// Builds a word from its halves.
#[inline(always)]
pub(crate) const fn pack(head: u16, tail: Ticket) -> u32 {
    ((tail as u32) << TAIL_SHIFT) | head as u32
}

/// The ticket after `t`, wrapping.
#[inline(always)]
pub(crate) const fn next(t: Ticket) -> Ticket {
    t.wrapping_add(TICKET_INC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_trip() {
        let w = pack(0x1234 | SLOWPATH, 0xabcc);
        assert_eq!(head(w), 0x1235);
        assert_eq!(owner(w), 0x1234);
        assert!(slowpath(w));
        assert_eq!(tail(w), 0xabcc);
        assert!(!slowpath(pack(0x1234, 0x1236)));
    }

    #[test]
    fn taking_a_ticket_wraps_the_tail_without_touching_the_head() {
        let w = pack(LAST_TICKET | SLOWPATH, LAST_TICKET);
        let w = w.wrapping_add(TAIL_INC);
        assert_eq!(tail(w), 0);
        assert_eq!(head(w), LAST_TICKET | SLOWPATH);
    }

    #[test]
    fn a_head_wrap_lands_in_the_carry_bit_and_leaves_the_tail_intact() {
        for flag in [0, SLOWPATH] {
            let w = pack(LAST_TICKET | flag, 4).wrapping_add(u32::from(TICKET_INC));
            assert_eq!(owner(w), 0);
            assert_eq!(slowpath(w), flag != 0);
            assert_eq!(tail(w), 4);
            assert_ne!(w & WRAP_CARRY, 0);
            assert_eq!(w & !WRAP_CARRY, pack(flag, 4));
        }
    }

    #[test]
    fn releasing_the_last_ticket_wraps_the_head_without_touching_the_tail() {
        for flag in [0, SLOWPATH] {
            let w = pack(LAST_TICKET | flag, 4);
            let w = w - u32::from(LAST_TICKET);
            assert_eq!(head(w), flag);
            assert_eq!(tail(w), 4);
        }
        assert_eq!(next(LAST_TICKET), 0);
    }
}
