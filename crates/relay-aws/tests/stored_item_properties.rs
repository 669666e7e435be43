//! Properties of reading stored dispatcher items as people may have left them: any
//! DynamoDB attribute values, through the adapter's reading of them and the domain's
//! one decoder.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use relay_aws::dynamo::DynamoItem;
use relay_core::ids::DispatcherId;

/// Anything, or something that looks like a phone number.
fn phone_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\s{0,2}(\\+|00)?[0-9 ().\\-/\u{a0}]{0,24}\\s{0,2}",
        "\\+?[0-9]{6,17}",
    ]
}

fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(SM|MM|AC|MG|sm|XX)[0-9a-fA-Fg]{30,34}",
        "[A-Za-z0-9._ -]{0,70}",
    ]
}

// ---------------------------------------------------------------------------------
// Stored dispatcher items, as a person may have left them

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use relay_core::dispatcher::{DispatcherAttribute, Flag, decode_dispatcher};
use relay_core::stored::{MAX_TTL_SECS, whole_number};

const DISPATCHER_ATTRIBUTES: [&str; 8] = [
    "dispatcher_id",
    "phone",
    "available",
    "last_heartbeat",
    "backup_dispatcher",
    "tertiary_contact",
    "message_log_ttl",
    "on_duty",
];

/// A number as DynamoDB or a person may write it: integers, fractions, exponents,
/// signs, and strings that are no number at all.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "-?[0-9]{1,40}(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?",
        any::<String>(),
    ]
}

/// Any DynamoDB attribute value, nested a little.
fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        any::<String>().prop_map(AttributeValue::S),
        phone_like().prop_map(AttributeValue::S),
        number_text().prop_map(AttributeValue::N),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null(true)),
        vec(any::<u8>(), 0..8).prop_map(|b| AttributeValue::B(Blob::new(b))),
        vec(any::<String>(), 0..3).prop_map(AttributeValue::Ss),
        vec(number_text(), 0..3).prop_map(AttributeValue::Ns),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(AttributeValue::L),
            vec(("[a-z_]{1,12}", inner), 0..3)
                .prop_map(|fields| AttributeValue::M(fields.into_iter().collect())),
        ]
    })
}

