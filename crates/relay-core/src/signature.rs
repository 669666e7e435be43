//! Twilio's webhook signature (`X-Twilio-Signature`).
//!
//! base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value)), the
//! parameters sorted by name and, for a repeated name, by value, as Twilio's helper
//! libraries compute it. A URL is accepted with and without its port, again as the
//! helper libraries do, because proxies add or drop the default port.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The string Twilio signs: the URL, then the parameters sorted by name and value,
/// each distinct pair once.
fn signed_payload(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut payload = String::with_capacity(url.len() + 64 * sorted.len());
    payload.push_str(url);
    for (name, value) in sorted {
        payload.push_str(name);
        payload.push_str(value);
    }
    payload
}

fn mac_over(auth_token: &str, payload: &str) -> HmacSha1 {
    let mut mac =
        HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(payload.as_bytes());
    mac
}

/// The signature Twilio would send for this request.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mac = mac_over(auth_token, &signed_payload(url, params));
    BASE64.encode(mac.finalize().into_bytes())
}

/// True when `signature` is valid for `url` (with or without its port) and `params`
/// under any of `auth_tokens` (the current token and, during rotation, the previous).
/// The comparison is constant-time.
pub fn is_valid_signature(
    auth_tokens: &[&str],
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let Ok(expected) = BASE64.decode(signature.trim()) else {
        return false;
    };
    let mut valid = false;
    for candidate in url_variants(url) {
        let payload = signed_payload(&candidate, params);
        for token in auth_tokens {
            // Every combination is checked, so the time taken does not say which matched.
            valid |= mac_over(token, &payload).verify_slice(&expected).is_ok();
        }
    }
    valid
}

/// The URL without any port, and with the scheme's default port when it has none;
/// and always the URL exactly as given (an empty port, `host:`, is neither).
fn url_variants(url: &str) -> Vec<String> {
    let Some(parts) = UrlParts::split(url) else {
        return vec![url.to_string()];
    };
    let without_port = parts.join(None);
    let with_port = match (parts.port, default_port(parts.scheme)) {
        (Some(port), _) => parts.join(Some(port)),
        (None, Some(default)) => parts.join(Some(default)),
        (None, None) => without_port.clone(),
    };
    let mut variants = vec![without_port, with_port, url.to_string()];
    variants.dedup();
    if variants.len() == 3 && variants[2] == variants[0] {
        variants.pop();
    }
    variants
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Some("443"),
        "http" => Some("80"),
        _ => None,
    }
}

/// A URL cut textually around its port, so nothing else in it is re-encoded.
struct UrlParts<'a> {
    scheme: &'a str,
    /// `scheme://` and any `user:pass@` before the host.
    prefix: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    /// Path, query and fragment.
    rest: &'a str,
}

impl<'a> UrlParts<'a> {
    fn split(url: &'a str) -> Option<Self> {
        let scheme_end = url.find("://")?;
        let authority_start = scheme_end + 3;
        let authority_len = url[authority_start..]
            .find(['/', '?', '#'])
            .unwrap_or(url.len() - authority_start);
        let authority = &url[authority_start..authority_start + authority_len];
        let host_start = authority.rfind('@').map_or(0, |at| at + 1);
        let host_port = &authority[host_start..];
        // A colon after the last `]` (IPv6 literals are bracketed) starts the port.
        let search_from = host_port.rfind(']').unwrap_or(0);
        let (host, port) = match host_port[search_from..].rfind(':') {
            Some(colon) => {
                let colon = search_from + colon;
                (&host_port[..colon], Some(&host_port[colon + 1..]))
            }
            None => (host_port, None),
        };
        Some(UrlParts {
            scheme: &url[..scheme_end],
            prefix: &url[..authority_start + host_start],
            host,
            port: port.filter(|p| !p.is_empty()),
            rest: &url[authority_start + authority_len..],
        })
    }

    fn join(&self, port: Option<&str>) -> String {
        match port {
            Some(port) => format!("{}{}:{}{}", self.prefix, self.host, port, self.rest),
            None => format!("{}{}{}", self.prefix, self.host, self.rest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the test suite of Twilio's Python helper library
    // (tests/unit/test_request_validator.py): token "12345".
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn valid(url: &str, params: &[(String, String)], signature: &str) -> bool {
        is_valid_signature(&[TOKEN], url, params, signature)
    }

    #[test]
    fn computes_twilios_published_signature() {
        assert_eq!(compute_signature(TOKEN, URL, &params()), EXPECTED);
        assert!(valid(URL, &params(), EXPECTED));
    }

    #[test]
    fn repeated_parameters_sort_by_value() {
        let params: Vec<(String, String)> = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            compute_signature(TOKEN, URL, &params),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn port_is_removed_from_https() {
        assert!(valid(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params(),
            EXPECTED
        ));
    }

    #[test]
    fn port_is_kept_or_removed_on_http() {
        let url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert!(valid(url, &params(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="));
    }

    #[test]
    fn default_port_is_added_on_https() {
        assert!(valid(URL, &params(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
    }

    #[test]
    fn default_port_is_added_on_http() {
        let url = "http://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(valid(url, &params(), "0ZXoZLH/DfblKGATFgpif+LLRf4="));
    }

    #[test]
    fn wrong_anything_fails() {
        assert!(!valid(
            "https://mycompany.com/other.php?foo=1&bar=2",
            &params(),
            EXPECTED
        ));
        assert!(!is_valid_signature(&["54321"], URL, &params(), EXPECTED));
        let mut tampered = params();
        tampered[1].1 = "9999".into();
        assert!(!valid(URL, &tampered, EXPECTED));
        assert!(!valid(URL, &params(), ""));
        assert!(!valid(URL, &params(), "not base64!"));
        assert!(!valid(URL, &params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8"));
    }

    #[test]
    fn previous_token_is_accepted_during_rotation() {
        assert!(is_valid_signature(
            &["new-token", TOKEN],
            URL,
            &params(),
            EXPECTED
        ));
    }

    #[test]
    fn url_variants_cut_only_the_port() {
        assert_eq!(
            url_variants("https://user:pw@h.example:8443/p?q=1"),
            vec![
                "https://user:pw@h.example/p?q=1",
                "https://user:pw@h.example:8443/p?q=1"
            ]
        );
        assert_eq!(
            url_variants("https://[::1]/x"),
            vec!["https://[::1]/x", "https://[::1]:443/x"]
        );
        assert_eq!(
            url_variants("https://h.example"),
            vec!["https://h.example", "https://h.example:443"]
        );
        // Found by a property test: an empty port is signed as given.
        assert_eq!(
            url_variants("https://a.example:/p"),
            vec![
                "https://a.example/p",
                "https://a.example:443/p",
                "https://a.example:/p"
            ]
        );
    }
}
