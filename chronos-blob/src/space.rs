//! Connections to S3-compatible services and Azure Blob Storage (the spec's
//! `spacesConnections`).
//!
//! A [`SpaceConnection`] is one configured service. It owns one HTTP client (one connection
//! pool), and every bucket or container opened through [`SpaceConnection::bucket`] shares it,
//! so a process with fifty tenant buckets on one service still has one client.
//!
//! The kind of service comes from the endpoint: hosts under `blob.core.windows.net` are Azure,
//! everything else is S3-compatible, unless [`SpaceOptions::kind`] says otherwise (an Azure
//! emulator on `127.0.0.1`, say).
//!
//! Addressing of S3 buckets follows the AWS SDK that upstream used: virtual-hosted
//! (`https://<bucket>.<endpoint host>`) unless `forcePathStyle` is set, in which case keys are
//! requested as `<endpoint>/<bucket>/<key>` (what MinIO, SeaweedFS and most self-hosted
//! services need). An endpoint whose host already starts with `<bucket>.` is used as it is.
//!
//! Transient failures (timeouts, 5xx, throttling) are retried by `object_store` with jittered
//! exponential backoff ([`RetryConfig`]); what is left after the retries is `Unavailable`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chronos_core::error::redact_uri;
use chronos_core::{Error, Result};
#[cfg(feature = "s3")]
use object_store::aws::AmazonS3Builder;
#[cfg(feature = "azure")]
use object_store::azure::MicrosoftAzureBuilder;
use object_store::client::{ClientOptions, HttpClient, HttpConnector};
use object_store::signer::Signer;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use url::Url;

use crate::{ObjectBlobStore, SpaceKind, SpaceOptions};

/// One configured S3 or Azure service: one HTTP client shared by all its buckets.
#[derive(Clone)]
pub struct SpaceConnection {
    name: String,
    kind: SpaceKind,
    endpoint: Url,
    options: SpaceOptions,
    http: HttpClient,
}

impl fmt::Debug for SpaceConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpaceConnection")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint.as_str())
            .finish()
    }
}

/// Hands every store of a connection the same client.
#[derive(Debug)]
struct Shared(HttpClient);

impl HttpConnector for Shared {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(self.0.clone())
    }
}

fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 8,
        retry_timeout: Duration::from_secs(60),
    }
}

impl SpaceConnection {
    /// Validates `options` and creates the connection's HTTP client. `name` is the
    /// `spacesConnections` entry; errors name its fields (`spacesConnections.<name>.endpoint`).
    pub fn new(name: &str, options: SpaceOptions) -> Result<Self> {
        let field = |f: &str| format!("spacesConnections.{name}.{f}");
        let shown = redact_uri(options.endpoint.trim());
        let endpoint = Url::parse(options.endpoint.trim()).map_err(|e| {
            Error::invalid_config(format!(
                "{}: '{shown}' is not a URL: {e}",
                field("endpoint")
            ))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(Error::invalid_config(format!(
                "{}: '{shown}' must be an http:// or https:// URL with a host",
                field("endpoint")
            )));
        }
        // Credentials in the URL would travel into every request URL, error and trace of
        // the HTTP stack, where nothing can redact them.
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(Error::invalid_config(format!(
                "{}: '{shown}' must not contain credentials; set accessKey and secretKey",
                field("endpoint")
            )));
        }
        for (f, v) in [
            ("accessKey", &options.access_key),
            ("secretKey", &options.secret_key),
        ] {
            if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                return Err(Error::invalid_config(format!(
                    "{}: required (anonymous access is not supported)",
                    field(f)
                )));
            }
        }
        let kind = options.kind.unwrap_or_else(|| SpaceKind::of_url(&endpoint));
        if !kind.compiled() {
            return Err(Error::unsupported(format!(
                "spacesConnections.{name}: {kind:?} storage is not compiled in: enable the cargo \
                 feature `{}` of chronos (or chronos-blob)",
                kind.feature()
            )));
        }
        // Our own client (crate::http): rustls on ring for this client only, nothing global.
        let http = crate::http::client(endpoint.scheme() == "http").map_err(|e| {
            Error::invalid_config(format!(
                "{}: cannot create HTTP client: {e}",
                field("endpoint")
            ))
        })?;
        Ok(Self {
            name: name.to_string(),
            kind,
            endpoint,
            options,
            http,
        })
    }

    /// The protocol this connection speaks.
    pub fn kind(&self) -> SpaceKind {
        self.kind
    }

    /// The connection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A blob store for one bucket (S3) or container (Azure) of this service, sharing the
    /// connection's HTTP client. Nothing is sent to the service here.
    pub fn bucket(&self, bucket: &str) -> Result<ObjectBlobStore> {
        let (store, signer) = self.build(bucket)?;
        let label = format!(
            "{}:{}/{bucket}",
            self.name,
            self.endpoint.as_str().trim_end_matches('/')
        );
        Ok(ObjectBlobStore::from_object_store(store, label)
            .with_signer(signer)
            .in_bucket(&self.name, bucket))
    }

    /// The bare `object_store` client of one bucket — for tools and for benchmark baselines
    /// that must bypass Chronos. Writing through it bypasses every guarantee.
    pub fn object_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        Ok(self.build(bucket)?.0)
    }

    pub(crate) fn options(&self) -> &SpaceOptions {
        &self.options
    }

    pub(crate) fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    pub(crate) fn build(&self, bucket: &str) -> Result<(Arc<dyn ObjectStore>, Arc<dyn Signer>)> {
        if bucket.trim().is_empty() {
            return Err(Error::invalid_config(format!(
                "spacesConnections.{}: bucket name must not be empty",
                self.name
            )));
        }
        let o = &self.options;
        let key_id = o.access_key.clone().unwrap_or_default();
        let secret = o.secret_key.clone().unwrap_or_default();
        let http = self.endpoint.scheme() == "http";
        let map = |e: object_store::Error| {
            Error::invalid_config(format!(
                "spacesConnections.{}: bucket '{bucket}': {e}",
                self.name
            ))
        };
        match self.kind {
            #[cfg(feature = "s3")]
            SpaceKind::S3 => {
                let store = Arc::new(
                    AmazonS3Builder::new()
                        .with_region(o.region.clone().unwrap_or_else(|| "us-east-1".into()))
                        .with_bucket_name(bucket)
                        .with_access_key_id(key_id)
                        .with_secret_access_key(secret)
                        .with_endpoint(self.s3_endpoint(bucket))
                        .with_virtual_hosted_style_request(!o.force_path_style.unwrap_or(false))
                        .with_allow_http(http)
                        .with_retry(retry_config())
                        .with_http_connector(Shared(self.http.clone()))
                        .build()
                        .map_err(map)?,
                );
                Ok((store.clone(), store))
            }
            #[cfg(feature = "azure")]
            SpaceKind::Azure => {
                let store = Arc::new(
                    MicrosoftAzureBuilder::new()
                        .with_account(key_id)
                        .with_access_key(secret)
                        .with_container_name(bucket)
                        .with_endpoint(self.endpoint.as_str().trim_end_matches('/').to_string())
                        .with_allow_http(http)
                        .with_retry(retry_config())
                        .with_http_connector(Shared(self.http.clone()))
                        .build()
                        .map_err(map)?,
                );
                Ok((store.clone(), store))
            }
            // `new` refuses kinds that are not compiled in.
            #[allow(unreachable_patterns)]
            other => Err(Error::unsupported(format!(
                "spacesConnections.{}: {other:?} storage is not compiled in",
                self.name
            ))),
        }
    }

    /// The endpoint `object_store` should use for `bucket`: as configured for path style;
    /// for virtual-hosted style the bucket becomes the first label of the host (unless it
    /// already is).
    #[cfg(feature = "s3")]
    fn s3_endpoint(&self, bucket: &str) -> String {
        let base = self.endpoint.as_str().trim_end_matches('/').to_string();
        if self.options.force_path_style.unwrap_or(false) {
            return base;
        }
        let host = self.endpoint.host_str().unwrap_or_default();
        if host.starts_with(&format!("{bucket}.")) {
            return base;
        }
        let mut u = self.endpoint.clone();
        if u.set_host(Some(&format!("{bucket}.{host}"))).is_err() {
            return base;
        }
        u.as_str().trim_end_matches('/').to_string()
    }
}

