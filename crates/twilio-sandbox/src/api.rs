//! The Twilio-shaped Messages API: create and fetch.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::error::TwilioError;
use crate::state::Shared;
use crate::types::{Fault, RecordedRequest, SentMessage};
use crate::validate::{new_message, param};

const API_VERSION: &str = "2010-04-01";

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`
pub(crate) async fn create_message(
    State(shared): State<Shared>,
    Path(account_sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let to = param(&params, "To").map(str::to_owned);
    // Like Twilio, finish what was asked even if the client stops waiting (a timeout
    // on its side): the message is created all the same.
    let path = uri.path().to_owned();
    let work = tokio::spawn(async move {
        let result = create(&shared, &account_sid, &path, &headers, &params).await;
        let (status, error_code, message) = match &result {
            Ok(message) => (201, None, Some(message.clone())),
            Err(e) => (e.status, Some(e.code), None),
        };
        let request = RecordedRequest {
            account_sid,
            to,
            params,
            status,
            error_code,
        };
        shared.record(request, message);
        result
    });
    let Ok(result) = work.await else {
        return TwilioError::new(500, 20500, "Internal Server Error").into_response();
    };
    match result {
        Ok(message) => (StatusCode::CREATED, Json(message_json(&message))).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Auth, then any fault, then Twilio's validation.
async fn create(
    shared: &Shared,
    account_sid: &str,
    path: &str,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<SentMessage, TwilioError> {
    authenticate(shared, headers, account_sid, path)?;
    if let Some(fault) = shared.take_fault(param(params, "To")) {
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        if let Some(error) = fault_error(&fault) {
            return Err(error);
        }
    }
    new_message(account_sid, params)
}

/// The error a fault answers, or `None` when it only slows the request.
fn fault_error(fault: &Fault) -> Option<TwilioError> {
    let status = fault.status.filter(|s| (400..=599).contains(s))?;
    let mut error = if status >= 500 {
        TwilioError::new(status, 20500, "Internal Server Error")
    } else {
        TwilioError::for_status(status)
    };
    if let Some(code) = fault.code {
        error.code = code;
    }
    if let Some(message) = &fault.message {
        error.message.clone_from(message);
    }
    error.retry_after_secs = fault.retry_after_secs;
    Some(error)
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`
pub(crate) async fn fetch_message(
    State(shared): State<Shared>,
    Path((account_sid, file)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, TwilioError> {
    let sid = file
        .strip_suffix(".json")
        .ok_or_else(|| TwilioError::not_found(uri.path()))?;
    authenticate(&shared, &headers, &account_sid, uri.path())?;
    shared
        .message(&account_sid, sid)
        .map(|m| Json(message_json(&m)))
        .ok_or_else(|| TwilioError::not_found(uri.path()))
}

/// HTTP Basic auth as a configured account, for that account's own path.
///
/// Good credentials for another configured account's path answer 404, as
/// Twilio does; anything else that does not match answers 401.
fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    path_sid: &str,
    path: &str,
) -> Result<(), TwilioError> {
    let (user, password) = basic_credentials(headers).ok_or_else(TwilioError::authenticate)?;
    let known = shared
        .accounts
        .iter()
        .any(|a| a.account_sid == user && a.auth_token == password);
    if !known {
        return Err(TwilioError::authenticate());
    }
    if user == path_sid {
        Ok(())
    } else if shared.accounts.iter().any(|a| a.account_sid == path_sid) {
        Err(TwilioError::not_found(path))
    } else {
        Err(TwilioError::authenticate())
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// A message as Twilio's Message resource.
fn message_json(m: &SentMessage) -> Value {
    let uri = format!(
        "/{API_VERSION}/Accounts/{}/Messages/{}.json",
        m.account_sid, m.sid
    );
    let media = format!(
        "/{API_VERSION}/Accounts/{}/Messages/{}/Media.json",
        m.account_sid, m.sid
    );
    json!({
        "sid": m.sid,
        "account_sid": m.account_sid,
        "to": m.to,
        "from": m.from,
        "messaging_service_sid": m.messaging_service_sid,
        "body": m.body,
        "num_media": m.media_urls.len().to_string(),
        "num_segments": "1",
        "status": m.status,
        "direction": "outbound-api",
        "api_version": API_VERSION,
        "date_created": m.date_created,
        "date_updated": m.date_created,
        "date_sent": null,
        "price": null,
        "price_unit": "USD",
        "error_code": m.error_code,
        "error_message": null,
        "uri": uri,
        "subresource_uris": { "media": media },
    })
}
