//! Twilio webhooks as they arrive through API Gateway: which endpoint, the URL Twilio
//! signed, the POST parameters, and the inbound message they describe.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};

use relay_core::secret::TwilioAccount;
use relay_core::signature::is_valid_signature;
use relay_core::sms::{FieldError, InboundSms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Inbound,
    Status,
}

/// Why a request is not a usable webhook; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no such endpoint: {0}")]
    NotFound(String),
    #[error("method {0} not allowed; use POST")]
    MethodNotAllowed(String),
    #[error("body must be application/x-www-form-urlencoded: {0}")]
    NotAForm(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("X-Twilio-Signature is missing")]
    MissingSignature,
    #[error("X-Twilio-Signature does not match")]
    BadSignature,
}

/// A webhook request, before its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub route: Route,
    /// The URL Twilio requested, as Twilio signed it.
    pub url: String,
    /// Other spellings of `url` that Twilio may have signed: REST (v1) events lose the
    /// query string's order, so every order of its parameters is a candidate.
    pub url_variants: Vec<String>,
    pub params: Vec<(String, String)>,
    pub signature: Option<String>,
}

impl Webhook {
    /// Reads a request. `public_base_url` (scheme and host) replaces what the request
    /// says about where Twilio called, when set.
    pub fn from_request(
        req: &Request,
        public_base_url: Option<&str>,
    ) -> Result<Self, WebhookError> {
        let raw_path = req.raw_http_path();
        let path = if raw_path.is_empty() {
            req.uri().path()
        } else {
            raw_path
        };
        // A suffix, because a custom domain's base path may stand in front of it.
        let route = if path.ends_with("/api/v1/sms/inbound") {
            Route::Inbound
        } else if path.ends_with("/api/v1/sms/status") {
            Route::Status
        } else {
            return Err(WebhookError::NotFound(path.to_string()));
        };
        if req.method() != lambda_http::http::Method::POST {
            return Err(WebhookError::MethodNotAllowed(req.method().to_string()));
        }
        let (url, url_variants) = signed_urls(req, public_base_url, path);
        let params = form_params(req)?;
        let signature = header(req, "x-twilio-signature").map(str::to_string);
        Ok(Webhook {
            route,
            url,
            url_variants,
            params,
            signature,
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The driver's (or dispatcher's) text this messaging webhook describes.
    pub fn inbound_sms(&self) -> Result<InboundSms, WebhookError> {
        Ok(InboundSms::from_form(&self.params)?)
    }

    /// Whether `signature` is Twilio's over this request with the account's current
    /// or previous auth token, at any spelling of the URL.
    pub fn is_signed_by(&self, account: &TwilioAccount, signature: &str) -> bool {
        let tokens = account.webhook_tokens();
        std::iter::once(&self.url)
            .chain(&self.url_variants)
            .any(|url| is_valid_signature(&tokens, url, &self.params, signature))
    }

    /// The URL for Twilio's status callbacks about messages we forward: the same
    /// deployment's `/status` endpoint.
    pub fn status_callback_url(&self) -> Option<String> {
        let without_query = self.url.split('?').next().unwrap_or_default();
        without_query
            .strip_suffix("/sms/inbound")
            .map(|base| format!("{base}/sms/status"))
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The URL Twilio signed, and other spellings of it. With `PUBLIC_BASE_URL` it is
/// that plus the request path; otherwise `X-Forwarded-Proto://Host` plus the request
/// context's path, which keeps the stage or base path that API Gateway strips from the
/// event's `path`. Then the query string, if any.
fn signed_urls(
    req: &Request,
    public_base_url: Option<&str>,
    raw_path: &str,
) -> (String, Vec<String>) {
    let base = match public_base_url {
        Some(public) => format!("{public}{raw_path}"),
        None => {
            let proto = header(req, "x-forwarded-proto")
                .and_then(|p| p.split(',').next())
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .unwrap_or("https");
            let host = header(req, "host")
                .map(str::to_string)
                .or_else(|| req.uri().host().map(str::to_string))
                .unwrap_or_default();
            let context_path = match req.request_context_ref() {
                Some(RequestContext::ApiGatewayV1(ctx)) => ctx.path.clone(),
                Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.path.clone(),
                _ => None,
            };
            let path = context_path
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| raw_path.to_string());
            format!("{proto}://{host}{path}")
        }
    };
    let query = req.uri().query().filter(|q| !q.is_empty());
    let Some(query) = query else {
        return (base, Vec::new());
    };
    let url = format!("{base}?{query}");
    // HTTP API and function-URL events keep the raw query string; REST events only
    // keep a map of it, which lambda_http turns back into a string in any order.
    let order_lost = matches!(
        req.request_context_ref(),
        Some(RequestContext::ApiGatewayV1(_))
    );
    let variants = if order_lost {
        query_orders(query)
            .into_iter()
            .map(|q| format!("{base}?{q}"))
            .filter(|candidate| *candidate != url)
            .collect()
    } else {
        Vec::new()
    };
    (url, variants)
}

/// Beyond this many distinct names the query is only tried as given (5! = 120 orders).
const MAX_REORDERED_QUERY_NAMES: usize = 5;

/// The query string with its parameter names in every order (values of one name keep
/// their order), re-encoded as lambda_http encodes it.
fn query_orders(query: &str) -> Vec<String> {
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) else {
        return Vec::new();
    };
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in pairs {
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => groups.push((name, vec![value])),
        }
    }
    if groups.len() > MAX_REORDERED_QUERY_NAMES {
        return Vec::new();
    }
    let groups = &groups;
    permutations(groups.len())
        .into_iter()
        .filter_map(|order| {
            let mut pairs: Vec<(&str, &str)> = Vec::new();
            for i in order {
                let (name, values) = &groups[i];
                pairs.extend(values.iter().map(|value| (name.as_str(), value.as_str())));
            }
            serde_urlencoded::to_string(pairs).ok()
        })
        .collect()
}

/// Every ordering of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut all = Vec::new();
    for shorter in permutations(n - 1) {
        for position in 0..=shorter.len() {
            let mut order = shorter.clone();
            order.insert(position, n - 1);
            all.push(order);
        }
    }
    all
}

