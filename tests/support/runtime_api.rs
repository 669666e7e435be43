//! A Lambda Runtime API emulator: the HTTP API that real `lambda_runtime` programs
//! poll, so the built binaries run here exactly as they do under Lambda.
//!
//! Each invocation is handed to exactly one `/next` poller, however many processes
//! poll at once. A poller killed mid-poll normally releases its place (hyper drops the
//! request when the connection closes), but tests that swap processes are safest with
//! a fresh `RuntimeApi` per process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const FIRST_POLL_TIMEOUT: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(30);
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test";

/// How an invocation ended: the function's response or its error report, as JSON
/// (a JSON string if the body was not JSON).
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    Response(Value),
    Error(Value),
}

struct Queued {
    request_id: String,
    event: Value,
}

struct Shared {
    queue_tx: mpsc::UnboundedSender<Queued>,
    /// Pollers take turns holding this while they wait, so each event goes to one.
    queue_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
    init_errors: Mutex<Vec<Value>>,
    first_poll: watch::Sender<Option<Instant>>,
    /// How many `/next` polls are waiting for an event right now: idle instances.
    waiting: watch::Sender<usize>,
    /// How long each invocation may run: the deadline handed to the function.
    function_timeout: Mutex<Duration>,
}

/// The emulator, serving on 127.0.0.1 until dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Starts the emulator on a free port.
    pub async fn start() -> RuntimeApi {
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue_tx,
            queue_rx: tokio::sync::Mutex::new(queue_rx),
            in_flight: Mutex::new(HashMap::new()),
            init_errors: Mutex::new(Vec::new()),
            first_poll: watch::Sender::new(None),
            waiting: watch::Sender::new(0),
            function_timeout: Mutex::new(DEADLINE),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime API");
        let address = listener.local_addr().expect("runtime API address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("runtime API server");
        });
        RuntimeApi {
            address,
            shared,
            server,
        }
    }

    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Queues `event`, then waits (up to 60 s) for a poller to complete it.
    pub async fn invoke(&self, event: Value) -> Invocation {
        self.invoke_with_id(event).await.1
    }

    /// As [`RuntimeApi::invoke`], with the request ID the invocation was given (the
    /// function's log lines of that invocation carry it).
    pub async fn invoke_with_id(&self, event: Value) -> (String, Invocation) {
        let request_id = new_request_id();
        let (done_tx, done_rx) = oneshot::channel();
        self.shared
            .in_flight
            .lock()
            .unwrap()
            .insert(request_id.clone(), done_tx);
        let queued = Queued {
            request_id: request_id.clone(),
            event,
        };
        if self.shared.queue_tx.send(queued).is_err() {
            unreachable!("the queue's receiver lives as long as the emulator");
        }
        match tokio::time::timeout(INVOKE_TIMEOUT, done_rx).await {
            Ok(Ok(outcome)) => (request_id, outcome),
            _ => panic!(
                "invocation {request_id} did not complete within {INVOKE_TIMEOUT:?}: is a \
                 function polling {}? init errors so far: {:?}",
                self.address,
                self.init_errors()
            ),
        }
    }

    /// Sets the function timeout (default 30 s) that later invocations' deadlines
    /// (`Lambda-Runtime-Deadline-Ms`) are computed from.
    pub fn set_function_timeout(&self, timeout: Duration) {
        *self.shared.function_timeout.lock().unwrap() = timeout;
    }

    /// Bodies of every `POST /runtime/init/error` so far.
    pub fn init_errors(&self) -> Vec<Value> {
        self.shared.init_errors.lock().unwrap().clone()
    }

    /// When the first `/next` poll arrived, if one has.
    pub fn first_poll_at(&self) -> Option<Instant> {
        *self.shared.first_poll.borrow()
    }

    /// Waits (up to 30 s) for the first `/next` poll, i.e. the end of the function's
    /// init, and returns when it arrived.
    pub async fn wait_first_poll(&self) -> Instant {
        let mut rx = self.shared.first_poll.subscribe();
        let waited = tokio::time::timeout(FIRST_POLL_TIMEOUT, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(at)) => at.expect("waited for Some"),
            _ => panic!(
                "no function polled {} within {FIRST_POLL_TIMEOUT:?}; init errors: {:?}",
                self.address,
                self.init_errors()
            ),
        }
    }
}

impl RuntimeApi {
    /// Waits (up to `timeout`) until `instances` functions are polling for work, so
    /// events invoked together really run at once. Panics past the timeout.
    pub async fn wait_for_pollers(&self, instances: usize, timeout: Duration) {
        let mut rx = self.shared.waiting.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|n| *n >= instances)).await;
        assert!(
            matches!(waited, Ok(Ok(_))),
            "{instances} instances were not all polling within {timeout:?}; init errors: {:?}",
            self.init_errors()
        );
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_poll.send_if_modified(|at| {
        let first = at.is_none();
        if first {
            *at = Some(Instant::now());
        }
        first
    });
    shared.waiting.send_modify(|n| *n += 1);
    let queued = shared.queue_rx.lock().await.recv().await;
    shared.waiting.send_modify(|n| *n = n.saturating_sub(1));
    let Some(Queued { request_id, event }) = queued else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let timeout = *shared.function_timeout.lock().unwrap();
    let deadline = SystemTime::now() + timeout;
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
    };
    set("lambda-runtime-aws-request-id", request_id.clone());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", FUNCTION_ARN.into());
    set(
        "lambda-runtime-trace-id",
        format!("Root=1-{:08x}-{}", deadline_ms / 1000, &request_id[..8]),
    );
    (headers, axum::Json(event)).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    complete(&shared, &id, Invocation::Response(json_or_string(&body)))
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    complete(&shared, &id, Invocation::Error(json_or_string(&body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    shared
        .init_errors
        .lock()
        .unwrap()
        .push(json_or_string(&body));
    accepted()
}

fn complete(shared: &Shared, id: &str, outcome: Invocation) -> Response {
    let waiter = shared.in_flight.lock().unwrap().remove(id);
    match waiter {
        Some(waiter) => {
            let _ = waiter.send(outcome);
            accepted()
        }
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"errorType": "InvalidRequestID", "errorMessage": id})),
        )
            .into_response(),
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn json_or_string(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// A UUID-shaped random request ID, as Lambda uses.
fn new_request_id() -> String {
    let r: u128 = rand::random();
    let hex = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