#[cfg(all(test, feature = "s3", feature = "azure"))]
mod tests {
    use super::*;

    fn opts(endpoint: &str) -> SpaceOptions {
        SpaceOptions {
            endpoint: endpoint.into(),
            access_key: Some("k".into()),
            secret_key: Some("s".into()),
            ..Default::default()
        }
    }

    #[test]
    fn bad_options_name_the_field() {
        let e = SpaceConnection::new("main", opts("not a url")).unwrap_err();
        assert!(
            e.to_string().contains("spacesConnections.main.endpoint"),
            "{e}"
        );
        let e = SpaceConnection::new("main", opts("ftp://host")).unwrap_err();
        assert!(e.to_string().contains("http:// or https://"), "{e}");
        let mut o = opts("https://s3.amazonaws.com");
        o.secret_key = None;
        let e = SpaceConnection::new("main", o).unwrap_err();
        assert!(
            e.to_string().contains("spacesConnections.main.secretKey"),
            "{e}"
        );
        let c = SpaceConnection::new("main", opts("https://s3.amazonaws.com")).unwrap();
        let e = c.bucket(" ").unwrap_err();
        assert!(e.to_string().contains("bucket name"), "{e}");
    }

    #[test]
    fn kinds_and_addressing_follow_the_endpoint() {
        let c = SpaceConnection::new("a", opts("https://acct.blob.core.windows.net")).unwrap();
        assert_eq!(c.kind(), SpaceKind::Azure);
        let s3 = SpaceConnection::new("b", opts("https://nyc3.digitaloceanspaces.com")).unwrap();
        assert_eq!(s3.kind(), SpaceKind::S3);
        assert_eq!(
            s3.s3_endpoint("photos"),
            "https://photos.nyc3.digitaloceanspaces.com"
        );
        let own = SpaceConnection::new("c", opts("https://tenant-a.s3.amazonaws.com")).unwrap();
        assert_eq!(
            own.s3_endpoint("tenant-a"),
            "https://tenant-a.s3.amazonaws.com"
        );
        let mut o = opts("http://127.0.0.1:8333/");
        o.force_path_style = Some(true);
        let path = SpaceConnection::new("d", o).unwrap();
        assert_eq!(path.s3_endpoint("b"), "http://127.0.0.1:8333");
        let mut o = opts("http://127.0.0.1:10000/devstoreaccount1");
        o.kind = Some(SpaceKind::Azure);
        assert_eq!(
            SpaceConnection::new("e", o).unwrap().kind(),
            SpaceKind::Azure
        );
    }

    #[test]
    fn debug_never_shows_keys() {
        let o = opts("https://s3.amazonaws.com");
        let text = format!("{o:?} {:?}", SpaceConnection::new("x", o.clone()).unwrap());
        assert!(!text.contains("\"k\"") && !text.contains("\"s\""), "{text}");
    }
}