fn form_params(req: &Request) -> Result<Vec<(String, String)>, WebhookError> {
    let content_type = header(req, "content-type").unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        let shown = if mime.is_empty() {
            "no Content-Type"
        } else {
            mime
        };
        return Err(WebhookError::NotAForm(format!("got {shown}")));
    }
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    serde_urlencoded::from_bytes(bytes).map_err(|e| WebhookError::NotAForm(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rest_event(path: &str, stage: &str, body: &str, content_type: &str) -> Request {
        let event = serde_json::json!({
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": "POST",
            "headers": {
                "Host": "abc123.execute-api.us-east-1.amazonaws.com",
                "X-Forwarded-Proto": "https",
                "Content-Type": content_type,
                "X-Twilio-Signature": "sig"
            },
            "multiValueHeaders": {},
            "queryStringParameters": null,
            "multiValueQueryStringParameters": null,
            "pathParameters": {"proxy": path.trim_start_matches('/')},
            "stageVariables": null,
            "requestContext": {
                "accountId": "123456789012",
                "resourceId": "abc",
                "stage": stage,
                "requestId": "r",
                "path": format!("/{stage}{path}"),
                "httpMethod": "POST",
                "apiId": "abc123",
                "protocol": "HTTP/1.1",
                "identity": {"sourceIp": "127.0.0.1"},
                "resourcePath": "/{proxy+}"
            },
            "body": body,
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

    #[test]
    fn rest_event_url_keeps_the_stage() {
        let req = rest_event("/api/v1/sms/inbound", "prod", "A=1&B=2", FORM);
        let hook = Webhook::from_request(&req, None).unwrap();
        assert_eq!(hook.route, Route::Inbound);
        assert_eq!(
            hook.url,
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/api/v1/sms/inbound"
        );
        assert_eq!(
            hook.params,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(hook.signature.as_deref(), Some("sig"));
        assert_eq!(
            hook.status_callback_url().unwrap(),
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/api/v1/sms/status"
        );
    }

    #[test]
    fn public_base_url_replaces_scheme_and_host() {
        let req = rest_event("/api/v1/sms/status", "prod", "", FORM);
        let hook = Webhook::from_request(&req, Some("https://dashboard.quickdumpnow.com")).unwrap();
        assert_eq!(hook.route, Route::Status);
        assert_eq!(
            hook.url,
            "https://dashboard.quickdumpnow.com/api/v1/sms/status"
        );
    }

    #[test]
    fn rest_query_strings_are_tried_in_every_order() {
        let mut orders = query_orders("b=2&a=1&a=0&c=x+y");
        orders.sort();
        assert_eq!(orders.len(), 6);
        assert!(orders.contains(&"a=1&a=0&b=2&c=x+y".to_string()));
        assert!(orders.contains(&"c=x+y&b=2&a=1&a=0".to_string()));
        assert!(
            orders.iter().all(|o| !o.contains("a=0&a=1")),
            "values keep their order"
        );
        assert_eq!(permutations(3).len(), 6);
        assert!(query_orders("a=1&b=1&c=1&d=1&e=1&f=1").is_empty());
    }

    #[test]
    fn non_forms_and_unknown_paths_are_refused() {
        let req = rest_event("/api/v1/sms/inbound", "prod", "{}", "application/json");
        assert!(matches!(
            Webhook::from_request(&req, None),
            Err(WebhookError::NotAForm(_))
        ));
        for path in [
            "/api/v1/other",
            "/elsewhere/sms/inbound",
            "/api/v2/sms/status",
        ] {
            let req = rest_event(path, "prod", "", FORM);
            let refused = Webhook::from_request(&req, None);
            assert!(matches!(refused, Err(WebhookError::NotFound(_))), "{path}");
        }
    }
}
