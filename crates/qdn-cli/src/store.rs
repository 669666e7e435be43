//! What only the operator does to the tables: `qdn dispatchers put` (writes only the
//! given fields), `qdn rota set` over a rota item that cannot be read, and `qdn trail`
//! (a message's items, read loosely for display).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use relay_aws::dynamo::{DynamoItem, condition_held, unavailable};
use relay_core::claim::RecordState;
use relay_core::dispatcher::DispatcherAttribute;
use relay_core::fate::{MessageSummary, day_buckets};
use relay_core::ids::DispatcherId;
use relay_core::message_items::{ItemDamage, decode_message_summary};
use relay_core::ports::StoreError;
use relay_core::rota::{ROTA_ATTRIBUTE, ROTA_KEY, UPDATED_AT_ATTRIBUTE};

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The fields `qdn dispatchers put` writes to a dispatcher item; `None` leaves a field
/// as it is. Numbers are checked by the caller (they must normalise) before they get
/// here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatcherPatch {
    pub phone: Option<String>,
    pub backup_dispatcher: Option<String>,
    pub tertiary_contact: Option<String>,
    pub message_log_ttl: Option<u64>,
    pub on_duty: Option<bool>,
}

impl DispatcherPatch {
    /// True when the patch would write nothing.
    pub fn is_empty(&self) -> bool {
        self == &DispatcherPatch::default()
    }

    /// The fields the patch writes, by attribute, in the item's order.
    pub fn fields(&self) -> Vec<(DispatcherAttribute, Field)> {
        let text = |value: &Option<String>| value.clone().map(Field::Text);
        [
            (DispatcherAttribute::Phone, text(&self.phone)),
            (
                DispatcherAttribute::BackupDispatcher,
                text(&self.backup_dispatcher),
            ),
            (
                DispatcherAttribute::TertiaryContact,
                text(&self.tertiary_contact),
            ),
            (
                DispatcherAttribute::MessageLogTtl,
                self.message_log_ttl.map(Field::Seconds),
            ),
            (DispatcherAttribute::OnDuty, self.on_duty.map(Field::Flag)),
        ]
        .into_iter()
        .filter_map(|(attribute, field)| Some((attribute, field?)))
        .collect()
    }
}

/// One field's value as `put` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Text(String),
    Seconds(u64),
    Flag(bool),
    /// Unix seconds (`last_heartbeat` of a new item).
    Time(i64),
}

impl Field {
    fn attribute_value(&self) -> AttributeValue {
        match self {
            Field::Text(text) => s(text.as_str()),
            Field::Seconds(secs) => n(secs),
            Field::Flag(flag) => AttributeValue::Bool(*flag),
            Field::Time(at) => n(at),
        }
    }
}

/// What [`DispatcherPatch`] did to the dispatcher item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// There was no item: it was created, available, with `last_heartbeat = now`.
    Created,
    /// The item existed: only the patch's fields were set.
    Updated,
}

/// What a new item gets besides the patch: available, with a heartbeat now.
pub fn new_item_fields(now: i64) -> [(DispatcherAttribute, Field); 2] {
    [
        (DispatcherAttribute::Available, Field::Flag(true)),
        (DispatcherAttribute::LastHeartbeat, Field::Time(now)),
    ]
}

const KEY: &str = DispatcherAttribute::DispatcherId.as_str();

/// Which texts `qdn messages` asks the message table's indexes for.
#[derive(Debug, Clone)]
pub struct Listing {
    pub since: i64,
    pub now: i64,
    /// Only those that reached nobody: the sparse index.
    pub undelivered: bool,
    pub dispatcher: Option<DispatcherId>,
    pub page_size: i32,
}

/// A listed item: a driver's text, or one whose item is damaged (its key, and what).
#[derive(Debug, Clone)]
pub enum Listed {
    Text(Box<MessageSummary>),
    Damaged { key: String, damage: ItemDamage },
}

/// What the listing read: the texts newest first, and the pages it took.
#[derive(Debug, Clone)]
pub struct ListingResult {
    pub texts: Vec<Listed>,
    pub pages: u32,
}

/// The operator's view of both tables.
pub struct OperatorStore {
    client: Client,
    state_table: String,
    message_table: String,
}

