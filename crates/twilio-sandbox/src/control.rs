//! `/_sandbox/*`: unauthenticated endpoints for tests and demos.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::state::Shared;
use crate::types::{Fault, RecordedRequest, SentMessage};

/// `GET /_sandbox/messages`
pub(crate) async fn messages(State(shared): State<Shared>) -> Json<Vec<SentMessage>> {
    Json(shared.messages())
}

/// `GET /_sandbox/requests`
pub(crate) async fn requests(State(shared): State<Shared>) -> Json<Vec<RecordedRequest>> {
    Json(shared.requests())
}

/// `POST /_sandbox/faults` with a JSON [`Fault`].
pub(crate) async fn add_fault(
    State(shared): State<Shared>,
    Json(fault): Json<Fault>,
) -> StatusCode {
    shared.push_fault(fault);
    StatusCode::NO_CONTENT
}

/// `POST /_sandbox/reset`
pub(crate) async fn reset(State(shared): State<Shared>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}

/// `GET /_sandbox/health`
pub(crate) async fn health() -> &'static str {
    "ok"
}
