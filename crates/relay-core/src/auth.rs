//! Dispatchers' bearer tokens for `sms-outbound`: HS256 JWTs signed with the
//! `JWT_SECRET_ID` key (its `AWSPREVIOUS` version too, during a rotation).
//!
//! The algorithm is pinned here, never taken from the token's header; `exp` is
//! required; `sub` is the dispatcher ID. Tokens and keys stay in `secrecy` types, and
//! no error ever quotes the token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::ids::DispatcherId;
use crate::secret::{SecretError, SecretVersions};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits).
pub const MIN_KEY_BYTES: usize = 32;

/// Longer than any token we issue: refused before any work is spent on it.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a request is not authenticated; every one answers `401`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header is missing")]
    MissingHeader,
    #[error("the Authorization header is not a Bearer token")]
    NotBearer,
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the token is signed with {0}; only HS256 is accepted")]
    WrongAlgorithm(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token has no exp (expiry) claim")]
    MissingExpiry,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's claims are unusable: {0}")]
    InvalidClaims(&'static str),
    #[error("the token's subject is not a known dispatcher")]
    UnknownDispatcher,
}

impl AuthError {
    /// The short code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingHeader => "missing_token",
            AuthError::NotBearer => "not_bearer",
            AuthError::Malformed => "malformed_token",
            AuthError::WrongAlgorithm(_) => "wrong_algorithm",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::MissingExpiry => "missing_exp",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::InvalidClaims(_) => "invalid_claims",
            AuthError::UnknownDispatcher => "unknown_dispatcher",
        }
    }
}

/// The token from an `Authorization: Bearer <token>` header.
pub struct BearerToken(SecretString);

impl BearerToken {
    pub fn from_header(value: Option<&str>) -> Result<Self, AuthError> {
        let value = value.ok_or(AuthError::MissingHeader)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let token = token.trim();
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        Ok(BearerToken(SecretString::from(token)))
    }
}

/// The HS256 keys a token may be signed with: current first, then previous.
pub struct JwtKeys(Vec<SecretString>);

impl JwtKeys {
    /// The keys from the JWT secret's versions. A current key shorter than
    /// [`MIN_KEY_BYTES`] is a configuration error (a short HMAC key can be guessed);
    /// a short previous key is ignored.
    pub fn from_versions(secret_id: &str, versions: &SecretVersions) -> Result<Self, SecretError> {
        let long_enough = |key: &SecretString| key.expose_secret().len() >= MIN_KEY_BYTES;
        if !long_enough(&versions.current) {
            return Err(SecretError::Malformed {
                secret_id: secret_id.to_string(),
                detail: format!("the HS256 key must be at least {MIN_KEY_BYTES} bytes"),
            });
        }
        let keys = versions.all().filter(|k| long_enough(k)).cloned().collect();
        Ok(JwtKeys(keys))
    }
}

/// The claims of a dispatcher's token: what `qdn token` signs and `sms-outbound`
/// verifies (`sub` is optional here only so a token without it gets a clear answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatcherClaims {
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

/// How long a token lives unless told otherwise (a dispatcher's shift).
pub const DEFAULT_TOKEN_TTL_SECS: i64 = 12 * 3600;

/// Signs an HS256 token for `dispatcher`, valid from `now` for `ttl_secs`, with the
/// current key: what `sms-outbound` accepts.
pub fn issue_token(
    dispatcher: &DispatcherId,
    key: &SecretString,
    now: i64,
    ttl_secs: i64,
) -> Result<SecretString, String> {
    let claims = DispatcherClaims {
        sub: Some(dispatcher.as_str().to_string()),
        iat: Some(now),
        exp: Some(now + ttl_secs),
    };
    let key = jsonwebtoken::EncodingKey::from_secret(key.expose_secret().as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), &claims, &key)
        .map(SecretString::from)
        .map_err(|e| format!("the token could not be signed: {e}"))
}

