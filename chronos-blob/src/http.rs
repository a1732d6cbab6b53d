//! The HTTP client of spaces connections: hyper with rustls on ring (the crypto stack the
//! MongoDB driver already brings) and the platform's certificate verifier, handed to
//! `object_store` as its [`HttpService`].
//!
//! Not reqwest: its rustls support either bundles aws-lc (a large C build) or, without a
//! provider, makes *every* reqwest client in the process — an application's own included —
//! panic when built before someone installs a crypto provider. Here the provider is chosen
//! for our client alone and nothing global is touched.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chronos_core::{Error, Result};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::client::{
    HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse,
    HttpResponseBody, HttpService,
};
use rustls_platform_verifier::BuilderVerifierExt;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take until its response headers arrive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One pooled HTTP/1.1 + HTTP/2 client over rustls.
#[derive(Debug)]
struct HyperService {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, HttpRequestBody>,
}

/// A client for `http` and `https` endpoints (`allow_http` admits the former).
pub(crate) fn client(allow_http: bool) -> Result<HttpClient> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS configuration: {e}")))?
        .with_platform_verifier()
        .map_err(|e| Error::internal(format!("TLS certificate verifier: {e}")))?
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
    let https = if allow_http {
        builder.https_or_http()
    } else {
        builder.https_only()
    }
    .enable_http1()
    .enable_http2()
    .wrap_connector(http);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(https);
    Ok(HttpClient::new(HyperService { client }))
}

#[async_trait]
impl HttpService for HyperService {
    async fn call(&self, req: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| {
                HttpError::new(
                    HttpErrorKind::Timeout,
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "no response in time"),
                )
            })?
            .map_err(|e| {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
        let (parts, body) = response.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}
