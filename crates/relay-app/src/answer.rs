//! The one shape of every refusal's JSON body, which the outbound service also stores
//! for replays under an `Idempotency-Key`.

use serde_json::{Value, json};

/// Every refusal's body: `{"error": code, "message": text, "field": name-or-null}`,
/// plus any `extra` fields (Twilio's code and message on a `422`).
pub fn error_body(code: &str, message: &str, field: Option<&str>, extra: Option<Value>) -> Value {
    let mut body = json!({ "error": code, "message": message, "field": field });
    if let (Some(Value::Object(extra)), Value::Object(fields)) = (extra, &mut body) {
        fields.extend(extra);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_have_one_shape() {
        let plain = error_body("missing_field", "to is missing", Some("to"), None);
        assert_eq!(
            plain,
            json!({"error": "missing_field", "message": "to is missing", "field": "to"})
        );
        let twilio = error_body(
            "twilio_rejected",
            "m",
            None,
            Some(json!({"twilio_code": 21211})),
        );
        assert_eq!(twilio["twilio_code"], 21211);
        assert_eq!(twilio["field"], Value::Null);
    }
}
