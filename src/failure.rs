//! Why a machine stopped for good, with its cause kept whole.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;

/// Why the writer or the commit side stopped: what was being done, and the error met
/// (none for a panic or a thread gone). Cheap to clone: every caller told of the failure
/// gets the same cause, and [`std::error::Error::source`] leads to it (down to the OS
/// error of an I/O failure).
#[derive(Clone, Debug)]
pub struct Failure {
    during: String,
    cause: Option<Arc<Error>>,
    /// The store's directory, once a `Store` reports it.
    store: Option<PathBuf>,
}

impl Failure {
    /// A failure `during` a step, caused by `cause`.
    pub fn caused(during: impl Into<String>, cause: Error) -> Self {
        Failure {
            during: during.into(),
            cause: Some(Arc::new(cause)),
            store: None,
        }
    }

    /// A failure with no error to show for it: a panic, a thread gone.
    pub fn without_cause(during: impl Into<String>) -> Self {
        Failure {
            during: during.into(),
            cause: None,
            store: None,
        }
    }

    /// What was being done.
    pub fn during(&self) -> &str {
        &self.during
    }

    /// The error met, if there was one.
    pub fn cause(&self) -> Option<&Error> {
        self.cause.as_deref()
    }

    /// The same failure, naming the store it happened in.
    pub(crate) fn in_store(mut self, location: &Path) -> Self {
        self.store = Some(location.to_path_buf());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.during)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        if let Some(store) = &self.store {
            write!(f, ", in store {}", store.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_shows_its_step_and_cause_and_leads_to_the_os_error() {
        let io = std::io::Error::from_raw_os_error(libc::EIO);
        let failure = Failure::caused(
            "the log's fdatasync",
            Error::Io {
                action: "fdatasyncing",
                path: "txlogs/writing/tx.log".into(),
                source: io,
            },
        )
        .in_store(Path::new("/s"));
        let shown = failure.to_string();
        assert!(
            shown.starts_with(
                "the log's fdatasync: I/O error while fdatasyncing txlogs/writing/tx.log: "
            ),
            "{shown}"
        );
        assert!(shown.ends_with(", in store /s"), "{shown}");
        let cause = std::error::Error::source(&failure).unwrap();
        let os = cause
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap();
        assert_eq!(os.raw_os_error(), Some(libc::EIO));
        let panicked = Failure::without_cause("the writer thread panicked");
        assert_eq!(panicked.to_string(), "the writer thread panicked");
        assert!(std::error::Error::source(&panicked).is_none());
    }
}