/// An item with a usable key and any values (or none) under the known attributes
/// and a few unknown ones.
fn damaged_item() -> impl Strategy<Value = HashMap<String, AttributeValue>> {
    (
        id_like().prop_filter("a usable key", |id| DispatcherId::parse(id).is_ok()),
        vec(
            (
                prop_oneof![
                    select(&DISPATCHER_ATTRIBUTES[1..]).prop_map(str::to_string),
                    "[a-zA-Z_]{1,16}",
                ],
                attribute_value(),
            ),
            0..10,
        ),
    )
        .prop_map(|(id, fields)| {
            let mut item: HashMap<String, AttributeValue> = fields.into_iter().collect();
            item.insert("dispatcher_id".into(), AttributeValue::S(id));
            item
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Only `dispatcher_id` can make an item unusable; every other attribute is read
    /// as its value or its safe value, with one problem per damaged attribute.
    #[test]
    fn dispatcher_decoding_is_total_and_only_the_key_is_fatal(item in damaged_item()) {
        let record = decode_dispatcher(&DynamoItem(&item)).expect("a usable key is enough");
        prop_assert_eq!(
            Some(record.dispatcher_id.as_str()),
            item["dispatcher_id"].as_s().ok().map(String::as_str)
        );
        let mut named: Vec<DispatcherAttribute> =
            record.problems.iter().map(|p| p.attribute).collect();
        named.dedup();
        prop_assert_eq!(named.len(), record.problems.len(), "one problem per attribute");
        for problem in &record.problems {
            prop_assert!(item.contains_key(problem.attribute.as_str()));
            prop_assert!(problem.attribute != DispatcherAttribute::DispatcherId);
        }
        // The safe values.
        match item.get("available") {
            Some(AttributeValue::Bool(b)) => prop_assert_eq!(record.available, Flag::Set(*b)),
            None | Some(AttributeValue::Null(_)) => prop_assert_eq!(record.available, Flag::Absent),
            Some(_) => prop_assert_eq!(record.available, Flag::Damaged),
        }
        if !matches!(item.get("on_duty"), None | Some(AttributeValue::Bool(true)) | Some(AttributeValue::Null(_))) {
            prop_assert!(!record.is_on_duty());
        }
        let ttl = record.message_log_ttl_secs();
        prop_assert!(ttl >= 1 && ttl <= MAX_TTL_SECS as u64);
        if let Some(at) = record.last_heartbeat {
            prop_assert_eq!(
                item.get("last_heartbeat").and_then(|v| v.as_n().ok()).map(|n| whole_number(n)),
                Some(Ok(at))
            );
        }
        // A phone stored as a number is read as its digits, and is still a problem.
        if let Some(AttributeValue::N(digits)) = item.get("phone") {
            prop_assert_eq!(record.phone.as_deref(), Some(digits.trim()));
            prop_assert!(record.damage(DispatcherAttribute::Phone).is_some());
        }
        // Problems never carry a phone number: they are logged and alerted.
        for problem in &record.problems {
            let text = problem.to_string();
            for name in ["phone", "backup_dispatcher", "tertiary_contact"] {
                if let Some(AttributeValue::S(raw) | AttributeValue::N(raw)) = item.get(name) {
                    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
                    prop_assert!(digits.len() < 5 || !text.contains(&digits), "{}", text);
                }
            }
        }
    }

    /// Any value under `dispatcher_id`: a record or an unreadable item, never a panic,
    /// and an unreadable item's key is shown masked when it may be a phone number.
    #[test]
    fn any_key_decodes_or_is_unreadable(
        key in prop::option::of(attribute_value()),
        mut item in damaged_item(),
    ) {
        match key {
            Some(value) => item.insert("dispatcher_id".into(), value),
            None => item.remove("dispatcher_id"),
        };
        match decode_dispatcher(&DynamoItem(&item)) {
            Ok(record) => prop_assert_eq!(
                Some(record.dispatcher_id.as_str()),
                item.get("dispatcher_id").and_then(|v| v.as_s().ok()).map(String::as_str)
            ),
            Err(unreadable) => {
                if let Some(shown) = unreadable.key {
                    let digits = shown.chars().filter(char::is_ascii_digit).count();
                    prop_assert!(digits < 7, "{}", shown);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// A phone's conversations (`c_<REF>` maps), as a person may have edited them

use relay_core::message_items::decode_conversation;
use relay_core::reference::TextRef;

const CONVERSATION_ATTRIBUTES: [&str; 4] = ["inbound_sid", "driver", "first_words", "sent_at"];

fn conversation_entry() -> impl Strategy<Value = HashMap<String, AttributeValue>> {
    let value = prop_oneof![
        attribute_value(),
        id_like().prop_map(AttributeValue::S),
        phone_like().prop_map(AttributeValue::S),
        number_text().prop_map(AttributeValue::N),
    ];
    vec((select(CONVERSATION_ATTRIBUTES.to_vec()), value), 0..6)
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

proptest! {
    /// Any map reads as a conversation that holds what was stored, or as the name of
    /// the one attribute it cannot do without; never a panic.
    #[test]
    fn conversation_decoding_is_total_and_names_what_it_lacks(entry in conversation_entry()) {
        let reference = TextRef::parse("K7Q").unwrap();
        match decode_conversation(reference.clone(), &DynamoItem(&entry)) {
            Ok(conversation) => {
                prop_assert_eq!(conversation.reference, reference);
                prop_assert_eq!(
                    entry.get("inbound_sid").and_then(|v| v.as_s().ok()).map(String::as_str),
                    Some(conversation.inbound_sid.as_str())
                );
                prop_assert!(conversation.driver.as_str().starts_with('+'));
                prop_assert!(conversation.sent_at >= 0);
            }
            Err(damage) => {
                prop_assert!(["inbound_sid", "driver", "sent_at"].contains(&damage.attribute));
            }
        }
    }
}
