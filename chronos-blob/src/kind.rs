//! What a spaces connection is configured with: its protocol ([`SpaceKind`]) and options
//! ([`SpaceOptions`]). Always compiled, so a configuration naming a protocol whose cargo
//! feature is off can be parsed and rejected with a message naming the feature.

use std::fmt;

use chronos_core::error::redact_uri;
use url::Url;

/// Which protocol a space speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceKind {
    /// Amazon S3 or an S3-compatible service (MinIO, SeaweedFS, DigitalOcean Spaces, …).
    S3,
    /// Azure Blob Storage (or Azurite).
    Azure,
}

impl SpaceKind {
    /// The kind an endpoint implies: Azure for `*.blob.core.windows.net`, S3 otherwise.
    ///
    /// ```
    /// use chronos_blob::SpaceKind;
    /// assert_eq!(SpaceKind::detect("https://acct.blob.core.windows.net"), SpaceKind::Azure);
    /// assert_eq!(SpaceKind::detect("https://s3.amazonaws.com"), SpaceKind::S3);
    /// ```
    pub fn detect(endpoint: &str) -> Self {
        Url::parse(endpoint).map_or(Self::S3, |u| Self::of_url(&u))
    }

    /// The cargo feature of this crate (and of the `chronos` facade) that implements it.
    pub fn feature(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Azure => "azure",
        }
    }

    /// Whether this build can connect to it (its feature is on).
    pub fn compiled(self) -> bool {
        match self {
            Self::S3 => cfg!(feature = "s3"),
            Self::Azure => cfg!(feature = "azure"),
        }
    }

    pub(crate) fn of_url(url: &Url) -> Self {
        match url.host_str() {
            Some(h) if h.to_ascii_lowercase().ends_with(".blob.core.windows.net") => Self::Azure,
            _ => Self::S3,
        }
    }
}

/// How to reach one service. For Azure, `access_key` is the account name and `secret_key`
/// the account key (as in the spec's configuration).
#[derive(Clone, Default)]
pub struct SpaceOptions {
    /// Service endpoint, e.g. `https://s3.eu-west-1.amazonaws.com`,
    /// `https://acct.blob.core.windows.net` or `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: String,
    /// S3 region (`us-east-1` when absent; ignored by Azure).
    pub region: Option<String>,
    /// S3 access key id / Azure account name.
    pub access_key: Option<String>,
    /// S3 secret access key / Azure account key. Never printed.
    pub secret_key: Option<String>,
    /// S3 path-style addressing (`<endpoint>/<bucket>/<key>`).
    pub force_path_style: Option<bool>,
    /// The protocol, when the endpoint does not tell (see [`SpaceKind::detect`]).
    pub kind: Option<SpaceKind>,
}

impl fmt::Debug for SpaceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpaceOptions")
            .field("endpoint", &redact_uri(&self.endpoint))
            .field("region", &self.region)
            .field(
                "access_key",
                &self.access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("force_path_style", &self.force_path_style)
            .field("kind", &self.kind)
            .finish()
    }
}
