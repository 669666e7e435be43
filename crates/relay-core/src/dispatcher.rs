//! The dispatcher state item (the original schema plus `phone` and `on_duty`),
//! and its one decoder.
//!
//! People edit these items by hand, so the decoder reads each attribute on its own:
//! only `dispatcher_id` is needed; any other attribute that is missing, of the wrong
//! type or impossible is read as its safe value and recorded as an
//! [`AttributeProblem`]. A damaged attribute never hides the item, so a typo on the
//! primary's item never stops drivers' texts.

use std::fmt;

use crate::ids::DispatcherId;
use crate::stored::{
    Damage, Expected, MAX_TTL_SECS, MAX_UNIX_TIME, Named, StoredItem, read_bool, read_phone,
    read_text, read_whole,
};

/// How long message-log entries live when the item does not say (one day).
pub const DEFAULT_MESSAGE_LOG_TTL_SECS: u64 = 86_400;

/// The attributes of a dispatcher item; their names are the table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DispatcherAttribute {
    DispatcherId,
    Phone,
    Available,
    LastHeartbeat,
    BackupDispatcher,
    TertiaryContact,
    MessageLogTtl,
    OnDuty,
}

impl DispatcherAttribute {
    pub const fn as_str(self) -> &'static str {
        match self {
            DispatcherAttribute::DispatcherId => "dispatcher_id",
            DispatcherAttribute::Phone => "phone",
            DispatcherAttribute::Available => "available",
            DispatcherAttribute::LastHeartbeat => "last_heartbeat",
            DispatcherAttribute::BackupDispatcher => "backup_dispatcher",
            DispatcherAttribute::TertiaryContact => "tertiary_contact",
            DispatcherAttribute::MessageLogTtl => "message_log_ttl",
            DispatcherAttribute::OnDuty => "on_duty",
        }
    }
}

impl fmt::Display for DispatcherAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attribute of one item and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttributeProblem {
    pub attribute: DispatcherAttribute,
    pub damage: Damage,
}

impl fmt::Display for AttributeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Named(self.attribute.as_str(), &self.damage).fmt(f)
    }
}

/// A boolean attribute as stored: the write conditions need to tell these apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Absent,
    Set(bool),
    /// Present, and not a boolean.
    Damaged,
}

/// One item of `STATE_TABLE`, with every damaged attribute at its safe value. Numbers
/// stay as typed; they are normalised on use so a bad one is reported where it matters
/// (as a skipped tier) instead of hiding the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherRecord {
    pub dispatcher_id: DispatcherId,
    pub phone: Option<String>,
    /// Only `Set(true)` is available: a dispatcher is never assumed to be there.
    pub available: Flag,
    /// `None` when absent or damaged: no fresh heartbeat.
    pub last_heartbeat: Option<i64>,
    pub backup_dispatcher: Option<String>,
    pub tertiary_contact: Option<String>,
    /// Only a sane lifetime; otherwise the default applies.
    pub message_log_ttl: Option<u64>,
    /// The dispatcher's own switch; absent means on duty, damaged means not available.
    pub on_duty: Flag,
    /// What the decoder found wrong, attribute by attribute.
    pub problems: Vec<AttributeProblem>,
}

impl DispatcherRecord {
    /// An item with only its key: not available, no heartbeat, no numbers.
    pub fn new(dispatcher_id: DispatcherId) -> Self {
        DispatcherRecord {
            dispatcher_id,
            phone: None,
            available: Flag::Absent,
            last_heartbeat: None,
            backup_dispatcher: None,
            tertiary_contact: None,
            message_log_ttl: None,
            on_duty: Flag::Absent,
            problems: Vec::new(),
        }
    }

    pub fn is_on_duty(&self) -> bool {
        matches!(self.on_duty, Flag::Absent | Flag::Set(true))
    }

    /// `available` is stored as `true`.
    pub fn is_marked_available(&self) -> bool {
        self.available == Flag::Set(true)
    }

    pub fn message_log_ttl_secs(&self) -> u64 {
        self.message_log_ttl.unwrap_or(DEFAULT_MESSAGE_LOG_TTL_SECS)
    }

    /// What is wrong with `attribute`, if the decoder found it damaged.
    pub fn damage(&self, attribute: DispatcherAttribute) -> Option<&Damage> {
        self.problems
            .iter()
            .find(|p| p.attribute == attribute)
            .map(|p| &p.damage)
    }
}

