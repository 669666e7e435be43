//! The whole local stack for one function, as tests, the demo and the benchmark use it:
//! per-test AWS resources in moto, a Twilio sandbox that knows the fixture's account,
//! a Runtime API and one or more processes of the function (`sms-inbound`,
//! `sms-outbound`) polling it.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use twilio_sandbox::{Sandbox, SandboxConfig, SentMessage};

use crate::events::{response_parts, rest_proxy_event, twilio_form, twilio_signature};
use crate::function::{FunctionProcess, settle_invocation};
use crate::moto::{AwsFixture, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN};
use crate::runtime_api::{Invocation, RuntimeApi};

/// The API Gateway host the test events claim to come through.
pub const API_HOST: &str = "qdn1234567.execute-api.us-east-1.amazonaws.com";
pub const STAGE: &str = "prod";
pub const INBOUND_PATH: &str = "/api/v1/sms/inbound";
pub const STATUS_PATH: &str = "/api/v1/sms/status";
pub const OUTBOUND_PATH: &str = "/api/v1/sms/outbound";
/// QDN's public number, the `To` of every driver's text.
pub const QDN_NUMBER: &str = "+15005550006";
/// The auth token tests rotate the Twilio secret to.
pub const ROTATED_AUTH_TOKEN: &str = "fedcba9876543210fedcba9876543210";

/// The seed's dispatcher: primary `+18585550100`, backup `858-335-4807`, tertiary
/// `+1-619-555-0199`, available with a fresh heartbeat.
pub fn seed_dispatcher(now: i64) -> Value {
    json!({
        "dispatcher_id": "sergio-main",
        "phone": "+18585550100",
        "available": true,
        "last_heartbeat": now - 30,
        "backup_dispatcher": "858-335-4807",
        "tertiary_contact": "+1-619-555-0199",
        "message_log_ttl": 86400,
        "on_duty": true
    })
}

pub const PRIMARY_PHONE: &str = "+18585550100";
pub const BACKUP_PHONE: &str = "+18583354807";
pub const TERTIARY_PHONE: &str = "+16195550199";

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A Twilio-shaped message SID (`SM` + 32 hex digits) unique to this process.
pub fn message_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

/// The reference a relayed text carries, from its `[K7Q] Reply "K7Q <answer>" ...`
/// line; panics (failing the test) when there is none.
pub fn reference_of(body: &str) -> String {
    let line = body
        .lines()
        .rev()
        .find(|line| line.starts_with('['))
        .unwrap_or_else(|| panic!("no reference line in {body:?}"));
    let reference = &line[1..line.find(']').expect("a closing bracket")];
    assert_eq!(reference.len(), 3, "{body:?}");
    assert!(!reference.contains(['0', 'O', '1', 'I']), "{reference}");
    assert!(reference.bytes().any(|b| b.is_ascii_digit()), "{reference}");
    assert!(
        reference.bytes().any(|b| b.is_ascii_uppercase()),
        "{reference}"
    );
    assert!(
        line.ends_with(&format!(
            "Reply \"{reference} <answer>\" to answer the driver"
        )),
        "{body:?}"
    );
    reference.to_string()
}

/// A relayed text without the relay's reference lines at its end.
pub fn without_reference(body: &str) -> &str {
    match body.rfind("\n[") {
        Some(at) => &body[..at],
        None => body,
    }
}

/// A function's answer, as API Gateway would hand it to Twilio.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

pub struct Stack {
    pub aws: AwsFixture,
    pub twilio: Sandbox,
    pub runtime: RuntimeApi,
    pub functions: Vec<FunctionProcess>,
}

impl Stack {
    /// One `sms-inbound` instance, configured for the fixture and the sandbox.
    pub async fn start(prefix: &str) -> Self {
        Self::start_with(prefix, 1, &[]).await
    }

    /// `instances` `sms-inbound` processes polling one Runtime API, as Lambda runs
    /// concurrent execution environments; `extra_env` overrides the configuration.
    pub async fn start_with(prefix: &str, instances: usize, extra_env: &[(&str, &str)]) -> Self {
        Self::start_function("sms-inbound", prefix, instances, extra_env).await
    }

