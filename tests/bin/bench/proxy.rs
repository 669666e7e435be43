//! A counting reverse proxy in front of moto or the Twilio sandbox, plain HTTP or TLS.
//!
//! Every request a function makes passes through it and is recorded with the moment
//! its headers arrived and the moment its answer was ready, and the operation it was:
//! the `X-Amz-Target` header's last part (DynamoDB, Secrets Manager, SQS), the query
//! protocol's `Action` form field (SNS), else `Twilio <method> <last path segment>`.
//! Timing is taken here, not inside moto: moto serves one request at a time, but two
//! requests that both reached the proxy before either was answered were in flight
//! together. Each accepted connection is recorded too (with its TLS handshake).
//!
//! Only HTTP/1.1 is served (and offered in ALPN); the upstream is plain HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// What is behind a proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Aws,
    Twilio,
}

/// One request through the proxy.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub service: Service,
    pub operation: String,
    /// When the request's headers had arrived.
    pub start: Instant,
    /// When the upstream's whole answer had arrived (the proxy then writes it out).
    pub end: Instant,
}

impl Exchange {
    /// The operation as a step list shows it.
    pub fn label(&self) -> String {
        self.operation.clone()
    }
}

/// One connection a client opened to the proxy.
#[derive(Clone, Debug)]
pub struct Connection {
    pub accepted: Instant,
    /// How long the TLS handshake took (`None` for plain HTTP or a failed handshake).
    pub handshake: Option<Duration>,
    /// Why the TLS handshake failed, if it did (e.g. the client did not trust the CA).
    pub failed: Option<String>,
}

#[derive(Default)]
struct Records {
    exchanges: Vec<Exchange>,
    connections: Vec<Connection>,
}

struct Shared {
    service: Service,
    upstream: String,
    client: reqwest::Client,
    records: Mutex<Records>,
}

/// A running proxy on `127.0.0.1`; stops when dropped.
pub struct Proxy {
    address: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Proxies to `upstream` (`http://host:port`), with TLS when `tls` is given.
    pub async fn start(
        service: Service,
        upstream: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            service,
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
            records: Mutex::default(),
        });
        let is_tls = tls.is_some();
        let acceptor = tls.map(TlsAcceptor::from);
        let task = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&shared)));
        Ok(Proxy {
            address,
            tls: is_tls,
            shared,
            task,
        })
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// The requests whose headers arrived between `from` and `to`.
    pub fn exchanges_between(&self, from: Instant, to: Instant) -> Vec<Exchange> {
        let records = self.shared.records.lock().unwrap();
        records
            .exchanges
            .iter()
            .filter(|e| e.start >= from && e.start <= to)
            .cloned()
            .collect()
    }

    /// The connections accepted between `from` and `to`.
    pub fn connections_between(&self, from: Instant, to: Instant) -> Vec<Connection> {
        let records = self.shared.records.lock().unwrap();
        records
            .connections
            .iter()
            .filter(|c| c.accepted >= from && c.accepted <= to)
            .cloned()
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let accepted = Instant::now();
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            match tls {
                None => {
                    shared.record_connection(accepted, None, None);
                    serve(TokioIo::new(stream), shared).await;
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        shared.record_connection(accepted, Some(accepted.elapsed()), None);
                        serve(TokioIo::new(stream), shared).await;
                    }
                    Err(e) => shared.record_connection(accepted, None, Some(e.to_string())),
                },
            }
        });
    }
}

async fn serve<S>(io: TokioIo<S>, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| forward(Arc::clone(&shared), request));
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}

/// Hop-by-hop headers, and those the upstream client sets itself.
const NOT_FORWARDED: [header::HeaderName; 5] = [
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

async fn forward(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let start = Instant::now();
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, format!("request body: {e}"))),
    };
    let operation = operation(
        shared.service,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &body,
    );
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    for name in &NOT_FORWARDED {
        headers.remove(name);
    }
    let sent = shared
        .client
        .request(parts.method, format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(upstream) => {
            let status = upstream.status();
            let mut headers = upstream.headers().clone();
            match upstream.bytes().await {
                Ok(bytes) => {
                    for name in &NOT_FORWARDED {
                        headers.remove(name);
                    }
                    let mut response = Response::new(Full::new(bytes));
                    *response.status_mut() = status;
                    *response.headers_mut() = headers;
                    response
                }
                Err(e) => plain(StatusCode::BAD_GATEWAY, format!("upstream body: {e}")),
            }
        }
        Err(e) => plain(StatusCode::BAD_GATEWAY, format!("upstream: {e}")),
    };
    shared.records.lock().unwrap().exchanges.push(Exchange {
        service: shared.service,
        operation,
        start,
        end: Instant::now(),
    });
    Ok(response)
}

impl Shared {
    fn record_connection(
        &self,
        accepted: Instant,
        handshake: Option<Duration>,
        failed: Option<String>,
    ) {
        self.records.lock().unwrap().connections.push(Connection {
            accepted,
            handshake,
            failed,
        });
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The operation a request stands for (see the module's documentation).
fn operation(
    service: Service,
    method: &hyper::Method,
    uri: &hyper::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let action = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()
        .and_then(|form| form.into_iter().find(|(k, _)| k == "Action"))
        .map(|(_, action)| action);
    if let (Service::Aws, Some(action)) = (service, action) {
        return action;
    }
    let resource = uri
        .path()
        .rsplit('/')
        .find(|segment| !segment.is_empty())
        .unwrap_or("/");
    let resource = resource.strip_suffix(".json").unwrap_or(resource);
    match service {
        Service::Twilio => format!("Twilio {method} {resource}"),
        Service::Aws => format!("{method} {resource}"),
    }
}
