//! The index backends a configuration can name, by URI scheme, and the cargo feature each
//! needs. Parsed once: configuration validation and the backend registry both use
//! [`Scheme`], so the list of schemes is written once.

use std::fmt;

/// The backend a `dbConnections.<name>.mongoUri` selects.
///
/// ```
/// use chronos::Scheme;
/// assert_eq!(Scheme::parse("sqlite://./data"), Some(Scheme::Sqlite));
/// assert_eq!(Scheme::parse("mongodb+srv://cluster.example.net"), Some(Scheme::Mongodb));
/// assert_eq!(Scheme::parse("memory://"), Some(Scheme::Memory));
/// assert_eq!(Scheme::parse("postgres://db"), None);
/// assert_eq!(Scheme::Sqlite.feature(), Some("sqlite"));
/// assert_eq!(Scheme::Memory.feature(), None); // always compiled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sqlite://DIR` (one file per database), `sqlite::memory:`: the embedded default.
    Sqlite,
    /// `mongodb://…`, `mongodb+srv://…`.
    Mongodb,
    /// `memory://`: the in-memory backend (`chronos-store-memory`), nothing on disk.
    Memory,
}

impl Scheme {
    /// Every scheme, in the order error messages list them.
    pub const ALL: [Scheme; 3] = [Scheme::Mongodb, Scheme::Sqlite, Scheme::Memory];

    /// The backend a URI names, or `None` for a scheme Chronos does not know.
    pub fn parse(uri: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.prefixes().iter().any(|p| uri.starts_with(p)))
    }

    /// What a URI of this backend starts with.
    pub fn prefixes(self) -> &'static [&'static str] {
        match self {
            Self::Sqlite => &["sqlite:"],
            Self::Mongodb => &["mongodb://", "mongodb+srv://"],
            Self::Memory => &["memory://"],
        }
    }

    /// The cargo feature of `chronos` that compiles this backend in (`None`: always there).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => Some("sqlite"),
            Self::Mongodb => Some("mongodb"),
            Self::Memory => None,
        }
    }

    /// Whether this build has the backend.
    pub fn compiled(self) -> bool {
        match self {
            Self::Sqlite => cfg!(feature = "sqlite"),
            Self::Mongodb => cfg!(feature = "mongodb"),
            Self::Memory => true,
        }
    }

    /// The URI forms every scheme accepts, for error messages.
    pub(crate) fn spelled_out() -> String {
        let all: Vec<&str> = Self::ALL
            .iter()
            .flat_map(|s| s.prefixes().iter().copied())
            .collect();
        all.join(", ")
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Mongodb => "MongoDB",
            Self::Memory => "in-memory",
        })
    }
}

/// The error for a backend the configuration needs but this build lacks: names the JSON path
/// and the feature to enable.
pub(crate) fn not_compiled(
    path: &str,
    what: impl fmt::Display,
    feature: &str,
) -> chronos_core::Error {
    chronos_core::Error::unsupported(format!(
        "{path}: {what} is not compiled into this build: enable the cargo feature `{feature}` \
         of chronos (features = [\"{feature}\"])"
    ))
}
