//! Fetching the provider's discovery document and JWKS: HTTP/1.1 over rustls (ring, Mozilla
//! roots compiled in), bounded in time and size; plain `http://` only to loopback hosts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::BoxFuture;

/// Largest discovery document or JWKS accepted.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Gets a JSON document; the error says what went wrong, for the log and for descriptions.
pub(crate) trait Fetch: Send + Sync {
    fn get_json<'a>(
        &'a self,
        url: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Value, String>>;
}

/// The real fetcher.
pub(crate) struct HttpFetch {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpFetch {
    pub(crate) fn new() -> Result<HttpFetch, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(https);
        Ok(HttpFetch { client })
    }
}

impl Fetch for HttpFetch {
    fn get_json<'a>(
        &'a self,
        url: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            check_url(url)?;
            let request = http::Request::get(url)
                .header(http::header::ACCEPT, "application/json")
                .header(http::header::USER_AGENT, "gantry")
                .body(Empty::new())
                .map_err(|e| format!("{url} is not a valid URL: {e}"))?;
            let work = async {
                let response = self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| format!("{url}: {}", error_chain(&e)))?;
                let status = response.status();
                if status != http::StatusCode::OK {
                    return Err(format!("{url} answered HTTP {status}"));
                }
                let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
                    .collect()
                    .await
                    .map_err(|e| format!("{url}: reading the answer: {e}"))?
                    .to_bytes();
                serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
            };
            match tokio::time::timeout(timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(format!("{url} did not answer within {timeout:?}")),
            }
        })
    }
}

/// `https://`, or `http://` to a loopback host.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("{url:?} is not a valid URL"))?;
    let host = uri.host().unwrap_or("");
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "{url} is plain http: OpenID provider URLs must be https:// (http:// only on a \
             loopback host, for tests)"
        )),
        _ => Err(format!("{url:?} is not an https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: ...").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}