/// An item whose key is unusable: the only damage that hides an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnreadableDispatcher {
    /// The key as stored, safe to show (a key that looks like a phone number is
    /// masked), or `None` when it is not a string.
    pub key: Option<String>,
    pub damage: Damage,
}

/// Reads a dispatcher item. Pure and total: any attribute values give a record or,
/// for an unusable `dispatcher_id`, an [`UnreadableDispatcher`]; never a panic.
pub fn decode_dispatcher(item: &dyn StoredItem) -> Result<DispatcherRecord, UnreadableDispatcher> {
    let id_name = DispatcherAttribute::DispatcherId.as_str();
    let dispatcher_id = match read_text(item, id_name, Expected::DispatcherId) {
        Ok(Some(raw)) => DispatcherId::parse(raw).map_err(|_| UnreadableDispatcher {
            key: Some(shown_key(raw)),
            damage: Damage::Unrecognised {
                expected: Expected::DispatcherId,
            },
        })?,
        Ok(None) => {
            return Err(UnreadableDispatcher {
                key: None,
                damage: Damage::Missing,
            });
        }
        Err(damage) => return Err(UnreadableDispatcher { key: None, damage }),
    };
    let mut record = DispatcherRecord::new(dispatcher_id);
    let mut problems = Vec::new();
    let mut note = |attribute: DispatcherAttribute, damage: Damage| {
        problems.push(AttributeProblem { attribute, damage });
    };

    let mut phone = |attribute: DispatcherAttribute| -> Option<String> {
        match read_phone(item, attribute.as_str()) {
            Ok(Some((raw, damage))) => {
                if let Some(damage) = damage {
                    note(attribute, damage);
                }
                Some(raw.trim().to_string())
            }
            Ok(None) => None,
            Err(damage) => {
                note(attribute, damage);
                None
            }
        }
    };
    record.phone = phone(DispatcherAttribute::Phone);
    record.backup_dispatcher = phone(DispatcherAttribute::BackupDispatcher);
    record.tertiary_contact = phone(DispatcherAttribute::TertiaryContact);

    let mut flag = |attribute: DispatcherAttribute| match read_bool(item, attribute.as_str()) {
        Ok(Some(value)) => Flag::Set(value),
        Ok(None) => Flag::Absent,
        Err(damage) => {
            note(attribute, damage);
            Flag::Damaged
        }
    };
    record.available = flag(DispatcherAttribute::Available);
    record.on_duty = flag(DispatcherAttribute::OnDuty);

    let attribute = DispatcherAttribute::LastHeartbeat;
    match read_whole(
        item,
        attribute.as_str(),
        Expected::UnixTime,
        0..=MAX_UNIX_TIME,
    ) {
        Ok(at) => record.last_heartbeat = at,
        Err(damage) => note(attribute, damage),
    }
    let attribute = DispatcherAttribute::MessageLogTtl;
    match read_whole(
        item,
        attribute.as_str(),
        Expected::TtlSeconds,
        1..=MAX_TTL_SECS,
    ) {
        // In range, so positive.
        Ok(ttl) => record.message_log_ttl = ttl.map(|ttl| ttl.unsigned_abs()),
        Err(damage) => note(attribute, damage),
    }
    record.problems = problems;
    Ok(record)
}

