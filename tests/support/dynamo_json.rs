//! Plain JSON to DynamoDB attribute values and back, so tests write items as
//! `json!({"dispatcher_id": "sergio-main", "available": true})` and read them the same way.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

/// A JSON object as a DynamoDB item. Panics if `item` is not an object.
pub fn to_item(item: &Value) -> HashMap<String, AttributeValue> {
    let Value::Object(fields) = item else {
        panic!("a DynamoDB item must be a JSON object, got {item}");
    };
    fields
        .iter()
        .map(|(k, v)| (k.clone(), to_attribute(v)))
        .collect()
}

/// One JSON value as an attribute: string S, number N, bool BOOL, null NULL,
/// array L, object M.
pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Null => AttributeValue::Null(true),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attribute).collect()),
        Value::Object(_) => AttributeValue::M(to_item(value)),
    }
}

/// A DynamoDB item as a JSON object.
pub fn from_item(item: &HashMap<String, AttributeValue>) -> Value {
    let fields: Map<String, Value> = item
        .iter()
        .map(|(k, v)| (k.clone(), from_attribute(v)))
        .collect();
    Value::Object(fields)
}

/// One attribute as JSON; sets become arrays, binary becomes its bytes as an array.
pub fn from_attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(items.iter().map(from_attribute).collect()),
        AttributeValue::M(fields) => from_item(fields),
        AttributeValue::Ss(items) => items.iter().cloned().map(Value::String).collect(),
        AttributeValue::Ns(items) => items.iter().map(|n| number(n)).collect(),
        AttributeValue::B(bytes) => bytes.as_ref().iter().copied().collect(),
        other => Value::String(format!("{other:?}")),
    }
}

fn number(n: &str) -> Value {
    if let Ok(i) = n.parse::<i64>() {
        return Value::from(i);
    }
    n.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(n.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_a_flat_item() {
        let item = json!({"id": "a", "n": 5, "f": 1.5, "b": true, "z": null, "l": [1, "x"]});
        assert_eq!(from_item(&to_item(&item)), item);
    }
}
