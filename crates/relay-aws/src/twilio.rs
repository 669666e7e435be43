//! Twilio's Messages API over reqwest: one client built at start, timeouts set, and
//! bounded retries with backoff on 429/5xx and on connections that never opened.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use secrecy::ExposeSecret;
use serde::Deserialize;
use tracing::instrument;

use relay_core::delivery::DeliveryStatus;
use relay_core::ids::MessageSid;
use relay_core::phone::mask;
use relay_core::ports::{OutgoingSms, SendError, SentSms, SmsSender};
use relay_core::secret::TwilioAccount;

/// Twilio error codes for a recipient no retry will reach; the cascade moves on.
/// 21211 invalid To, 21217 number does not exist, 21408 region not enabled,
/// 21610 unsubscribed (STOP), 21612 not reachable by SMS, 21614 not a mobile number.
pub const RECIPIENT_REFUSED_CODES: [u32; 6] = [21211, 21217, 21408, 21610, 21612, 21614];

/// The longest one request to Twilio may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    /// The most a `Retry-After` or backoff may make us wait between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// A Twilio REST client; cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct TwilioApi {
    http: reqwest::Client,
    base_url: String,
    retry: RetryPolicy,
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`.
#[derive(Debug, Deserialize)]
struct TwilioErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessageResource {
    sid: String,
    status: Option<String>,
}

impl TwilioApi {
    /// `http`: a builder on the function's shared TLS configuration
    /// ([`crate::transport::Transport::reqwest`]); the timeouts are set here.
    pub fn new(
        http: reqwest::ClientBuilder,
        base_url: &str,
        retry: RetryPolicy,
    ) -> Result<Self, reqwest::Error> {
        let http = http
            .connect_timeout(Duration::from_secs(2))
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("qdn-sms-relay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(TwilioApi {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            retry,
        })
    }

    /// Opens (and keeps in the pool) a connection to the Twilio API, so the first
    /// send skips the TCP and TLS handshakes. Any answer will do: only the connection
    /// matters, and nothing is sent.
    pub async fn warm(&self) -> Result<(), reqwest::Error> {
        self.http.head(&self.base_url).send().await.map(|_| ())
    }

    /// A sender bound to one account, for one invocation that must be done by
    /// `deadline` (the Lambda invocation's, if known).
    pub fn sender<'a>(
        &'a self,
        account: &'a TwilioAccount,
        deadline: Option<Instant>,
    ) -> TwilioSender<'a> {
        TwilioSender {
            api: self,
            account,
            deadline,
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self.retry.base_delay * 2u32.saturating_pow(attempt.saturating_sub(1));
        let jitter = rand::rng().random_range(0..=self.retry.base_delay.as_millis() as u64 / 2);
        let wait = retry_after.unwrap_or(exponential + Duration::from_millis(jitter));
        wait.min(self.retry.max_delay)
    }
}

pub struct TwilioSender<'a> {
    api: &'a TwilioApi,
    account: &'a TwilioAccount,
    deadline: Option<Instant>,
}

/// Time kept free at the end of an invocation to record the outcome and answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// Whether a request that may take `request_timeout` can still start at `now` and be
/// answered before `deadline`. An attempt cut off by the Lambda timeout would leave
/// its outcome unknown, so it is better not started: the claim is released instead.
pub fn attempt_fits(now: Instant, deadline: Option<Instant>, request_timeout: Duration) -> bool {
    deadline.is_none_or(|deadline| now + request_timeout + DEADLINE_MARGIN <= deadline)
}

enum AttemptOutcome {
    Done(Result<SentSms, SendError>),
    Retry {
        detail: String,
        retry_after: Option<Duration>,
    },
}

impl TwilioSender<'_> {
    fn form(&self, sms: &OutgoingSms) -> Vec<(&'static str, String)> {
        let mut form = vec![("To", sms.to.to_string()), ("Body", sms.body.clone())];
        if let Some(service) = &self.account.messaging_service_sid {
            form.push(("MessagingServiceSid", service.to_string()));
        }
        if let Some(from) = &self.account.from_number {
            form.push(("From", from.to_string()));
        }
        form.extend(sms.media_urls.iter().map(|url| ("MediaUrl", url.clone())));
        if let Some(callback) = &sms.status_callback {
            form.push(("StatusCallback", callback.clone()));
        }
        form
    }

    async fn attempt(&self, url: &str, form: &[(&'static str, String)]) -> AttemptOutcome {
        let response = self
            .api
            .http
            .post(url)
            .basic_auth(
                self.account.account_sid.as_str(),
                Some(self.account.auth_token.expose_secret()),
            )
            .form(form)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            // Nothing reached Twilio: safe to try again.
            Err(e) if e.is_connect() => {
                return AttemptOutcome::Retry {
                    detail: format!("connection failed: {e}"),
                    retry_after: None,
                };
            }
            // The request could not even be built: nothing went out.
            Err(e) if e.is_builder() => {
                return AttemptOutcome::Done(Err(SendError::Unavailable {
                    detail: format!("request not built: {e}"),
                }));
            }
            Err(e) => {
                return AttemptOutcome::Done(Err(SendError::OutcomeUnknown {
                    detail: e.to_string(),
                }));
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match response.text().await {
            Ok(body) => body,
            Err(e) if status.is_success() => {
                return AttemptOutcome::Done(Err(SendError::OutcomeUnknown {
                    detail: format!("accepted ({status}) but the answer was cut off: {e}"),
                }));
            }
            Err(_) => String::new(),
        };
        if status.is_success() {
            return AttemptOutcome::Done(parse_created(&body));
        }
        let error: Option<TwilioErrorBody> = serde_json::from_str(&body).ok();
        let code = error.as_ref().and_then(|e| e.code).unwrap_or(0);
        // Twilio's messages quote the numbers involved; they end up in logs and alerts.
        let message = error
            .and_then(|e| e.message)
            .map(|m| mask_numbers(&m))
            .unwrap_or_else(|| format!("HTTP {status}"));
        if status.as_u16() == 429 || status.is_server_error() {
            return AttemptOutcome::Retry {
                detail: format!("HTTP {status}: {code} {message}"),
                retry_after,
            };
        }
        AttemptOutcome::Done(Err(if RECIPIENT_REFUSED_CODES.contains(&code) {
            SendError::RecipientRefused { code, message }
        } else {
            SendError::Rejected {
                status: status.as_u16(),
                code,
                message,
            }
        }))
    }
}

/// Masks every run of 7 or more digits (with an optional leading `+`) to its last four.
fn mask_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if digits >= 7 {
            out.push_str(&mask(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '+' && run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn parse_created(body: &str) -> Result<SentSms, SendError> {
    let unknown = |detail: String| SendError::OutcomeUnknown { detail };
    let resource: MessageResource = serde_json::from_str(body)
        .map_err(|e| unknown(format!("accepted but the answer is not a message: {e}")))?;
    let sid = MessageSid::parse(&resource.sid)
        .map_err(|e| unknown(format!("accepted but the answer's sid is unusable: {e}")))?;
    Ok(SentSms {
        sid,
        // A status we do not know yet is taken as the start of the road.
        status: resource
            .status
            .as_deref()
            .and_then(DeliveryStatus::parse)
            .unwrap_or(DeliveryStatus::Queued),
    })
}

#[async_trait]
impl SmsSender for TwilioSender<'_> {
    #[instrument(level = "info", skip_all, fields(to = %sms.to.masked(), media = sms.media_urls.len()))]
    async fn send(&self, sms: &OutgoingSms) -> Result<SentSms, SendError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api.base_url, self.account.account_sid
        );
        let form = self.form(sms);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if !attempt_fits(Instant::now(), self.deadline, REQUEST_TIMEOUT) {
                return Err(SendError::Unavailable {
                    detail: format!(
                        "not enough time left in this invocation for attempt {attempt}"
                    ),
                });
            }
            match self.attempt(&url, &form).await {
                AttemptOutcome::Done(result) => {
                    if let Err(error) = &result {
                        tracing::warn!(attempt, %error, to = %mask(sms.to.as_str()), "Twilio send failed");
                    }
                    return result;
                }
                AttemptOutcome::Retry {
                    detail,
                    retry_after,
                } => {
                    tracing::warn!(attempt, detail = %detail, "Twilio send failed; may retry");
                    if attempt >= self.api.retry.max_attempts {
                        return Err(SendError::Unavailable {
                            detail: format!("{detail} (after {attempt} attempts)"),
                        });
                    }
                    tokio::time::sleep(self.api.backoff(attempt, retry_after)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_start_only_when_they_can_finish_before_the_deadline() {
        let now = Instant::now();
        let timeout = Duration::from_secs(5);
        assert!(attempt_fits(now, None, timeout));
        assert!(attempt_fits(
            now,
            Some(now + Duration::from_secs(6)),
            timeout
        ));
        assert!(!attempt_fits(
            now,
            Some(now + Duration::from_millis(5_999)),
            timeout
        ));
        assert!(!attempt_fits(now, Some(now), timeout));
    }

    #[test]
    fn numbers_in_twilio_messages_are_masked() {
        assert_eq!(
            mask_numbers("The 'To' number +15005550001 is not a valid phone number."),
            "The 'To' number ***0001 is not a valid phone number."
        );
        assert_eq!(mask_numbers("code 21211, 2 of 3"), "code 21211, 2 of 3");
        assert_eq!(mask_numbers("8583354807"), "***4807");
    }
}