/// A stored key as it may be shown: anything with seven digits or more may be a
/// phone number typed in the wrong place, and is masked.
pub fn shown_key(raw: &str) -> String {
    let digits = raw.chars().filter(char::is_ascii_digit).count();
    let shown: String = raw.chars().take(64).collect();
    if digits >= 7 {
        crate::phone::mask(&shown)
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::StoredType;
    use crate::stored::memory::{Item, Value};

    fn seed() -> Item {
        Item::default()
            .with("dispatcher_id", Value::S("sergio-main".into()))
            .with("phone", Value::S("+18585550100".into()))
            .with("available", Value::Bool(true))
            .with("last_heartbeat", Value::N("1712345678".into()))
            .with("backup_dispatcher", Value::S("858-335-4807".into()))
            .with("tertiary_contact", Value::S("+1-619-555-0199".into()))
            .with("message_log_ttl", Value::N("86400".into()))
            .with("on_duty", Value::Bool(true))
    }

    fn problem_of(record: &DispatcherRecord) -> Vec<(&'static str, &'static str)> {
        record
            .problems
            .iter()
            .map(|p| (p.attribute.as_str(), p.damage.kind()))
            .collect()
    }

    #[test]
    fn the_seed_item_reads_whole_without_problems() {
        let record = decode_dispatcher(&seed()).unwrap();
        assert_eq!(record.dispatcher_id.as_str(), "sergio-main");
        assert_eq!(record.phone.as_deref(), Some("+18585550100"));
        assert_eq!(record.available, Flag::Set(true));
        assert_eq!(record.last_heartbeat, Some(1_712_345_678));
        assert_eq!(record.backup_dispatcher.as_deref(), Some("858-335-4807"));
        assert_eq!(record.tertiary_contact.as_deref(), Some("+1-619-555-0199"));
        assert_eq!(record.message_log_ttl, Some(86_400));
        assert_eq!(record.on_duty, Flag::Set(true));
        assert!(record.problems.is_empty(), "{:?}", record.problems);
    }

    #[test]
    fn only_the_key_is_needed() {
        let item = Item::default().with("dispatcher_id", Value::S("maria".into()));
        let record = decode_dispatcher(&item).unwrap();
        assert_eq!(record, DispatcherRecord::new(record.dispatcher_id.clone()));
        assert!(record.is_on_duty() && !record.is_marked_available());
        assert_eq!(record.message_log_ttl_secs(), DEFAULT_MESSAGE_LOG_TTL_SECS);
    }

    #[test]
    fn each_damaged_attribute_reads_as_its_safe_value_and_is_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("message_log_ttl", Value::N("-5".into()), "out_of_range"),
            ("message_log_ttl", Value::S("one day".into()), "wrong_type"),
            ("message_log_ttl", Value::N("1e12".into()), "out_of_range"),
            ("message_log_ttl", Value::N("0".into()), "out_of_range"),
            (
                "last_heartbeat",
                Value::S("1712345678".into()),
                "wrong_type",
            ),
            (
                "last_heartbeat",
                Value::N("1712345678.5".into()),
                "not_whole",
            ),
            (
                "last_heartbeat",
                Value::N("1712345678000".into()),
                "out_of_range",
            ),
            ("available", Value::S("true".into()), "wrong_type"),
            ("on_duty", Value::S("yes".into()), "wrong_type"),
            ("phone", Value::Other(StoredType::List), "wrong_type"),
            (
                "backup_dispatcher",
                Value::N("8583354807".into()),
                "stored_as_number",
            ),
        ];
        for (attribute, value, kind) in cases {
            let record = decode_dispatcher(&seed().with(attribute, value.clone())).unwrap();
            assert_eq!(
                problem_of(&record),
                vec![(attribute, kind)],
                "{attribute} = {value:?}"
            );
            match attribute {
                "message_log_ttl" => {
                    assert_eq!(record.message_log_ttl_secs(), DEFAULT_MESSAGE_LOG_TTL_SECS)
                }
                "last_heartbeat" => assert_eq!(record.last_heartbeat, None),
                "available" => assert_eq!(record.available, Flag::Damaged),
                "on_duty" => assert!(!record.is_on_duty()),
                "phone" => assert_eq!(record.phone, None),
                "backup_dispatcher" => {
                    assert_eq!(record.backup_dispatcher.as_deref(), Some("8583354807"))
                }
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn unknown_attributes_are_ignored() {
        let item = seed()
            .with("notes", Value::S("call after 6".into()))
            .with("Phone", Value::Other(StoredType::Map));
        assert!(decode_dispatcher(&item).unwrap().problems.is_empty());
    }

    #[test]
    fn an_unusable_key_is_the_only_fatal_damage() {
        let bad = Item::default().with("dispatcher_id", Value::S("sergio main!".into()));
        assert_eq!(
            decode_dispatcher(&bad).unwrap_err(),
            UnreadableDispatcher {
                key: Some("sergio main!".into()),
                damage: Damage::Unrecognised {
                    expected: Expected::DispatcherId
                },
            }
        );
        let phone_like = Item::default().with("dispatcher_id", Value::S("+1 858 555 0100".into()));
        assert_eq!(
            decode_dispatcher(&phone_like).unwrap_err().key.as_deref(),
            Some("***0100")
        );
        let missing = decode_dispatcher(&Item::default()).unwrap_err();
        assert_eq!(missing.damage, Damage::Missing);
    }
}