/// Verifies `token` against `keys` and returns the dispatcher it names. Whether that
/// dispatcher exists is the caller's check ([`AuthError::UnknownDispatcher`]).
pub fn verify(token: &BearerToken, keys: &JwtKeys) -> Result<DispatcherId, AuthError> {
    let token = token.0.expose_secret();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    let mut error = AuthError::BadSignature;
    for key in &keys.0 {
        let key = DecodingKey::from_secret(key.expose_secret().as_bytes());
        match jsonwebtoken::decode::<DispatcherClaims>(token, &key, &validation) {
            Ok(data) => return dispatcher(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
            Err(e) => {
                error = classify(e.kind(), token);
                break;
            }
        }
    }
    Err(error)
}

fn dispatcher(claims: DispatcherClaims) -> Result<DispatcherId, AuthError> {
    let sub = claims.sub.ok_or(AuthError::InvalidClaims(
        "sub (the dispatcher ID) is missing",
    ))?;
    DispatcherId::parse(&sub).map_err(|_| AuthError::InvalidClaims("sub is not a dispatcher ID"))
}

fn classify(kind: &ErrorKind, token: &str) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => AuthError::MissingExpiry,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
            AuthError::InvalidClaims("a registered claim has the wrong type")
        }
        ErrorKind::InvalidAudience => AuthError::InvalidClaims("aud is not accepted"),
        ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
            AuthError::InvalidClaims("iss or sub is not accepted")
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => AuthError::WrongAlgorithm(
            header_alg(token).unwrap_or_else(|| "another algorithm".into()),
        ),
        // A header the library cannot read may still name its algorithm (`none`):
        // say so, as that is the likelier mistake (or attack).
        _ => match header_alg(token) {
            Some(alg) if alg != "HS256" => AuthError::WrongAlgorithm(alg),
            _ => AuthError::Malformed,
        },
    }
}

