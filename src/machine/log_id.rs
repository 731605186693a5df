//! A finished log's identity.

use std::fmt;
use std::path::PathBuf;

use super::READING_DIR;

/// A finished log: the microsecond timestamp rotation named it by. Its file is
/// `txlogs/reading/tx-{ts:020}.log`, so the order of ids is the order of names, which is
/// the order the logs were written in (rotation keeps timestamps strictly increasing).
/// Parsed once, where a listing of `reading/` is read; every machine passes the id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId(u64);

impl LogId {
    /// The log rotated at `ts` (microseconds).
    pub const fn at(ts: u64) -> Self {
        LogId(ts)
    }

    /// The timestamp the log is named by.
    pub const fn ts(self) -> u64 {
        self.0
    }

    /// The log's file name: `tx-{ts:020}.log`.
    pub fn file_name(self) -> String {
        format!("tx-{:020}.log", self.0)
    }

    /// The log's path in the store: `txlogs/reading/tx-{ts:020}.log`.
    pub fn path(self) -> PathBuf {
        PathBuf::from(READING_DIR).join(self.file_name())
    }

    /// The log a file name names, or `None` for a name that is not a finished log's
    /// (exactly 20 digits: one spelling per log).
    pub fn parse(name: &str) -> Option<Self> {
        let digits = name.strip_prefix("tx-")?.strip_suffix(".log")?;
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(LogId)
    }

    /// The finished logs among `names` (a listing of `reading/`), in order; other names
    /// are left out.
    pub fn all_in<S: AsRef<str>>(names: &[S]) -> Vec<LogId> {
        let mut logs: Vec<LogId> = names
            .iter()
            .filter_map(|n| Self::parse(n.as_ref()))
            .collect();
        logs.sort_unstable();
        logs
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_round_trip_through_names_and_sort_as_names_do() {
        assert_eq!(LogId::at(42).file_name(), "tx-00000000000000000042.log");
        assert_eq!(LogId::at(42).to_string(), LogId::at(42).file_name());
        assert_eq!(
            LogId::parse(&LogId::at(u64::MAX).file_name()),
            Some(LogId::at(u64::MAX))
        );
        assert!(LogId::at(9).file_name() < LogId::at(10).file_name());
        assert!(LogId::at(9) < LogId::at(10));
        assert_eq!(
            LogId::at(7).path(),
            PathBuf::from("txlogs/reading/tx-00000000000000000007.log")
        );
        for bad in [
            "tx-1.log",
            "tx-0000000000000000004x.log",
            "x",
            "tx-00000000000000000042.log.tmp",
            "tx-99999999999999999999.log",
        ] {
            assert_eq!(LogId::parse(bad), None, "{bad}");
        }
        let names = [
            "tx-00000000000000000003.log",
            "x",
            "tx-00000000000000000001.log",
        ];
        assert_eq!(LogId::all_in(&names), [LogId::at(1), LogId::at(3)]);
    }
}
