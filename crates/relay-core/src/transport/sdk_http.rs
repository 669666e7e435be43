//! The AWS SDK's HTTP client, over reqwest on the function's shared TLS configuration.
//!
//! Kept to what the SDK's own client does for the services used here (DynamoDB, SNS,
//! SQS, Secrets Manager): HTTP/1.1, no proxy, no redirects, request bodies in memory,
//! whole responses read, and errors classed as the SDK's retries expect (connect and
//! I/O failures transient, timeouts as timeouts).

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Headers, StatusCode};
use aws_smithy_types::body::SdkBody;

use super::{Transport, TransportError};

/// The SDK's own default connect timeout (behavior version 2024-03-28 and later). The
/// SDK also passes its settings per operation; the connect timeout is the client's.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// As the SDK's own client: idle connections live 90 s.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Plugs into `aws_config::ConfigLoader::http_client`; cheap to clone (one pool).
#[derive(Debug, Clone)]
pub struct SdkHttpClient {
    http: reqwest::Client,
}

impl SdkHttpClient {
    pub fn new(transport: &Transport) -> Result<SdkHttpClient, TransportError> {
        let http = transport
            .reqwest()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()?;
        Ok(SdkHttpClient { http })
    }
}

impl HttpClient for SdkHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(SdkConnector {
            http: self.http.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct SdkConnector {
    http: reqwest::Client,
    /// The SDK's read timeout, when one is set: here the bound on the whole answer.
    read_timeout: Option<Duration>,
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let request = to_reqwest(request)?;
            let exchange = async {
                let response = http.execute(request).await.map_err(classify)?;
                from_reqwest(response).await
            };
            match read_timeout {
                None => exchange.await,
                Some(limit) => tokio::time::timeout(limit, exchange)
                    .await
                    .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?,
            }
        })
    }
}

fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    // Every operation these functions call sends its body in memory; a streaming body
    // is refused rather than half sent.
    let body = body
        .bytes()
        .map(|bytes| reqwest::Body::from(bytes.to_vec()))
        .ok_or_else(|| ConnectorError::user("a streaming request body is not supported".into()))?;
    reqwest::Request::try_from(http::Request::from_parts(parts, body))
        .map_err(|e| ConnectorError::user(e.into()))
}

async fn from_reqwest(response: reqwest::Response) -> Result<HttpResponse, ConnectorError> {
    let status = StatusCode::try_from(response.status().as_u16())
        .map_err(|e| ConnectorError::other(e.into(), None))?;
    let mut headers = Headers::new();
    for (name, value) in response.headers() {
        let value = value
            .to_str()
            .map_err(|e| ConnectorError::other(e.into(), None))?;
        headers.append(name.as_str().to_owned(), value.to_owned());
    }
    let body = response.bytes().await.map_err(classify)?;
    let mut answer = HttpResponse::new(status, SdkBody::from(body));
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// Timeouts stay timeouts; failures to connect or to exchange bytes are I/O errors,
/// which the SDK retries; anything else is not retried.
fn classify(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}