/// The `alg` of the token's header, if it is readable and short (it is echoed).
fn header_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let json = URL_SAFE_NO_PAD.decode(header).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let alg = value.get("alg")?.as_str()?;
    let printable = alg.len() <= 16 && alg.bytes().all(|b| b.is_ascii_alphanumeric());
    printable.then(|| alg.to_string())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const KEY: &str = "unit-test-signing-key-0123456789abcdef";
    const OLD_KEY: &str = "previous-signing-key-0123456789abcdef";

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn keys() -> JwtKeys {
        let versions = SecretVersions {
            current: SecretString::from(KEY),
            previous: Some(SecretString::from(OLD_KEY)),
        };
        JwtKeys::from_versions("qdn/jwt", &versions).unwrap()
    }

    fn sign(alg: Algorithm, key: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    }

    fn check(token: &str) -> Result<DispatcherId, AuthError> {
        let bearer = BearerToken::from_header(Some(&format!("Bearer {token}")))?;
        verify(&bearer, &keys())
    }

    #[test]
    fn current_and_previous_keys_verify() {
        let claims = json!({"sub": "sergio-main", "exp": now() + 600});
        for key in [KEY, OLD_KEY] {
            let id = check(&sign(Algorithm::HS256, key, claims.clone())).unwrap();
            assert_eq!(id.as_str(), "sergio-main");
        }
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let fresh = json!({"sub": "sergio-main", "exp": now() + 600});
        let cases = [
            (
                sign(
                    Algorithm::HS256,
                    "some-other-key-0123456789abcdef!!",
                    fresh.clone(),
                ),
                AuthError::BadSignature,
            ),
            (
                sign(Algorithm::HS384, KEY, fresh.clone()),
                AuthError::WrongAlgorithm("HS384".into()),
            ),
            (
                sign(
                    Algorithm::HS256,
                    KEY,
                    json!({"sub": "a", "exp": now() - 120}),
                ),
                AuthError::Expired,
            ),
            (
                sign(Algorithm::HS256, KEY, json!({"sub": "a"})),
                AuthError::MissingExpiry,
            ),
            (
                sign(Algorithm::HS256, KEY, json!({"exp": now() + 600})),
                AuthError::InvalidClaims("sub (the dispatcher ID) is missing"),
            ),
            (
                sign(
                    Algorithm::HS256,
                    KEY,
                    json!({"sub": "no spaces", "exp": now() + 600}),
                ),
                AuthError::InvalidClaims("sub is not a dispatcher ID"),
            ),
            // An `exp` that is not a number: not a token of ours.
            (
                sign(
                    Algorithm::HS256,
                    KEY,
                    json!({"sub": "a", "exp": "tomorrow"}),
                ),
                AuthError::Malformed,
            ),
            (
                sign(
                    Algorithm::HS256,
                    KEY,
                    json!({"sub": "a", "exp": now() + 600, "nbf": now() + 600}),
                ),
                AuthError::NotYetValid,
            ),
            // We issue no audience: a token for some other audience is not ours.
            (
                sign(
                    Algorithm::HS256,
                    KEY,
                    json!({"sub": "a", "exp": now() + 600, "aud": "billing"}),
                ),
                AuthError::InvalidClaims("aud is not accepted"),
            ),
            ("not.a.jwt".to_string(), AuthError::Malformed),
            ("abc".to_string(), AuthError::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(check(&token).unwrap_err(), expected, "{token}");
        }
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(fresh.to_string())
        );
        assert_eq!(
            check(&none).unwrap_err(),
            AuthError::WrongAlgorithm("none".into())
        );
    }

    #[test]
    fn issued_tokens_verify_for_their_dispatcher_and_expire() {
        let id = DispatcherId::parse("sergio-main").unwrap();
        let token = issue_token(&id, &SecretString::from(KEY), now(), 600).unwrap();
        assert_eq!(check(token.expose_secret()).unwrap(), id);
        let old = issue_token(&id, &SecretString::from(KEY), now() - 7200, 3600).unwrap();
        assert_eq!(check(old.expose_secret()).unwrap_err(), AuthError::Expired);
    }

    #[test]
    fn leeway_is_small() {
        let just_expired = json!({"sub": "a", "exp": now() - 5});
        assert!(check(&sign(Algorithm::HS256, KEY, just_expired)).is_ok());
        let long_expired = json!({"sub": "a", "exp": now() - (LEEWAY_SECS as i64) - 5});
        assert_eq!(
            check(&sign(Algorithm::HS256, KEY, long_expired)).unwrap_err(),
            AuthError::Expired
        );
    }

    #[test]
    fn authorization_header_must_be_bearer() {
        assert_eq!(
            BearerToken::from_header(None).err(),
            Some(AuthError::MissingHeader)
        );
        assert_eq!(
            BearerToken::from_header(Some("Basic dXNlcjpwYXNz")).err(),
            Some(AuthError::NotBearer)
        );
        assert_eq!(
            BearerToken::from_header(Some("Bearer")).err(),
            Some(AuthError::NotBearer)
        );
        assert_eq!(
            BearerToken::from_header(Some("Bearer   ")).err(),
            Some(AuthError::NotBearer)
        );
        assert!(BearerToken::from_header(Some("bearer abc")).is_ok());
    }

    #[test]
    fn short_keys_are_a_configuration_error() {
        let versions = SecretVersions {
            current: SecretString::from("short"),
            previous: None,
        };
        let err = JwtKeys::from_versions("qdn/jwt", &versions).err().unwrap();
        assert!(err.to_string().contains("qdn/jwt"), "{err}");
    }

    proptest! {
        /// Whatever arrives in the header, verification answers with a reason and
        /// never echoes the token.
        #[test]
        fn any_header_is_refused_cleanly(header in ".{0,300}") {
            let result = BearerToken::from_header(Some(&header))
                .and_then(|token| verify(&token, &keys()));
            if let Err(error) = result {
                let message = error.to_string();
                let token = header.trim();
                prop_assert!(token.len() < 8 || !message.contains(token));
            }
        }

        /// Any change to a valid token's signed parts makes it fail.
        #[test]
        fn tampering_is_detected(position in 0usize..200, byte in any::<u8>()) {
            let token = sign(Algorithm::HS256, KEY, json!({"sub": "sergio-main", "exp": now() + 600}));
            let mut bytes = token.into_bytes();
            let signed_len = bytes.iter().rposition(|b| *b == b'.').unwrap();
            let i = position % signed_len;
            prop_assume!(bytes[i] != byte && bytes[i] != b'.');
            bytes[i] = byte;
            let tampered = String::from_utf8_lossy(&bytes).into_owned();
            prop_assert!(check(&tampered).is_err());
        }
    }
}
