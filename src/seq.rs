//! [`Seq`]: a record's place in the store's one order.

/// A record's store-wide sequence number: unique, strictly increasing in log order,
/// across restarts. Seq 0 is never given out, so `Seq(0)` reads as "before everything".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