    /// `instances` processes of `function`; `extra_env` overrides the configuration
    /// (an empty value unsets a variable, as the functions read it).
    pub async fn start_function(
        function: &str,
        prefix: &str,
        instances: usize,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let aws = AwsFixture::create(prefix).await;
        // Twilio accepts the rotated token too once a rotation has been promoted.
        let mut accounts = SandboxConfig::single(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN);
        accounts
            .accounts
            .extend(SandboxConfig::single(TEST_ACCOUNT_SID, ROTATED_AUTH_TOKEN).accounts);
        let twilio = Sandbox::start(accounts)
            .await
            .expect("twilio sandbox starts");
        let runtime = RuntimeApi::start().await;
        let mut stack = Stack {
            aws,
            twilio,
            runtime,
            functions: Vec::new(),
        };
        for _ in 0..instances {
            stack.spawn_instance(function, extra_env);
        }
        stack
    }

    /// Starts one more process of `function` on this stack's Runtime API, configured
    /// for its fixture and sandbox; `extra_env` overrides the configuration. Its init
    /// reads the secrets (the prefetch), so a test that sets a secret for it starts
    /// the stack with no instance, sets the secret, then calls this.
    pub fn spawn_instance(&mut self, function: &str, extra_env: &[(&str, &str)]) {
        let mut env = self.aws.function_env();
        env.push(("TWILIO_API_BASE".into(), self.twilio.base_url()));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        self.functions
            .push(FunctionProcess::spawn(function, &self.runtime, &env));
    }

    /// The URL Twilio calls (and signs) for inbound messages.
    pub fn inbound_url(&self) -> String {
        format!("https://{API_HOST}/{STAGE}{INBOUND_PATH}")
    }

