//! Status callbacks: messages sent over HTTP with a `StatusCallback`, then the signed
//! forms Twilio would post about them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha1::Sha1;
use twilio_sandbox::{
    Account, DEFAULT_ACCOUNT_SID as SID, DEFAULT_AUTH_TOKEN as TOKEN, Sandbox, SandboxConfig,
    StatusCallback, webhook_signature,
};

const FROM: &str = "+15005550006";
const TO: &str = "+15551234567";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";
const CALLBACK_URL: &str =
    "https://qdn1234567.execute-api.us-east-1.amazonaws.com/prod/api/v1/sms/status";

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

/// Sends a message over HTTP as `SID`; its SID.
async fn send(sandbox: &Sandbox, params: &[(&str, &str)]) -> String {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/{SID}/Messages.json",
            sandbox.base_url()
        ))
        .basic_auth(SID, Some(TOKEN))
        .form(params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let json: Value = response.json().await.unwrap();
    json["sid"].as_str().unwrap().to_owned()
}

async fn send_with_callback(sandbox: &Sandbox) -> String {
    send(
        sandbox,
        &[
            ("To", TO),
            ("From", FROM),
            ("Body", "hello"),
            ("StatusCallback", CALLBACK_URL),
        ],
    )
    .await
}

/// Twilio's signature, written out here independently of the sandbox's.
fn expected_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let data: String = std::iter::once(url.to_owned())
        .chain(sorted.into_iter().map(|(k, v)| k + &v))
        .collect();
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

fn names(callback: &StatusCallback) -> Vec<&str> {
    callback.params.iter().map(|(k, _)| k.as_str()).collect()
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The vector of the test suite of Twilio's Python helper library.
#[test]
fn signature_matches_twilios_vector() {
    let params = owned(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]);
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(
        webhook_signature("12345", url, &params),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
    assert_eq!(
        expected_signature("12345", url, &params),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
}

#[tokio::test]
async fn delivered_callback_is_twilios_form_signed_with_the_auth_token() {
    let sandbox = sandbox().await;
    let sid = send_with_callback(&sandbox).await;

    let callback = sandbox.status_callback(&sid, "delivered", None).unwrap();
    assert_eq!(callback.url, CALLBACK_URL);
    assert_eq!(
        callback.params,
        owned(&[
            ("SmsSid", &sid),
            ("SmsStatus", "delivered"),
            ("MessageStatus", "delivered"),
            ("To", TO),
            ("From", FROM),
            ("MessageSid", &sid),
            ("AccountSid", SID),
            ("ApiVersion", "2010-04-01"),
        ])
    );
    assert_eq!(callback.param("ErrorCode"), None);
    assert_eq!(callback.status(), "delivered");
    assert_eq!(
        callback.signature,
        expected_signature(TOKEN, CALLBACK_URL, &callback.params)
    );
    assert_ne!(
        callback.signature,
        expected_signature("another-token", CALLBACK_URL, &callback.params)
    );
    // The recorded message moved on, and fetching it says so.
    assert_eq!(sandbox.messages()[0].status, "delivered");
    assert_eq!(sandbox.messages()[0].error_code, None);
}

#[tokio::test]
async fn error_code_is_sent_and_recorded_when_given() {
    let sandbox = sandbox().await;
    let sid = send_with_callback(&sandbox).await;

    let callback = sandbox
        .status_callback(&sid, "undelivered", Some(30003))
        .unwrap();
    assert_eq!(names(&callback)[0], "ErrorCode");
    assert_eq!(callback.param("ErrorCode"), Some("30003"));
    assert_eq!(callback.param("ErrorMessage"), None);
    assert_eq!(callback.param("MessageStatus"), Some("undelivered"));
    assert_eq!(callback.param("SmsStatus"), Some("undelivered"));
    assert_eq!(
        callback.signature,
        expected_signature(TOKEN, CALLBACK_URL, &callback.params)
    );
    let message = &sandbox.messages()[0];
    assert_eq!(
        (message.status.as_str(), message.error_code),
        ("undelivered", Some(30003))
    );

    let fetched: Value = reqwest::Client::new()
        .get(format!(
            "{}/2010-04-01/Accounts/{SID}/Messages/{sid}.json",
            sandbox.base_url()
        ))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "undelivered");
    assert_eq!(fetched["error_code"], 30003);
}

#[tokio::test]
async fn messaging_service_callbacks_name_the_service_instead_of_from() {
    let sandbox = sandbox().await;
    let sid = send(
        &sandbox,
        &[
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "hello"),
            ("StatusCallback", CALLBACK_URL),
        ],
    )
    .await;
    let callback = sandbox.status_callback(&sid, "sent", None).unwrap();
    assert_eq!(callback.param("From"), None);
    assert_eq!(callback.param("MessagingServiceSid"), Some(SERVICE));
    assert_eq!(
        names(&callback),
        [
            "SmsSid",
            "SmsStatus",
            "MessageStatus",
            "To",
            "MessagingServiceSid",
            "MessageSid",
            "AccountSid",
            "ApiVersion"
        ]
    );
    assert_eq!(
        callback.signature,
        expected_signature(TOKEN, CALLBACK_URL, &callback.params)
    );
}

