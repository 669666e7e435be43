//! JSON Web Tokens for the end-to-end tests, built by hand (base64url, JSON, HMAC-SHA2)
//! so that the tests never make their tokens with the function's own JWT code. Besides
//! honest HS256/384/512 tokens there are forgeries: `alg: none`, an RS256 header over an
//! HMAC signature (algorithm confusion), and raw assembly of any header and signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

/// The HMAC-SHA2 variants of RFC 7518 (`HS256`, `HS384`, `HS512`), by digest size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HmacBits {
    Sha256,
    Sha384,
    Sha512,
}

impl HmacBits {
    /// The MAC of `data` under `key`.
    pub fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Sha256 => run::<Hmac<Sha256>>(key, data),
            Self::Sha384 => run::<Hmac<Sha384>>(key, data),
            Self::Sha512 => run::<Hmac<Sha512>>(key, data),
        }
    }
}

/// An HS256 token: header `{"alg":"HS256","typ":"JWT"}`.
pub fn hs256(key: &[u8], claims: &Value) -> String {
    hmac_token("HS256", HmacBits::Sha256, key, claims)
}

/// An HS384 token: header `{"alg":"HS384","typ":"JWT"}`.
pub fn hs384(key: &[u8], claims: &Value) -> String {
    hmac_token("HS384", HmacBits::Sha384, key, claims)
}

/// An HS512 token: header `{"alg":"HS512","typ":"JWT"}`.
pub fn hs512(key: &[u8], claims: &Value) -> String {
    hmac_token("HS512", HmacBits::Sha512, key, claims)
}

/// A token whose header says RS256 but which is HMAC-SHA256 signed with `key`: the
/// algorithm-confusion forgery (a verifier that lets the token pick the algorithm would
/// check it with the RSA public key's bytes as the HMAC secret).
pub fn rs256_header_hmac_signed(key: &[u8], claims: &Value) -> String {
    hmac_token("RS256", HmacBits::Sha256, key, claims)
}

/// An unsigned token: header `{"alg":"none","typ":"JWT"}` and an empty signature part,
/// so the token ends with a dot.
pub fn alg_none(claims: &Value) -> String {
    with_header(&json!({"alg": "none", "typ": "JWT"}), claims, b"")
}

/// Raw assembly, `b64(header).b64(claims).b64(signature)`, for forged tokens.
pub fn with_header(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}",
        signing_input(&header.to_string(), &claims.to_string()),
        B64URL.encode(signature)
    )
}

/// A token signed over the exact JSON texts given (key order and spacing kept as is).
pub fn sign_parts(bits: HmacBits, header_json: &str, payload_json: &str, key: &[u8]) -> String {
    let input = signing_input(header_json, payload_json);
    let signature = bits.mac(key, input.as_bytes());
    format!("{input}.{}", B64URL.encode(signature))
}

/// Claims `{"sub": sub, "exp": exp, "iat": now}`.
pub fn claims(sub: &str, exp: i64) -> Value {
    json!({"sub": sub, "exp": exp, "iat": unix_now()})
}

/// Now, in seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn hmac_token(alg: &str, bits: HmacBits, key: &[u8], claims: &Value) -> String {
    let header = json!({"alg": alg, "typ": "JWT"});
    sign_parts(bits, &header.to_string(), &claims.to_string(), key)
}

fn signing_input(header_json: &str, payload_json: &str) -> String {
    format!(
        "{}.{}",
        B64URL.encode(header_json),
        B64URL.encode(payload_json)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    fn decoded_json(part: &str) -> Value {
        serde_json::from_slice(&B64URL.decode(part).unwrap()).unwrap()
    }

    /// The example on jwt.io.
    #[test]
    fn hs256_matches_jwt_io_example() {
        let token = sign_parts(
            HmacBits::Sha256,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"sub":"1234567890","name":"John Doe","iat":1516239022}"#,
            b"your-256-bit-secret",
        );
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9\
             .eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ\
             .SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
    }

    /// RFC 4231 test case 2 (key "Jefe"), for the three digest sizes.
    #[test]
    fn hmac_matches_rfc_4231() {
        let hex = |bytes: Vec<u8>| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let data = b"what do ya want for nothing?";
        assert_eq!(
            hex(HmacBits::Sha256.mac(b"Jefe", data)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(HmacBits::Sha384.mac(b"Jefe", data)),
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47\
             e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"
        );
        assert_eq!(
            hex(HmacBits::Sha512.mac(b"Jefe", data)),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn headers_and_signature_lengths() {
        let claims = json!({"sub": "ops"});
        for (token, alg, sig_len) in [
            (hs256(b"k", &claims), "HS256", 32),
            (hs384(b"k", &claims), "HS384", 48),
            (hs512(b"k", &claims), "HS512", 64),
            (rs256_header_hmac_signed(b"k", &claims), "RS256", 32),
        ] {
            let p = parts(&token);
            assert_eq!(p.len(), 3, "{token}");
            assert_eq!(decoded_json(&p[0]), json!({"alg": alg, "typ": "JWT"}));
            assert_eq!(decoded_json(&p[1]), claims);
            assert_eq!(B64URL.decode(&p[2]).unwrap().len(), sig_len, "{alg}");
        }
    }

    /// Every HMAC token's signature is the MAC of its own first two parts.
    #[test]
    fn signatures_cover_header_and_payload() {
        let claims = json!({"sub": "ops"});
        for (token, bits) in [
            (hs256(b"k", &claims), HmacBits::Sha256),
            (hs384(b"k", &claims), HmacBits::Sha384),
            (hs512(b"k", &claims), HmacBits::Sha512),
            (rs256_header_hmac_signed(b"k", &claims), HmacBits::Sha256),
        ] {
            let (input, signature) = token.rsplit_once('.').unwrap();
            assert_eq!(
                B64URL.decode(signature).unwrap(),
                bits.mac(b"k", input.as_bytes())
            );
        }
    }

    #[test]
    fn alg_none_has_an_empty_signature() {
        let token = alg_none(&json!({"sub": "ops"}));
        assert!(token.ends_with('.'), "{token}");
        let p = parts(&token);
        assert_eq!(p.len(), 3);
        assert_eq!(decoded_json(&p[0]), json!({"alg": "none", "typ": "JWT"}));
        assert!(p[2].is_empty());
    }

    #[test]
    fn claims_carry_sub_exp_and_now() {
        let before = unix_now();
        let c = claims("dispatch", before + 300);
        assert_eq!(c["sub"], "dispatch");
        assert_eq!(c["exp"], before + 300);
        let iat = c["iat"].as_i64().unwrap();
        assert!((before..=before + 5).contains(&iat), "{iat}");
    }
}
