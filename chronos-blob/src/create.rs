//! Creating a missing bucket (S3 `CreateBucket`) or container (Azure `Create Container`):
//! `object_store` cannot, so each is one signed request of our own — S3's presigned by
//! `object_store`'s own signer, Azure's signed with the account key (SharedKey).
//!
//! An existing bucket owned by the same credentials is success (`created: false`); one owned
//! by someone else is an error. Errors carry the service's status and error code, never the
//! signed URL or a key.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use chronos_core::{Error, Result};
use object_store::client::HttpRequestBody;
use object_store::path::Path;

use crate::space::SpaceConnection;
use crate::SpaceKind;

/// The Azure REST version of the request (Azurite and Azure both accept it).
const AZURE_VERSION: &str = "2021-08-06";

impl SpaceConnection {
    /// Creates bucket (S3) or container (Azure) `bucket` unless it exists. Returns whether
    /// it was created.
    pub async fn ensure_bucket(&self, bucket: &str) -> Result<bool> {
        let (status, body) = match self.kind() {
            SpaceKind::S3 => self.create_s3(bucket).await?,
            SpaceKind::Azure => self.create_azure(bucket).await?,
        };
        let code = xml_code(&body);
        let fail = |why: String| {
            Error::unavailable(format!(
                "spacesConnections.{}: cannot create bucket '{bucket}': {why}",
                self.name()
            ))
            .with("connection", self.name())
            .with("bucket", bucket)
        };
        match (status, code.as_deref()) {
            (200 | 201, _) => {
                tracing::info!(connection = self.name(), bucket, "bucket created");
                Ok(true)
            }
            (409, Some("BucketAlreadyOwnedByYou" | "ContainerAlreadyExists")) => Ok(false),
            (409, Some("BucketAlreadyExists")) => Err(Error::invalid_config(format!(
                "spacesConnections.{}: bucket '{bucket}' exists but belongs to another account: \
                 choose another bucket name",
                self.name()
            ))
            .with("connection", self.name())
            .with("bucket", bucket)),
            (401 | 403, c) => Err(fail(format!(
                "HTTP {status} {}: the credentials may not create buckets",
                c.unwrap_or("")
            ))
            .with("status", status)),
            (_, c) => {
                Err(fail(format!("HTTP {status} {}", c.unwrap_or(""))).with("status", status))
            }
        }
    }

    /// `PUT /<bucket>` presigned by the bucket's own `object_store` signer (SigV4).
    async fn create_s3(&self, bucket: &str) -> Result<(u16, String)> {
        let (_, signer) = self.build(bucket)?;
        let url = signer
            .signed_url(http::Method::PUT, &Path::from(""), Duration::from_secs(300))
            .await
            .map_err(|e| {
                Error::invalid_config(format!(
                    "spacesConnections.{}: cannot sign a CreateBucket request: {e}",
                    self.name()
                ))
            })?;
        // Outside us-east-1 AWS wants the region in the body (presigned URLs do not sign it).
        let body = match self.options().region.as_deref() {
            Some(r) if r != "us-east-1" && !r.is_empty() => format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{r}</LocationConstraint></CreateBucketConfiguration>"
            ),
            _ => String::new(),
        };
        let req = http::Request::builder()
            .method(http::Method::PUT)
            .uri(url.as_str())
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(HttpRequestBody::from(Bytes::from(body)))
            .map_err(|e| Error::internal(format!("CreateBucket request: {e}")))?;
        self.send(req).await
    }

    /// `PUT /<container>?restype=container` signed with the account key (SharedKey).
    async fn create_azure(&self, container: &str) -> Result<(u16, String)> {
        let o = self.options();
        let account = o.access_key.clone().unwrap_or_default();
        let key = base64::engine::general_purpose::STANDARD
            .decode(o.secret_key.clone().unwrap_or_default().trim())
            .map_err(|_| {
                Error::invalid_config(format!(
                    "spacesConnections.{}.secretKey: an Azure account key is base64",
                    self.name()
                ))
            })?;
        let base = self.endpoint().as_str().trim_end_matches('/');
        let url = url::Url::parse(&format!("{base}/{container}?restype=container"))
            .map_err(|e| Error::invalid_config(format!("container '{container}': {e}")))?;
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
            .map_err(|e| Error::internal(format!("date: {e}")))?;
        // Verb, eleven standard headers (all empty: no body), the x-ms headers, the resource.
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{AZURE_VERSION}\n/{account}{}\nrestype:container",
            url.path()
        );
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            string_to_sign.as_bytes(),
        );
        let signature = base64::engine::general_purpose::STANDARD.encode(mac.as_ref());
        let req = http::Request::builder()
            .method(http::Method::PUT)
            .uri(url.as_str())
            .header("x-ms-date", &date)
            .header("x-ms-version", AZURE_VERSION)
            .header(
                http::header::AUTHORIZATION,
                format!("SharedKey {account}:{signature}"),
            )
            .header(http::header::CONTENT_LENGTH, 0)
            .body(HttpRequestBody::from(Bytes::new()))
            .map_err(|e| Error::internal(format!("Create Container request: {e}")))?;
        self.send(req).await
    }

    /// Sends one request on the connection's client: its status and body.
    async fn send(&self, req: object_store::client::HttpRequest) -> Result<(u16, String)> {
        let resp = self.http().execute(req).await.map_err(|e| {
            // The error may quote the URL, and a presigned URL carries a signature.
            tracing::debug!(connection = self.name(), error = %e, "bucket creation request failed");
            Error::unavailable(format!(
                "spacesConnections.{}: the service did not answer a bucket creation request",
                self.name()
            ))
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .bytes()
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok((status, body))
    }
}

/// The `<Code>` of an S3 or Azure XML error body.
fn xml_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    Some(body[start..end].to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_codes_come_from_the_body() {
        let body = "<?xml version=\"1.0\"?><Error><Code>BucketAlreadyOwnedByYou</Code></Error>";
        assert_eq!(
            super::xml_code(body).as_deref(),
            Some("BucketAlreadyOwnedByYou")
        );
        assert_eq!(super::xml_code("not xml"), None);
    }
}