#[tokio::test]
async fn unknown_sids_and_messages_without_a_callback_give_none() {
    let sandbox = sandbox().await;
    assert_eq!(
        sandbox.status_callback("SM00000000000000000000000000000000", "delivered", None),
        None
    );
    assert!(
        sandbox
            .status_callbacks_for_life("SM00000000000000000000000000000000", "delivered", None)
            .is_empty()
    );

    let sid = send(&sandbox, &[("To", TO), ("From", FROM), ("Body", "hello")]).await;
    assert_eq!(sandbox.status_callback(&sid, "sent", None), None);
    assert!(
        sandbox
            .status_callbacks_for_life(&sid, "delivered", None)
            .is_empty()
    );
    // The message's status moves on all the same.
    assert_eq!(sandbox.messages()[0].status, "delivered");
}

#[tokio::test]
async fn a_delivered_life_is_sent_then_delivered() {
    let sandbox = sandbox().await;
    let sid = send_with_callback(&sandbox).await;
    // Created `queued`: Twilio calls back no initial status.
    let life = sandbox.status_callbacks_for_life(&sid, "delivered", None);
    let statuses: Vec<&str> = life.iter().map(StatusCallback::status).collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    for callback in &life {
        assert_eq!(callback.param("ErrorCode"), None);
        assert_eq!(callback.param("SmsStatus"), Some(callback.status()));
        assert_eq!(
            callback.signature,
            expected_signature(TOKEN, CALLBACK_URL, &callback.params)
        );
    }
    assert_eq!(sandbox.messages()[0].status, "delivered");
}

#[tokio::test]
async fn a_messaging_service_life_starts_with_queued() {
    let sandbox = sandbox().await;
    let sid = send(
        &sandbox,
        &[
            ("To", TO),
            ("MessagingServiceSid", SERVICE),
            ("Body", "hello"),
            ("StatusCallback", CALLBACK_URL),
        ],
    )
    .await;
    let life = sandbox.status_callbacks_for_life(&sid, "delivered", None);
    let statuses: Vec<&str> = life.iter().map(StatusCallback::status).collect();
    assert_eq!(statuses, ["queued", "sent", "delivered"]);
}

#[tokio::test]
async fn undelivered_and_failed_lives_end_with_an_error_code() {
    let sandbox = sandbox().await;

    let sid = send_with_callback(&sandbox).await;
    let life = sandbox.status_callbacks_for_life(&sid, "undelivered", None);
    let statuses: Vec<&str> = life.iter().map(StatusCallback::status).collect();
    assert_eq!(statuses, ["sent", "undelivered"]);
    assert_eq!(life[0].param("ErrorCode"), None);
    assert_eq!(life[1].param("ErrorCode"), Some("30003"));

    // A failed message was never sent.
    let sid = send_with_callback(&sandbox).await;
    let life = sandbox.status_callbacks_for_life(&sid, "failed", None);
    let statuses: Vec<&str> = life.iter().map(StatusCallback::status).collect();
    assert_eq!(statuses, ["failed"]);
    assert_eq!(life[0].param("ErrorCode"), Some("30008"));

    // The caller's code wins.
    let sid = send_with_callback(&sandbox).await;
    let life = sandbox.status_callbacks_for_life(&sid, "undelivered", Some(30005));
    assert_eq!(life.last().unwrap().param("ErrorCode"), Some("30005"));
    let message = sandbox
        .messages()
        .into_iter()
        .find(|m| m.sid == sid)
        .unwrap();
    assert_eq!(
        (message.status.as_str(), message.error_code),
        ("undelivered", Some(30005))
    );
}

/// Signed with the message's own account's token.
#[tokio::test]
async fn signed_with_the_sending_accounts_token() {
    let other_sid = "AC11111111111111111111111111111111";
    let other_token = "other-token";
    let sandbox = Sandbox::start(SandboxConfig {
        accounts: vec![
            Account {
                account_sid: SID.into(),
                auth_token: TOKEN.into(),
            },
            Account {
                account_sid: other_sid.into(),
                auth_token: other_token.into(),
            },
        ],
    })
    .await
    .unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/{other_sid}/Messages.json",
            sandbox.base_url()
        ))
        .basic_auth(other_sid, Some(other_token))
        .form(&[
            ("To", TO),
            ("From", FROM),
            ("Body", "hi"),
            ("StatusCallback", CALLBACK_URL),
        ])
        .send()
        .await
        .unwrap();
    let json: Value = response.json().await.unwrap();
    let sid = json["sid"].as_str().unwrap();
    let callback = sandbox.status_callback(sid, "sent", None).unwrap();
    assert_eq!(callback.param("AccountSid"), Some(other_sid));
    assert_eq!(
        callback.signature,
        expected_signature(other_token, CALLBACK_URL, &callback.params)
    );
}