    /// A REST proxy event for `params`, signed over `signed_url` with `token`.
    pub fn event_signed(&self, params: &[(&str, &str)], signed_url: &str, token: &str) -> Value {
        let signature = twilio_signature(token, signed_url, params);
        rest_proxy_event(
            "POST",
            INBOUND_PATH,
            STAGE,
            API_HOST,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &signature),
                ("User-Agent", "TwilioProxy/1.1"),
            ],
            &twilio_form(params),
            None,
        )
    }

    /// An inbound webhook as Twilio would send it: signed, REST proxy event.
    pub fn inbound_event(&self, params: &[(&str, &str)]) -> Value {
        self.event_signed(params, &self.inbound_url(), TEST_AUTH_TOKEN)
    }

    /// A dispatcher's `POST /api/v1/sms/outbound` as API Gateway (REST) hands it over:
    /// `bearer` as the `Authorization` header (if any), `body` as it is, and an
    /// `Idempotency-Key` (if any).
    pub fn outbound_event(
        &self,
        bearer: Option<&str>,
        body: &str,
        idempotency_key: Option<&str>,
    ) -> Value {
        let authorization = bearer.map(|token| format!("Bearer {token}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(value) = &authorization {
            headers.push(("Authorization", value));
        }
        if let Some(key) = idempotency_key {
            headers.push(("Idempotency-Key", key));
        }
        rest_proxy_event("POST", OUTBOUND_PATH, STAGE, API_HOST, &headers, body, None)
    }

    /// Hands `event` to the function and returns how the invocation ended, once the
    /// function's output of it has been read whole (see [`Stack::invoke`]).
    pub async fn invoke_event(&self, event: Value) -> Invocation {
        let (request_id, invocation) = self.runtime.invoke_with_id(event).await;
        settle_invocation(&self.functions, &request_id).await;
        invocation
    }

    /// Hands `event` to the function and returns its answer once the function's output
    /// of that invocation has been read whole, so log assertions after it see every
    /// line it wrote.
    pub async fn invoke(&self, event: Value) -> HttpAnswer {
        match self.invoke_event(event).await {
            Invocation::Response(response) => {
                let (status, headers, body) = response_parts(&response);
                HttpAnswer {
                    status,
                    headers,
                    body,
                }
            }
            Invocation::Error(error) => panic!(
                "invocation failed: {error}\nlogs:\n{}",
                self.logs().join("\n")
            ),
        }
    }

    /// A driver's text: `From`, `Body`, a fresh `MessageSid`. Returns the SID too.
    pub async fn text_from(&self, from: &str, body: &str) -> (String, HttpAnswer) {
        let sid = message_sid();
        let answer = self.text_with_sid(&sid, from, body).await;
        (sid, answer)
    }

    /// A text under a given `MessageSid`: Twilio's redelivery of one already sent.
    pub async fn text_with_sid(&self, sid: &str, from: &str, body: &str) -> HttpAnswer {
        let params = driver_params(sid, from, body);
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.invoke(self.inbound_event(&params)).await
    }

    pub fn sent(&self) -> Vec<SentMessage> {
        self.twilio.messages()
    }

    pub fn sent_to(&self, phone: &str) -> Vec<SentMessage> {
        self.sent().into_iter().filter(|m| m.to == phone).collect()
    }

    /// Every log line of every instance.
    pub fn logs(&self) -> Vec<String> {
        self.functions.iter().flat_map(|f| f.logs()).collect()
    }

    pub fn json_logs(&self) -> Vec<Value> {
        self.functions.iter().flat_map(|f| f.json_logs()).collect()
    }

    /// The first EMF document any instance wrote carrying `metric`, waiting up to 5 s
    /// for it; panics (with the logs) when none comes.
    pub async fn metric(&self, metric: &str) -> Value {
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            for function in &self.functions {
                if let Some(doc) = function
                    .wait_for_metric(metric, std::time::Duration::ZERO)
                    .await
                {
                    return doc;
                }
            }
            if tokio::time::Instant::now() >= until {
                panic!("no {metric} metric written:\n{}", self.logs().join("\n"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(self) {
        for function in self.functions {
            function.stop().await;
        }
    }

    /// The URL the relay gives Twilio as `StatusCallback`, and Twilio calls (and signs).
    pub fn status_url(&self) -> String {
        format!("https://{API_HOST}/{STAGE}{STATUS_PATH}")
    }

    /// A status callback as API Gateway (REST) hands it over: `POST` [`STATUS_PATH`] on
    /// [`API_HOST`], stage [`STAGE`], the callback's form as the body and its signature as
    /// `X-Twilio-Signature`. Panics unless the callback's URL is [`Stack::status_url`],
    /// the only URL these events can stand for.
    pub fn status_event(&self, callback: &twilio_sandbox::StatusCallback) -> Value {
        let expected = self.status_url();
        assert_eq!(
            callback.url, expected,
            "the message's StatusCallback is not this stack's status endpoint: the event \
             would claim host {API_HOST}, stage {STAGE}, path {STATUS_PATH}"
        );
        let params: Vec<(&str, &str)> = callback
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        rest_proxy_event(
            "POST",
            STATUS_PATH,
            STAGE,
            API_HOST,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &callback.signature),
                ("User-Agent", "TwilioProxy/1.1"),
            ],
            &twilio_form(&params),
            None,
        )
    }

    /// Twilio's status callback for sent message `message_sid` moving to `status` (with
    /// `error_code`, e.g. 30003 for `undelivered`), built and signed by the sandbox and
    /// invoked through the Runtime API. Panics if the sandbox has no callback for it (an
    /// unknown SID, or a message sent without `StatusCallback`).
    pub async fn fire_status(
        &self,
        message_sid: &str,
        status: &str,
        error_code: Option<u32>,
    ) -> HttpAnswer {
        let Some(callback) = self.twilio.status_callback(message_sid, status, error_code) else {
            let sent = self.sent();
            let why = match sent.iter().find(|m| m.sid == message_sid) {
                Some(_) => "it was sent without a StatusCallback",
                None => "the sandbox accepted no message with that SID",
            };
            panic!("no status callback for {message_sid}: {why}; sent: {sent:?}");
        };
        self.invoke(self.status_event(&callback)).await
    }
}

/// The parameters of Twilio's messaging webhook for one SMS.
pub fn driver_params(sid: &str, from: &str, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ToCountry", "US".into()),
        ("SmsMessageSid", sid.into()),
        ("NumMedia", "0".into()),
        ("SmsSid", sid.into()),
        ("SmsStatus", "received".into()),
        ("Body", body.into()),
        ("To", QDN_NUMBER.into()),
        ("NumSegments", "1".into()),
        ("MessageSid", sid.into()),
        ("AccountSid", TEST_ACCOUNT_SID.into()),
        ("From", from.into()),
        ("ApiVersion", "2010-04-01".into()),
    ]
}