impl OperatorStore {
    pub fn new(client: Client, state_table: &str, message_table: &str) -> Self {
        OperatorStore {
            client,
            state_table: state_table.to_string(),
            message_table: message_table.to_string(),
        }
    }

    /// `qdn dispatchers put`: sets only the patch's fields of an existing item (an
    /// `UpdateItem` conditional on `attribute_exists(dispatcher_id)`), or creates a
    /// missing one (a `PutItem` conditional on `attribute_not_exists(dispatcher_id)`)
    /// with the patch's fields, `available = true` and `last_heartbeat = now`. A new
    /// item needs `phone`. A conditional write that loses a race (the item appeared or
    /// vanished meanwhile) is retried the other way once.
    pub async fn put_fields(
        &self,
        id: &DispatcherId,
        patch: &DispatcherPatch,
        now: i64,
    ) -> Result<PutOutcome, StoreError> {
        let refused = |operation: &'static str, detail: &str| StoreError::Unavailable {
            table: self.state_table.clone(),
            operation,
            detail: format!("dispatcher item {id}: {detail}"),
        };
        if patch.is_empty() {
            return Err(refused("UpdateItem", "nothing to write"));
        }
        if self.update_fields(id, patch).await? {
            return Ok(PutOutcome::Updated);
        }
        if patch.phone.is_none() {
            return Err(refused(
                "PutItem",
                "there is no such item, and a new item needs phone",
            ));
        }
        if self.create_item(id, patch, now).await? {
            return Ok(PutOutcome::Created);
        }
        // Someone created it between the two writes: update it after all.
        if self.update_fields(id, patch).await? {
            return Ok(PutOutcome::Updated);
        }
        Err(refused(
            "UpdateItem",
            "the item was created and removed while it was written; try again",
        ))
    }

    /// Sets the patch's fields of an existing item; `Ok(false)` when there is none.
    async fn update_fields(
        &self,
        id: &DispatcherId,
        patch: &DispatcherPatch,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.state_table)
            .key(KEY, s(id.as_str()))
            .condition_expression("attribute_exists(#key)")
            .expression_attribute_names("#key", KEY);
        let mut sets = Vec::new();
        for (i, (attribute, value)) in patch.fields().into_iter().enumerate() {
            sets.push(format!("#f{i} = :v{i}"));
            request = request
                .expression_attribute_names(format!("#f{i}"), attribute.as_str())
                .expression_attribute_values(format!(":v{i}"), value.attribute_value());
        }
        let request = request.update_expression(format!("SET {}", sets.join(", ")));
        condition_held(&self.state_table, "UpdateItem", request.send().await)
    }

    /// Creates the item from the patch, available with `last_heartbeat = now`;
    /// `Ok(false)` when it exists already.
    async fn create_item(
        &self,
        id: &DispatcherId,
        patch: &DispatcherPatch,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.state_table)
            .item(KEY, s(id.as_str()))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", KEY);
        for (attribute, value) in new_item_fields(now).into_iter().chain(patch.fields()) {
            request = request.item(attribute.as_str(), value.attribute_value());
        }
        condition_held(&self.state_table, "PutItem", request.send().await)
    }

    /// The rota item's `rota` attribute as stored, whatever its type (`None`: no item,
    /// or no such attribute), for replacing a rota that cannot be read.
    pub async fn raw_rota(&self) -> Result<Option<AttributeValue>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.state_table)
            .key(KEY, s(ROTA_KEY))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&self.state_table, "GetItem", e))?;
        Ok(output.item.and_then(|mut item| item.remove(ROTA_ATTRIBUTE)))
    }

    /// Replaces a rota item whose `rota` attribute is missing or not a string (so the
    /// relay's conditional [`put_rota`](relay_aws::dynamo::DynamoDispatcherStore::put_rota)
    /// cannot name it), only while it still is; `Ok(false)` when it changed meanwhile.
    pub async fn replace_rota_without_text(
        &self,
        text: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.state_table)
            .item(KEY, s(ROTA_KEY))
            .item(ROTA_ATTRIBUTE, s(text))
            .item(UPDATED_AT_ATTRIBUTE, n(now))
            .condition_expression(
                "attribute_exists(#key) AND (attribute_not_exists(#rota) OR NOT attribute_type(#rota, :string))",
            )
            .expression_attribute_names("#key", KEY)
            .expression_attribute_names("#rota", ROTA_ATTRIBUTE)
            .expression_attribute_values(":string", s("S"));
        condition_held(&self.state_table, "PutItem", request.send().await)
    }

    /// The items of one message's story for `qdn trail`: `sid` may be the inbound
    /// message's or any of its forwarded texts'. `None` when the log has no such item.
    pub async fn trail(
        &self,
        sid: &str,
    ) -> Result<Option<crate::message_trail::Trail>, StoreError> {
        let Some(first) = self.raw_item(sid).await? else {
            return Ok(None);
        };
        let main = match first.get("record_type").and_then(|t| t.as_str()) {
            Some("forward") => {
                let inbound = first
                    .get("inbound_sid")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default();
                self.raw_item(inbound).await?.unwrap_or(first)
            }
            _ => first,
        };
        // The forwarded texts: the current one, and every one it was moved on from.
        let mut forwards = Vec::new();
        let mut next = main
            .get("forwarded_sid")
            .and_then(|s| s.as_str())
            .map(str::to_string);
        while let Some(sid) = next.take() {
            if forwards.len() >= 10 {
                break; // three tiers and their escalations: never this many
            }
            if let Some(forward) = self.raw_item(&sid).await? {
                next = forward
                    .get("moved_on_from")
                    .and_then(|s| s.as_str())
                    .map(str::to_string);
                forwards.push(forward);
            }
        }
        Ok(Some(crate::message_trail::build_trail(&main, &forwards)))
    }

    /// `qdn messages`: one query per day bucket (newest first), every page of it,
    /// on `by_day` or (undelivered only) the sparse `unresolved_by_day`. Dispatchers'
    /// own texts and, with `--dispatcher`, other cascades are filtered out by the
    /// query; texts whose log has expired (TTL deletes lazily) are left out.
    pub async fn messages(&self, listing: &Listing) -> Result<ListingResult, StoreError> {
        let (index, day) = if listing.undelivered {
            ("unresolved_by_day", "unresolved_day")
        } else {
            ("by_day", "msg_day")
        };
        let mut filter =
            "record_type = :inbound AND NOT (#state IN (:command, :answered))".to_string();
        if listing.dispatcher.is_some() {
            filter.push_str(" AND dispatcher_id = :dispatcher");
        }
        let mut result = ListingResult {
            texts: Vec::new(),
            pages: 0,
        };
        for bucket in day_buckets(listing.since, listing.now) {
            let mut start = None;
            loop {
                let mut query = self
                    .client
                    .query()
                    .table_name(&self.message_table)
                    .index_name(index)
                    .key_condition_expression("#day = :day AND received_at >= :since")
                    .filter_expression(&filter)
                    .expression_attribute_names("#day", day)
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":day", s(&bucket))
                    .expression_attribute_values(":since", n(listing.since))
                    .expression_attribute_values(":inbound", s("inbound"))
                    .expression_attribute_values(":command", s(RecordState::Command.as_str()))
                    .expression_attribute_values(":answered", s(RecordState::Answered.as_str()))
                    .scan_index_forward(false)
                    .limit(listing.page_size)
                    .set_exclusive_start_key(start.take());
                if let Some(dispatcher) = &listing.dispatcher {
                    query =
                        query.expression_attribute_values(":dispatcher", s(dispatcher.as_str()));
                }
                let page = query
                    .send()
                    .await
                    .map_err(|e| unavailable(&self.message_table, "Query", e))?;
                result.pages += 1;
                for item in page.items() {
                    let listed = match decode_message_summary(&DynamoItem(item)) {
                        Ok(summary) if summary.expires_at.is_some_and(|at| at < listing.now) => {
                            continue;
                        }
                        Ok(summary) => Listed::Text(Box::new(summary)),
                        Err(damage) => Listed::Damaged {
                            key: match item.get("message_sid") {
                                Some(AttributeValue::S(key)) => key.clone(),
                                _ => "?".into(),
                            },
                            damage,
                        },
                    };
                    result.texts.push(listed);
                }
                match page.last_evaluated_key {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => break,
                }
            }
        }
        Ok(result)
    }

    async fn raw_item(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.message_table)
            .key("message_sid", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&self.message_table, "GetItem", e))?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed {
                    table: self.message_table.clone(),
                    key: key.to_string(),
                    detail: e.to_string(),
                })
            })
            .transpose()
    }
}
