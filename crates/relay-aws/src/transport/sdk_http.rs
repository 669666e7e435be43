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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn connector(read_timeout: Option<Duration>) -> SdkConnector {
        let transport = Transport::with_roots(rustls::RootCertStore::empty()).unwrap();
        SdkConnector {
            http: SdkHttpClient::new(&transport).unwrap().http,
            read_timeout,
        }
    }

    fn request(url: &str, body: SdkBody) -> HttpRequest {
        let mut request = HttpRequest::new(body);
        request.set_uri(url).unwrap();
        request.set_method("POST").unwrap();
        request
            .headers_mut()
            .insert("x-amz-target", "DynamoDB_20120810.GetItem");
        request
    }

    /// Serves one connection: reads one request (headers and a `Content-Length` body),
    /// hands it back, and answers `response` (or never answers, when `None`).
    async fn serve_once(
        response: Option<&'static str>,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                received.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&received).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if received.len() >= head_end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            match response {
                Some(response) => socket.write_all(response.as_bytes()).await.unwrap(),
                // Hold the connection open, answering nothing.
                None => std::future::pending::<()>().await,
            }
            String::from_utf8_lossy(&received).to_string()
        });
        (url, server)
    }

    #[tokio::test]
    async fn a_request_and_its_answer_cross_whole() {
        let (url, server) = serve_once(Some(
            "HTTP/1.1 400 Bad Request\r\nx-amzn-requestid: r-1\r\ncontent-length: 11\r\n\r\n{\"a\":\"b\"} \n",
        ))
        .await;
        let response = connector(None)
            .call(request(&url, SdkBody::from("{\"Key\":1}")))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("r-1"));
        assert_eq!(response.body().bytes(), Some(&b"{\"a\":\"b\"} \n"[..]));
        let received = server.await.unwrap();
        assert!(received.starts_with("POST / HTTP/1.1\r\n"), "{received}");
        assert!(
            received
                .to_ascii_lowercase()
                .contains("x-amz-target: dynamodb_20120810.getitem")
        );
        assert!(received.ends_with("\r\n\r\n{\"Key\":1}"), "{received}");
    }

    #[tokio::test]
    async fn a_redirect_is_answered_to_the_sdk_not_followed() {
        let (url, server) = serve_once(Some(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n",
        ))
        .await;
        let response = connector(None)
            .call(request(&url, SdkBody::empty()))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 307);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_which_the_sdk_retries() {
        // Bound then dropped: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = connector(None)
            .call(request(
                &format!("http://127.0.0.1:{port}/"),
                SdkBody::empty(),
            ))
            .await
            .unwrap_err();
        assert!(error.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn an_answer_slower_than_the_read_timeout_is_a_timeout() {
        let (url, _server) = serve_once(None).await;
        let call = connector(Some(Duration::from_millis(50))).call(request(&url, SdkBody::empty()));
        // The outer bound only turns a missing read timeout into a failure, not a hang.
        let error = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the read timeout did not end the call")
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    }

    #[tokio::test]
    async fn a_streaming_body_is_refused_before_anything_is_sent() {
        // Not in memory (a stream; here one already read): nothing to send whole.
        let body = SdkBody::taken();
        let error = connector(None)
            .call(request("http://127.0.0.1:9/", body))
            .await
            .unwrap_err();
        assert!(error.is_user(), "{error:?}");
    }
}
