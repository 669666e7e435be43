//! The decoders of message-log items a reader needs whole: a claim's record (what an
//! earlier holder left) and a forwarded text's item. The relay writes these, but a
//! person investigating can edit them too: an attribute the reader cannot do without
//! is reported by name ([`ItemDamage`]); one it can do without takes its safe value.

use crate::ack::AckState;
use crate::cascade::Tier;
use crate::claim::{ExistingRecord, RecordState, StoredResponse};
use crate::conversation::Conversation;
use crate::delivery::DeliveryStatus;
use crate::fate::{Fate, MessageSummary, Unreached};
use crate::ids::{DispatcherId, MessageSid};
use crate::phone::{CountryCode, PhoneNumber};
use crate::ports::ForwardedMessage;
use crate::reference::TextRef;
use crate::stored::{
    Damage, Expected, MAX_UNIX_TIME, Stored, StoredItem, StoredType, read_text, read_whole,
};

/// The attribute of a message-log item a reader could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemDamage {
    pub attribute: &'static str,
    pub damage: Damage,
}

/// A required attribute: present, a string, and what `parse` accepts.
fn required<T>(
    item: &dyn StoredItem,
    attribute: &'static str,
    expected: Expected,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, ItemDamage> {
    let damaged = |damage| ItemDamage { attribute, damage };
    let raw = read_text(item, attribute, expected)
        .map_err(damaged)?
        .ok_or(damaged(Damage::Missing))?;
    parse(raw).ok_or(damaged(Damage::Unrecognised { expected }))
}

/// A time the reader can do without: damaged reads as absent.
fn optional_time(item: &dyn StoredItem, attribute: &'static str) -> Option<i64> {
    read_whole(item, attribute, Expected::UnixTime, 0..=MAX_UNIX_TIME)
        .ok()
        .flatten()
}

/// What an earlier holder of a claim left under its key. Without a known `state` the
/// record cannot be replayed or judged, so it is an error naming `state` (the caller
/// fails the request: nothing is sent twice on a guess).
pub fn decode_claim_record(item: &dyn StoredItem) -> Result<ExistingRecord, ItemDamage> {
    let state = required(item, "state", Expected::KnownName, RecordState::parse)?;
    let status = read_whole(item, "response_status", Expected::WholeNumber, 100..=599).map_err(
        |damage| ItemDamage {
            attribute: "response_status",
            damage,
        },
    )?;
    let body = read_text(item, "response_body", Expected::Text).map_err(|damage| ItemDamage {
        attribute: "response_body",
        damage,
    })?;
    let fingerprint = read_text(item, "request_fingerprint", Expected::Text)
        .ok()
        .flatten()
        .map(str::to_string);
    Ok(ExistingRecord {
        state,
        fingerprint,
        response: status.map(|status| StoredResponse {
            // In 100..=599.
            status: status as u16,
            body: body.unwrap_or_default().to_string(),
        }),
    })
}

/// A forwarded text's item (`record_type = forward`) under its own SID, or `None` when
/// the item is not one or has expired (DynamoDB's TTL deletes lazily). A damaged
/// `expires_at` counts as not expired: a status callback for it is still handled.
pub fn decode_forward(
    item: &dyn StoredItem,
    sid: &MessageSid,
    now: i64,
) -> Result<Option<ForwardedMessage>, ItemDamage> {
    if read_text(item, "record_type", Expected::KnownName) != Ok(Some("forward")) {
        return Ok(None);
    }
    let expires_at = optional_time(item, "expires_at");
    if expires_at.is_some_and(|at| at < now) {
        return Ok(None);
    }
    Ok(Some(ForwardedMessage {
        sid: sid.clone(),
        inbound_sid: required(item, "inbound_sid", Expected::MessageSid, |raw| {
            MessageSid::parse(raw).ok()
        })?,
        tier: required(item, "routing_decision", Expected::KnownName, Tier::parse)?,
        dispatcher_id: required(item, "dispatcher_id", Expected::DispatcherId, |raw| {
            DispatcherId::parse(raw).ok()
        })?,
        // Written as E.164, so no country is needed to read it back.
        to: required(item, "to_number", Expected::PhoneNumber, |raw| {
            PhoneNumber::parse(raw, CountryCode::NANP).ok()
        })?,
        sent_at: optional_time(item, "sent_at"),
        expires_at: expires_at.unwrap_or(i64::MAX),
        // A damaged round reads as past every repeat: never a round too many.
        round: match read_whole(
            item,
            "round",
            Expected::WholeNumber,
            0..=i64::from(u32::MAX),
        ) {
            Ok(round) => round.map_or(0, |r| r as u32),
            Err(_) => u32::MAX,
        },
    }))
}

/// A driver's text's inbound item (`record_type = inbound`), as listings and
/// redelivery read it. Without its SID, state or receive time it cannot be placed:
/// an error naming the attribute (a listing shows it as damaged). Everything else
/// takes its safe value: a damaged `fate` still counts as reached nobody (it is
/// only written then), a damaged status or tier reads as unknown.
pub fn decode_message_summary(item: &dyn StoredItem) -> Result<MessageSummary, ItemDamage> {
    let sid = required(item, "message_sid", Expected::MessageSid, |raw| {
        MessageSid::parse(raw).ok()
    })?;
    let state = required(item, "state", Expected::KnownName, RecordState::parse)?;
    let received_at = read_whole(item, "received_at", Expected::UnixTime, 0..=MAX_UNIX_TIME)
        .map_err(|damage| ItemDamage {
            attribute: "received_at",
            damage,
        })?
        .ok_or(ItemDamage {
            attribute: "received_at",
            damage: Damage::Missing,
        })?;
    let known = |attribute: &str| {
        read_text(item, attribute, Expected::KnownName)
            .ok()
            .flatten()
    };
    let present = |attribute: &str| item.attribute(attribute).is_some();
    let ack_state = known("ack_state").and_then(AckState::parse);
    let delivery_status = known("delivery_status").and_then(DeliveryStatus::parse);
    let unreached = present("unresolved_day").then(|| {
        known("fate")
            .and_then(Unreached::parse)
            .unwrap_or(Unreached::Undeliverable)
    });
    let answered = matches!(
        item.attribute("answers"),
        Some(Stored::Other(StoredType::List))
    );
    let fate = match (unreached, state) {
        (Some(unreached), _) => Fate::Unreached(unreached),
        (None, RecordState::Undelivered) => Fate::Unreached(Unreached::Undeliverable),
        (None, RecordState::OutcomeUnknown) => Fate::Unreached(Unreached::OutcomeUnknown),
        _ if answered => Fate::Answered,
        (None, RecordState::InProgress) => Fate::InProgress,
        _ => match ack_state {
            Some(AckState::Acknowledged) => Fate::Acknowledged,
            Some(AckState::Unacknowledged) => Fate::Unreached(Unreached::Unacknowledged),
            Some(AckState::Awaiting | AckState::Escalating) => Fate::AwaitingAck,
            None if delivery_status.is_some_and(DeliveryStatus::is_delivered) => Fate::Delivered,
            None => Fate::Sent,
        },
    };
    Ok(MessageSummary {
        sid,
        state,
        received_at,
        from: read_text(item, "from_number", Expected::Text)
            .ok()
            .flatten()
            .map(str::to_string),
        to: read_text(item, "to_number", Expected::Text)
            .ok()
            .flatten()
            .map(str::to_string),
        tier: known("routing_decision").and_then(Tier::parse),
        dispatcher_id: read_text(item, "dispatcher_id", Expected::DispatcherId)
            .ok()
            .flatten()
            .and_then(|raw| DispatcherId::parse(raw).ok()),
        forwarded_sid: read_text(item, "forwarded_sid", Expected::MessageSid)
            .ok()
            .flatten()
            .and_then(|raw| MessageSid::parse(raw).ok()),
        delivery_status,
        fate,
        escalated: present("escalated_at"),
        redeliveries: read_whole(item, "redeliveries", Expected::WholeNumber, 0..=1_000_000)
            .ok()
            .flatten()
            .map_or(0, |n| n as u32),
        failure: read_text(item, "failure", Expected::Text)
            .ok()
            .flatten()
            .map(str::to_string),
        expires_at: optional_time(item, "expires_at"),
    })
}

/// One conversation of a phone's item (`phone#<E.164>`): the map under `c_<REF>`, with
/// the text's `inbound_sid`, the `driver`'s E.164 number, the driver's `first_words`
/// and `sent_at`. Without any of them but the words it cannot be answered: an error
/// naming the attribute (the reader skips it, logged).
pub fn decode_conversation(
    reference: TextRef,
    entry: &dyn StoredItem,
) -> Result<Conversation, ItemDamage> {
    Ok(Conversation {
        inbound_sid: required(entry, "inbound_sid", Expected::MessageSid, |raw| {
            MessageSid::parse(raw).ok()
        })?,
        driver: required(entry, "driver", Expected::PhoneNumber, |raw| {
            PhoneNumber::parse(raw, CountryCode::NANP).ok()
        })?,
        first_words: read_text(entry, "first_words", Expected::Text)
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_string(),
        sent_at: read_whole(entry, "sent_at", Expected::UnixTime, 0..=MAX_UNIX_TIME)
            .map_err(|damage| ItemDamage {
                attribute: "sent_at",
                damage,
            })?
            .ok_or(ItemDamage {
                attribute: "sent_at",
                damage: Damage::Missing,
            })?,
        reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::StoredType;
    use crate::stored::memory::{Item, Value};

    const SID: &str = "SM0123456789abcdef0123456789abcdef";
    const INBOUND: &str = "SMfedcba9876543210fedcba9876543210";

    fn forward() -> Item {
        Item::default()
            .with("message_sid", Value::S(SID.into()))
            .with("record_type", Value::S("forward".into()))
            .with("inbound_sid", Value::S(INBOUND.into()))
            .with("routing_decision", Value::S("backup".into()))
            .with("dispatcher_id", Value::S("sergio-main".into()))
            .with("to_number", Value::S("+18583354807".into()))
            .with("sent_at", Value::N("1000".into()))
            .with("expires_at", Value::N("5000".into()))
    }

    fn sid() -> MessageSid {
        MessageSid::parse(SID).unwrap()
    }

    #[test]
    fn a_forward_item_reads_whole() {
        let read = decode_forward(&forward(), &sid(), 2000).unwrap().unwrap();
        assert_eq!(read.tier, Tier::Backup);
        assert_eq!(read.to.as_str(), "+18583354807");
        assert_eq!((read.sent_at, read.expires_at), (Some(1000), 5000));
        assert_eq!(decode_forward(&forward(), &sid(), 6000), Ok(None));
    }

    #[test]
    fn a_damaged_forward_item_names_the_attribute() {
        let bad = forward().with("routing_decision", Value::S("boss".into()));
        assert_eq!(
            decode_forward(&bad, &sid(), 2000).unwrap_err(),
            ItemDamage {
                attribute: "routing_decision",
                damage: Damage::Unrecognised {
                    expected: Expected::KnownName
                }
            }
        );
        let bad = forward().with("to_number", Value::Other(StoredType::List));
        assert_eq!(
            decode_forward(&bad, &sid(), 2000).unwrap_err().attribute,
            "to_number"
        );
        // What the reader can do without takes its safe value.
        let odd = forward()
            .with("expires_at", Value::S("tomorrow".into()))
            .with("sent_at", Value::N("1.5".into()));
        let read = decode_forward(&odd, &sid(), 2000).unwrap().unwrap();
        assert_eq!((read.sent_at, read.expires_at), (None, i64::MAX));
    }

    #[test]
    fn a_claim_record_without_a_known_state_is_named() {
        let record = Item::default()
            .with("state", Value::S("forwarded".into()))
            .with("response_status", Value::N("202".into()))
            .with("response_body", Value::S("{}".into()));
        let read = decode_claim_record(&record).unwrap();
        assert_eq!(read.state, RecordState::Forwarded);
        assert_eq!(read.response.unwrap().status, 202);
        let bad = record.clone().with("state", Value::Bool(true));
        assert_eq!(decode_claim_record(&bad).unwrap_err().attribute, "state");
        let bad = record.with("response_status", Value::N("42".into()));
        assert_eq!(
            decode_claim_record(&bad).unwrap_err().damage.kind(),
            "out_of_range"
        );
    }

    #[test]
    fn a_conversation_reads_whole_or_names_what_it_lacks() {
        let entry = Item::default()
            .with("inbound_sid", Value::S(INBOUND.into()))
            .with("driver", Value::S("+16195550123".into()))
            .with("first_words", Value::S("Load ready".into()))
            .with("sent_at", Value::N("1000".into()));
        let reference = TextRef::parse("K7Q").unwrap();
        let read = decode_conversation(reference.clone(), &entry).unwrap();
        assert_eq!(read.driver.as_str(), "+16195550123");
        assert_eq!(
            (read.sent_at, read.first_words.as_str()),
            (1000, "Load ready")
        );
        let no_time = entry.clone().with("sent_at", Value::S("yesterday".into()));
        assert_eq!(
            decode_conversation(reference.clone(), &no_time)
                .unwrap_err()
                .attribute,
            "sent_at"
        );
        let no_driver = entry.with("driver", Value::N("12".into()));
        assert_eq!(
            decode_conversation(reference, &no_driver)
                .unwrap_err()
                .attribute,
            "driver"
        );
    }

    fn inbound() -> Item {
        Item::default()
            .with("message_sid", Value::S(INBOUND.into()))
            .with("record_type", Value::S("inbound".into()))
            .with("state", Value::S("forwarded".into()))
            .with("received_at", Value::N("1000".into()))
            .with("from_number", Value::S("+16195550123".into()))
            .with("routing_decision", Value::S("backup".into()))
            .with("dispatcher_id", Value::S("sergio-main".into()))
            .with("forwarded_sid", Value::S(SID.into()))
            .with("delivery_status", Value::S("delivered".into()))
            .with("expires_at", Value::N("5000".into()))
    }

    #[test]
    fn an_inbound_item_reads_as_its_fate() {
        let read = decode_message_summary(&inbound()).unwrap();
        assert_eq!(read.fate, Fate::Delivered);
        assert_eq!(read.tier, Some(Tier::Backup));
        assert_eq!(read.received_at, 1000);
        let awaiting = inbound().with("ack_state", Value::S("awaiting".into()));
        assert_eq!(
            decode_message_summary(&awaiting).unwrap().fate,
            Fate::AwaitingAck
        );
        let acked = inbound().with("ack_state", Value::S("acknowledged".into()));
        assert_eq!(
            decode_message_summary(&acked).unwrap().fate,
            Fate::Acknowledged
        );
        let answered = acked.with("answers", Value::Other(StoredType::List));
        assert_eq!(
            decode_message_summary(&answered).unwrap().fate,
            Fate::Answered
        );
        let escalated = inbound()
            .with("ack_state", Value::S("unacknowledged".into()))
            .with("escalated_at", Value::N("1030".into()));
        let read = decode_message_summary(&escalated).unwrap();
        assert_eq!(read.fate, Fate::Unreached(Unreached::Unacknowledged));
        assert!(read.escalated);
    }

    #[test]
    fn the_unresolved_mark_decides_and_a_damaged_fate_still_reached_nobody() {
        let marked = inbound()
            .with("unresolved_day", Value::S("2026-12-02".into()))
            .with("fate", Value::S("outcome_unknown".into()));
        assert_eq!(
            decode_message_summary(&marked).unwrap().fate,
            Fate::Unreached(Unreached::OutcomeUnknown)
        );
        let damaged = marked.with("fate", Value::N("7".into()));
        assert_eq!(
            decode_message_summary(&damaged).unwrap().fate,
            Fate::Unreached(Unreached::Undeliverable)
        );
        let given_back = inbound().with("state", Value::S("undelivered".into()));
        assert_eq!(
            decode_message_summary(&given_back).unwrap().fate,
            Fate::Unreached(Unreached::Undeliverable)
        );
    }

    #[test]
    fn an_inbound_item_without_its_place_names_the_attribute() {
        let mut item = inbound();
        item.0.remove("received_at");
        assert_eq!(
            decode_message_summary(&item).unwrap_err(),
            ItemDamage {
                attribute: "received_at",
                damage: Damage::Missing
            }
        );
        let item = inbound().with("state", Value::S("lost".into()));
        assert_eq!(
            decode_message_summary(&item).unwrap_err().attribute,
            "state"
        );
        // What a listing can do without takes its safe value.
        let item = inbound()
            .with("routing_decision", Value::Bool(true))
            .with("redeliveries", Value::S("many".into()))
            .with("delivery_status", Value::N("3".into()));
        let read = decode_message_summary(&item).unwrap();
        assert_eq!(
            (read.tier, read.redeliveries, read.delivery_status),
            (None, 0, None)
        );
    }

    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            ".{0,12}".prop_map(Value::S),
            "-?[0-9]{0,25}(\\.[0-9]{0,3})?".prop_map(Value::N),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Other(StoredType::List)),
            Just(Value::Other(StoredType::Map)),
            Just(Value::Other(StoredType::Null)),
        ]
    }

    proptest::proptest! {
        /// People edit these items: any attribute of any type decodes or names the
        /// attribute at fault, and never panics.
        #[test]
        fn any_inbound_item_decodes_or_names_an_attribute(
            changes in proptest::collection::vec((0usize..14, any_value()), 0..8)
        ) {
            const NAMES: [&str; 14] = [
                "message_sid", "state", "received_at", "from_number", "routing_decision",
                "dispatcher_id", "forwarded_sid", "delivery_status", "ack_state", "answers",
                "unresolved_day", "fate", "redeliveries", "expires_at",
            ];
            let mut item = inbound();
            for (name, value) in changes {
                item = item.with(NAMES[name], value);
            }
            match decode_message_summary(&item) {
                Ok(read) => proptest::prop_assert!(read.received_at >= 0),
                Err(damage) => proptest::prop_assert!(
                    ["message_sid", "state", "received_at"].contains(&damage.attribute)
                ),
            }
        }
    }
}
