//! DynamoDB adapters: the dispatcher state table and the message log.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use tracing::instrument;

use relay_core::ack::{AckState, CurrentAck};
use relay_core::cascade::Tier;
use relay_core::claim::{
    ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, ExistingRecord, RecordState,
};
use relay_core::conversation::{Conversation, Driver};
use relay_core::delivery::DeliveryStatus;
use relay_core::dispatcher::{
    DispatcherAttribute, DispatcherRecord, Flag, UnreadableDispatcher, decode_dispatcher,
};
use relay_core::fate::{Unreached, day_bucket};
use relay_core::ids::DispatcherId;
use relay_core::ids::MessageSid;
use relay_core::message_items::{
    ItemDamage, decode_claim_record, decode_conversation, decode_forward, decode_message_summary,
};
use relay_core::phone::{CountryCode, PhoneNumber};
use relay_core::ports::{
    AckStore, ClaimStore, CommandRecord, ConversationStore, DeliveryHealth, DeliveryLog,
    DispatcherStore, Finish, ForwardRecord, ForwardedMessage, LoggedText, MessageLog, MovedOn,
    Observed, OutboundLog, OutboundRecord, ProblemLog, RelayText, StoreError, UnreachedRecord,
};
use relay_core::problem::ProblemKey;
use relay_core::reference::TextRef;
use relay_core::roster::{Roster, RotaItem};
use relay_core::rota::{ROTA_ATTRIBUTE, ROTA_KEY, UPDATED_AT_ATTRIBUTE, decode_rota};
use relay_core::stored::{Stored, StoredItem, StoredType};

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn unavailable(
    table: &str,
    operation: &'static str,
    err: impl std::error::Error,
) -> StoreError {
    StoreError::Unavailable {
        table: table.to_string(),
        operation,
        detail: DisplayErrorContext(err).to_string(),
    }
}

/// `Ok(true)` when a conditional write happened (for every DynamoDB writer of the
/// project, the CLI's too), `Ok(false)` when its condition did
/// not hold (which callers expect: it is how concurrent invocations agree).
pub fn condition_held<O, E>(
    table: &str,
    operation: &'static str,
    result: Result<O, E>,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(unavailable(table, operation, e)),
    }
}

// The dispatcher item's attributes this adapter writes, named where the domain names
// them.
const KEY: &str = DispatcherAttribute::DispatcherId.as_str();
const AVAILABLE: &str = DispatcherAttribute::Available.as_str();
const ON_DUTY: &str = DispatcherAttribute::OnDuty.as_str();
const LAST_HEARTBEAT: &str = DispatcherAttribute::LastHeartbeat.as_str();

/// The `STATE_TABLE` of dispatcher items, keyed by `dispatcher_id`.
#[derive(Debug, Clone)]
pub struct DynamoDispatcherStore {
    client: Client,
    table: String,
    /// Items per `Scan` page; `None` is DynamoDB's own (1 MB).
    scan_page_size: Option<i32>,
}

impl DynamoDispatcherStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDispatcherStore {
            client,
            table: table.into(),
            scan_page_size: None,
        }
    }

    pub fn with_scan_page_size(mut self, items: Option<i32>) -> Self {
        self.scan_page_size = items;
        self
    }

    /// The one decoder of dispatcher items, for every reader; each damaged attribute is
    /// logged where it is met (never its value: it may be a phone number).
    fn decode(&self, item: &Item) -> Result<DispatcherRecord, UnreadableDispatcher> {
        let decoded = decode_dispatcher(&DynamoItem(item));
        match &decoded {
            Ok(record) => {
                for problem in &record.problems {
                    tracing::warn!(
                        table = %self.table,
                        dispatcher_id = %record.dispatcher_id,
                        attribute = problem.attribute.as_str(),
                        problem = %problem.damage,
                        "damaged dispatcher attribute; its safe value applies"
                    );
                }
            }
            Err(unreadable) => tracing::warn!(
                table = %self.table,
                key = unreadable.key.as_deref().unwrap_or("?"),
                attribute = DispatcherAttribute::DispatcherId.as_str(),
                problem = %unreadable.damage,
                "unreadable dispatcher item skipped"
            ),
        }
        decoded
    }
}

impl DynamoDispatcherStore {
    /// The rota item's one decoder, for every reader; an unusable rota is logged.
    fn decode_rota(&self, item: &Item) -> RotaItem {
        match decode_rota(&DynamoItem(item)) {
            Ok(stored) => RotaItem::Stored(stored),
            Err(why) => {
                tracing::warn!(table = %self.table, key = ROTA_KEY, problem = %why, "the rota item is unusable; PRIMARY_DISPATCHER_ID is primary until it is mended");
                RotaItem::Unreadable(why)
            }
        }
    }

    /// Replaces the rota with `text` (already validated by the caller), only while the
    /// stored one is still `expected` (`None`: there is none), so two operators
    /// editing at once cannot lose one's change. `Ok(false)` when it changed meanwhile.
    pub async fn put_rota(
        &self,
        text: &str,
        expected: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY, s(ROTA_KEY))
            .item(ROTA_ATTRIBUTE, s(text))
            .item(UPDATED_AT_ATTRIBUTE, n(now));
        let request = match expected {
            None => request
                .condition_expression("attribute_not_exists(#key)")
                .expression_attribute_names("#key", KEY),
            Some(old) => request
                .condition_expression("#rota = :old")
                .expression_attribute_names("#rota", ROTA_ATTRIBUTE)
                .expression_attribute_values(":old", s(old)),
        };
        condition_held(&self.table, "PutItem", request.send().await)
    }
}

/// A DynamoDB item as the domain's decoders read it.
pub struct DynamoItem<'a>(pub &'a HashMap<String, AttributeValue>);

impl StoredItem for DynamoItem<'_> {
    fn attribute(&self, name: &str) -> Option<Stored<'_>> {
        self.0.get(name).map(stored)
    }
}

fn stored(value: &AttributeValue) -> Stored<'_> {
    match value {
        AttributeValue::S(text) => Stored::Text(text),
        AttributeValue::N(number) => Stored::Number(number),
        AttributeValue::Bool(flag) => Stored::Bool(*flag),
        AttributeValue::Null(_) => Stored::Other(StoredType::Null),
        AttributeValue::B(_) => Stored::Other(StoredType::Binary),
        AttributeValue::L(_) => Stored::Other(StoredType::List),
        AttributeValue::M(_) => Stored::Other(StoredType::Map),
        AttributeValue::Ss(_) => Stored::Other(StoredType::StringSet),
        AttributeValue::Ns(_) => Stored::Other(StoredType::NumberSet),
        AttributeValue::Bs(_) => Stored::Other(StoredType::BinarySet),
        // A type added to DynamoDB after this SDK: named as what it is closest to.
        _ => Stored::Other(StoredType::Binary),
    }
}

#[async_trait]
impl DispatcherStore for DynamoDispatcherStore {
    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn get(&self, id: &DispatcherId) -> Result<Option<DispatcherRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        // The item was found by its key, so its key is usable; still, never a panic.
        self.decode(&item)
            .map(Some)
            .map_err(|unreadable| StoreError::Damaged {
                table: self.table.clone(),
                key: id.to_string(),
                attribute: DispatcherAttribute::DispatcherId.as_str(),
                damage: unreadable.damage,
            })
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn roster(&self) -> Result<Roster, StoreError> {
        let mut roster = Roster::default();
        let mut start_key: Option<Item> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_limit(self.scan_page_size)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| unavailable(&self.table, "Scan", e))?;
            for item in output.items.unwrap_or_default() {
                match item.get(KEY) {
                    Some(AttributeValue::S(key)) if key == ROTA_KEY => {
                        roster.rota = self.decode_rota(&item);
                    }
                    _ => roster.items.push(self.decode(&item)),
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(roster),
            }
        }
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn mark_unavailable(&self, id: &DispatcherId) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(id.as_str()))
            .update_expression("SET #available = :false")
            .condition_expression("#available = :true")
            .expression_attribute_names("#available", AVAILABLE)
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await;
        condition_held(&self.table, "UpdateItem", result)
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn set_on_duty(
        &self,
        id: &DispatcherId,
        on_duty: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(id.as_str()))
            .condition_expression("attribute_exists(#key)")
            .expression_attribute_names("#key", KEY)
            .expression_attribute_names("#on_duty", ON_DUTY)
            .expression_attribute_values(":on_duty", AttributeValue::Bool(on_duty));
        let request = if on_duty {
            request
                .update_expression(
                    "SET #on_duty = :on_duty, #available = :on_duty, #last_heartbeat = :now",
                )
                .expression_attribute_names("#available", AVAILABLE)
                .expression_attribute_names("#last_heartbeat", LAST_HEARTBEAT)
                .expression_attribute_values(":now", n(now))
        } else {
            request.update_expression("SET #on_duty = :on_duty")
        };
        condition_held(&self.table, "UpdateItem", request.send().await)
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn set_health(
        &self,
        id: &DispatcherId,
        seen: &Observed,
        healthy: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(id.as_str()))
            .expression_attribute_names("#key", KEY)
            .expression_attribute_names("#available", AVAILABLE)
            .expression_attribute_names("#on_duty", ON_DUTY)
            .expression_attribute_values(":healthy", AttributeValue::Bool(healthy));
        let mut condition = vec!["attribute_exists(#key)".to_string()];
        // `name` is the placeholder (`#available`, `#on_duty`) bound above.
        for (name, flag) in [("available", seen.available), ("on_duty", seen.on_duty)] {
            condition.push(match flag {
                Flag::Absent => format!("attribute_not_exists(#{name})"),
                Flag::Set(value) => {
                    request = request.expression_attribute_values(
                        format!(":seen_{name}"),
                        AttributeValue::Bool(value),
                    );
                    format!("#{name} = :seen_{name}")
                }
                // Still not a boolean: nobody mended it meanwhile.
                Flag::Damaged => {
                    request = request.expression_attribute_values(":bool_type", s("BOOL"));
                    format!("attribute_exists(#{name}) AND NOT attribute_type(#{name}, :bool_type)")
                }
            });
        }
        request = request.condition_expression(condition.join(" AND "));
        request = if healthy {
            request
                .update_expression("SET #available = :healthy, #last_heartbeat = :now")
                .expression_attribute_names("#last_heartbeat", LAST_HEARTBEAT)
                .expression_attribute_values(":now", n(now))
        } else {
            request.update_expression("SET #available = :healthy")
        };
        condition_held(&self.table, "UpdateItem", request.send().await)
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn check_in(&self, id: &DispatcherId, now: i64) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(id.as_str()))
            .update_expression("SET #last_heartbeat = :now")
            .condition_expression("attribute_exists(#key)")
            .expression_attribute_names("#key", KEY)
            .expression_attribute_names("#last_heartbeat", LAST_HEARTBEAT)
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        condition_held(&self.table, "UpdateItem", result)
    }
}

/// Abandoned claims are kept this much longer than their lock before DynamoDB's TTL
/// may remove them; the lock itself is checked by time, not by TTL (TTL is lazy).
const CLAIM_RETENTION_SECS: i64 = 3_600;

/// The `MESSAGE_TABLE`: the message log and idempotency records, keyed by
/// `message_sid`, expiring on `expires_at`.
///
/// Claimed items (`record_type` `inbound` or `idempotency`) go `in_progress` → a final
/// [`RecordState`]; forwarded messages get a `record_type = forward` item under their
/// own SID pointing back at the inbound one, and dispatchers' texts to drivers a
/// `record_type = outbound` item.
#[derive(Debug, Clone)]
pub struct DynamoMessageLog {
    client: Client,
    table: String,
}

impl DynamoMessageLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoMessageLog {
            client,
            table: table.into(),
        }
    }

    /// An `UpdateItem` of the item keyed `key`.
    fn update_item(&self, key: impl Into<String>) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("message_sid", s(key))
    }

    /// A consistent `GetItem` of the item keyed `key`.
    fn get_item(&self, key: impl Into<String>) -> GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("message_sid", s(key))
            .consistent_read(true)
    }

    fn malformed(&self, key: &ClaimKey, detail: impl Into<String>) -> StoreError {
        StoreError::Malformed {
            table: self.table.clone(),
            key: key.to_string(),
            detail: detail.into(),
        }
    }

    /// What a claim found under its key, from the item its failed write returned.
    fn existing_record(&self, key: &ClaimKey, item: &Item) -> Result<ExistingRecord, StoreError> {
        decode_claim_record(&DynamoItem(item)).map_err(|damage| self.damaged(key.as_str(), damage))
    }

    /// A message-log item a reader could not use, naming the attribute.
    fn damaged(&self, key: &str, item: ItemDamage) -> StoreError {
        StoreError::Damaged {
            table: self.table.clone(),
            key: key.to_string(),
            attribute: item.attribute,
            damage: item.damage,
        }
    }

    /// Writes the `record_type = forward` item of a text we sent in one transaction with
    /// `inbound`, the update that points the inbound item at it.
    async fn write_forward(
        &self,
        inbound: Update,
        forward: &ForwardItem<'_>,
    ) -> Result<(), StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("message_sid", s(forward.sid.as_str()))
            .item("record_type", s("forward"))
            .item("inbound_sid", s(forward.inbound_sid.as_str()))
            .item("routing_decision", s(forward.tier.as_str()))
            .item("dispatcher_id", s(forward.dispatcher_id.as_str()))
            .item("to_number", s(forward.to.as_str()))
            .item("delivery_status", s(forward.status.as_str()))
            .item("delivery_rank", n(forward.status.rank()))
            .item("sent_at", n(forward.sent_at))
            .item("expires_at", n(forward.expires_at));
        if let Some(failed) = forward.moved_on_from {
            put = put.item("moved_on_from", s(failed.as_str()));
        }
        if forward.round > 0 {
            put = put.item("round", n(forward.round));
        }
        let put = put
            .build()
            .map_err(|e| unavailable(&self.table, "build Put", e))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(inbound).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "TransactWriteItems", e))?;
        Ok(())
    }

    /// The condition and values that make a write succeed only for the claim's holder.
    fn held_by(owner: &ClaimOwner) -> (&'static str, [(&'static str, AttributeValue); 2]) {
        (
            "#state = :in_progress AND claim_owner = :owner",
            [
                (":in_progress", s(RecordState::InProgress.as_str())),
                (":owner", s(owner.as_str())),
            ],
        )
    }
}

#[async_trait]
impl ClaimStore for DynamoMessageLog {
    #[instrument(level = "debug", skip_all, fields(table = %self.table, key = %request.key))]
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<ClaimOutcome, StoreError> {
        let now = request.now;
        // An update, not a put: a record taken over (an undelivered text, by the
        // webhook's retry or an operator's redelivery) keeps what it holds, its words
        // and first receive time included, until the new holder writes its outcome.
        let mut set = vec![
            "record_type = :kind",
            "#state = :in_progress",
            "claim_owner = :owner",
            "received_at = if_not_exists(received_at, :now)",
            "lock_expires_at = :lock",
            "expires_at = if_not_exists(expires_at, :expires)",
        ];
        let mut update = self
            .update_item(request.key.as_str())
            .expression_attribute_values(":kind", s(request.kind.as_str()))
            .expression_attribute_values(":owner", s(request.owner.as_str()))
            .expression_attribute_values(":lock", n(now + request.lock_secs))
            .expression_attribute_values(
                ":expires",
                n(now + request.lock_secs + CLAIM_RETENTION_SECS),
            )
            // The same rule as `ClaimRequest::may_take_over`.
            .condition_expression(
                "attribute_not_exists(message_sid) OR (#state = :in_progress AND lock_expires_at < :now) \
                 OR #state = :undelivered OR #state = :reclaims",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_progress", s(RecordState::InProgress.as_str()))
            .expression_attribute_values(":undelivered", s(RecordState::Undelivered.as_str()))
            .expression_attribute_values(
                ":reclaims",
                // Without a state to reclaim, a name no state has.
                s(request.reclaims.map_or("-", RecordState::as_str)),
            )
            .expression_attribute_values(":now", n(now))
            // What the earlier holder left comes back with the refusal: no second read.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(fingerprint) = request.fingerprint {
            set.push("request_fingerprint = :fingerprint");
            update = update.expression_attribute_values(":fingerprint", s(fingerprint));
        }
        match update
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await
        {
            Ok(_) => Ok(ClaimOutcome::Acquired),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    let item = refused.item.as_ref().ok_or_else(|| {
                        self.malformed(request.key, "the refused claim did not return the item")
                    })?;
                    Ok(ClaimOutcome::Taken(
                        self.existing_record(request.key, item)?,
                    ))
                }
                _ => Err(unavailable(&self.table, "UpdateItem", e)),
            },
        }
    }

    #[instrument(level = "debug", skip_all, fields(table = %self.table, key = %key))]
    async fn release(&self, key: &ClaimKey, owner: &ClaimOwner) -> Result<(), StoreError> {
        let (condition, values) = Self::held_by(owner);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("message_sid", s(key.as_str()))
            .condition_expression(condition)
            .expression_attribute_names("#state", "state")
            .set_expression_attribute_values(Some(attribute_map(values)))
            .send()
            .await;
        // A claim that is no longer ours (finished, or taken over) is not ours to drop.
        condition_held(&self.table, "DeleteItem", result).map(|_| ())
    }

    #[instrument(level = "debug", skip_all, fields(table = %self.table, key = %key, state = %finish.state))]
    async fn finish(
        &self,
        key: &ClaimKey,
        owner: &ClaimOwner,
        finish: &Finish<'_>,
    ) -> Result<(), StoreError> {
        let (condition, held) = Self::held_by(owner);
        let mut values = attribute_map(held);
        values.insert(":final".into(), s(finish.state.as_str()));
        values.insert(":expires".into(), n(finish.expires_at));
        let mut set = vec!["#state = :final", "expires_at = :expires"];
        if let Some(response) = finish.response {
            set.extend(["response_status = :status", "response_body = :body"]);
            values.insert(":status".into(), n(response.status));
            values.insert(":body".into(), s(&response.body));
        }
        if let Some(detail) = finish.detail {
            set.push("failure = :detail");
            values.insert(":detail".into(), s(detail));
        }
        let result = self
            .update_item(key.as_str())
            .update_expression(format!("SET {} REMOVE lock_expires_at", set.join(", ")))
            .condition_expression(condition)
            .expression_attribute_names("#state", "state")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        if condition_held(&self.table, "UpdateItem", result)? {
            Ok(())
        } else {
            Err(StoreError::ClaimLost {
                table: self.table.clone(),
                key: key.to_string(),
            })
        }
    }
}

/// What the item of a forwarded text holds.
struct ForwardItem<'a> {
    sid: &'a MessageSid,
    inbound_sid: &'a MessageSid,
    tier: Tier,
    dispatcher_id: &'a DispatcherId,
    to: &'a PhoneNumber,
    status: DeliveryStatus,
    sent_at: i64,
    expires_at: i64,
    /// The failed text this one replaced, when a delivery was moved on.
    moved_on_from: Option<&'a MessageSid>,
    round: u32,
}

fn strings(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(s).collect())
}

fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

/// The values of the `relay_*` attributes that keep a text's words on its inbound
/// item (`:relay_body`, ...), as [`kept_text`] reads them back.
fn kept_text_values(relay: &RelayText) -> [(&'static str, AttributeValue); 5] {
    let driver = relay.driver.as_ref();
    [
        (":relay_body", s(&relay.body)),
        (":relay_media", strings(&relay.media_urls)),
        (
            ":relay_callback",
            s(relay.status_callback.as_deref().unwrap_or_default()),
        ),
        (
            ":relay_driver",
            s(driver.map(|d| d.number.as_str()).unwrap_or_default()),
        ),
        (
            ":relay_words",
            s(driver.map(|d| d.first_words.as_str()).unwrap_or_default()),
        ),
    ]
}

/// The words of a text kept on its inbound item (`relay_*`), if they are still kept.
fn kept_text(item: &Item) -> Option<RelayText> {
    let body = text(item, "relay_body")?;
    let media_urls = match item.get("relay_media") {
        Some(AttributeValue::L(values)) => values
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect(),
        _ => Vec::new(),
    };
    // Written as E.164 (or empty when the sender could not be answered).
    let driver = text(item, "relay_driver")
        .and_then(|raw| PhoneNumber::parse(&raw, CountryCode::NANP).ok())
        .map(|number| Driver {
            number,
            first_words: text(item, "relay_words").unwrap_or_default(),
        });
    Some(RelayText {
        body,
        driver,
        media_urls,
        status_callback: text(item, "relay_callback").filter(|c| !c.is_empty()),
    })
}

fn attribute_map<const N: usize>(
    values: [(&'static str, AttributeValue); N],
) -> HashMap<String, AttributeValue> {
    values
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

#[async_trait]
impl MessageLog for DynamoMessageLog {
    #[instrument(level = "debug", skip_all, fields(table = %self.table, message_sid = %record.inbound_sid))]
    async fn record_forwarded(
        &self,
        record: &ForwardRecord,
        owner: &ClaimOwner,
    ) -> Result<(), StoreError> {
        let attempts = serde_dynamo::to_attribute_value(&record.attempts)
            .map_err(|e| unavailable(&self.table, "serialise attempts", e))?;
        let set = "SET #state = :final, routing_decision = :tier, dispatcher_id = :dispatcher, \
            cascade_reason = :reason, forwarded_sid = :fsid, forwarded_to = :fto, \
            delivery_status = :status, delivery_rank = :rank, from_number = :from, to_number = :to, \
            num_media = :media, body_truncated = :truncated, attempts = :attempts, \
            forwarded_at = :at, expires_at = :expires, relay_body = :relay_body, \
            relay_media = :relay_media, relay_callback = :relay_callback, \
            relay_driver = :relay_driver, relay_words = :relay_words, \
            received_at = :received, msg_day = :day";
        // Out again: no longer one that reached nobody.
        let remove = "REMOVE lock_expires_at, unresolved_day, fate";
        let set = match record.redeliveries {
            Some(_) => {
                format!("{set}, redeliveries = :redeliveries, redelivered_at = :at {remove}")
            }
            None => format!("{set} {remove}"),
        };
        let (condition, held) = Self::held_by(owner);
        let mut values = attribute_map(held);
        values.extend(attribute_map(kept_text_values(&record.relay)));
        if let Some(redeliveries) = record.redeliveries {
            values.insert(":redeliveries".into(), n(redeliveries));
        }
        values.extend(attribute_map([
            (":received", n(record.received_at)),
            (":day", s(day_bucket(record.received_at))),
            (":final", s(RecordState::Forwarded.as_str())),
            (":tier", s(record.routing_decision.as_str())),
            (":dispatcher", s(record.dispatcher_id.as_str())),
            (":reason", s(&record.cascade_reason)),
            (":fsid", s(record.forwarded_sid.as_str())),
            (":fto", s(record.forwarded_to.as_str())),
            (":status", s(record.forwarded_status.as_str())),
            (":rank", n(record.forwarded_status.rank())),
            (":from", s(&record.from)),
            (":to", s(&record.to)),
            (":media", n(record.relay.media_urls.len())),
            (":truncated", AttributeValue::Bool(record.body_truncated)),
            (":attempts", attempts),
            (":at", n(record.forwarded_at)),
            (":expires", n(record.expires_at)),
        ]));
        // Only the holder of the in-progress claim may turn it into a final record.
        let inbound = Update::builder()
            .table_name(&self.table)
            .key("message_sid", s(record.inbound_sid.as_str()))
            .update_expression(set)
            .condition_expression(condition)
            .expression_attribute_names("#state", "state")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| unavailable(&self.table, "build Update", e))?;
        let forward = ForwardItem {
            sid: &record.forwarded_sid,
            inbound_sid: &record.inbound_sid,
            tier: record.routing_decision,
            dispatcher_id: &record.dispatcher_id,
            to: &record.forwarded_to,
            status: record.forwarded_status,
            sent_at: record.forwarded_at,
            expires_at: record.expires_at,
            moved_on_from: None,
            round: 0,
        };
        self.write_forward(inbound, &forward).await
    }

    #[instrument(level = "debug", skip_all, fields(table = %self.table, message_sid = %record.inbound_sid))]
    async fn record_command(
        &self,
        record: &CommandRecord,
        owner: &ClaimOwner,
    ) -> Result<(), StoreError> {
        let ids = record
            .dispatcher_ids
            .iter()
            .map(|id| s(id.as_str()))
            .collect();
        let (condition, held) = Self::held_by(owner);
        let mut values = attribute_map(held);
        values.extend(attribute_map([
            (":final", s(RecordState::Command.as_str())),
            (":command", s(record.command.name())),
            (":ids", AttributeValue::L(ids)),
            (":expires", n(record.expires_at)),
        ]));
        self.update_item(record.inbound_sid.as_str())
            .update_expression(
                "SET #state = :final, command = :command, dispatcher_ids = :ids, expires_at = :expires \
                 REMOVE lock_expires_at",
            )
            .condition_expression(condition)
            .expression_attribute_names("#state", "state")
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::None)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "UpdateItem", e))?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn forwarded(
        &self,
        sid: &MessageSid,
        now: i64,
    ) -> Result<Option<ForwardedMessage>, StoreError> {
        let output = self
            .get_item(sid.as_str())
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        decode_forward(&DynamoItem(&item), sid, now)
            .map_err(|damage| self.damaged(sid.as_str(), damage))
    }

    #[instrument(level = "debug", skip(self, forward), fields(table = %self.table, message_sid = %forward.sid))]
    async fn record_delivery_status(
        &self,
        forward: &ForwardedMessage,
        status: DeliveryStatus,
        error_code: Option<u32>,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut values = attribute_map([
            (":status", s(status.as_str())),
            (":rank", n(status.rank())),
            (":at", n(at)),
        ]);
        let mut set =
            "SET delivery_status = :status, delivery_rank = :rank, status_at = :at".to_string();
        if let Some(code) = error_code {
            set.push_str(", delivery_error_code = :code");
            values.insert(":code".into(), n(code));
        }
        // Forward only; a redelivery of the stored status is not an error.
        let forward_only = "attribute_not_exists(delivery_rank) OR delivery_rank < :rank OR delivery_status = :status";
        let result = self
            .update_item(forward.sid.as_str())
            .update_expression(&set)
            .condition_expression(format!("record_type = :forward AND ({forward_only})"))
            .set_expression_attribute_values(Some({
                let mut v = values.clone();
                v.insert(":forward".into(), s("forward"));
                v
            }))
            .send()
            .await;
        if !condition_held(&self.table, "UpdateItem", result)? {
            return Ok(false);
        }
        // The inbound item shows the status of the message it currently points at.
        values.insert(":fsid".into(), s(forward.sid.as_str()));
        let result = self
            .update_item(forward.inbound_sid.as_str())
            .update_expression(&set)
            .condition_expression(format!("forwarded_sid = :fsid AND ({forward_only})"))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        condition_held(&self.table, "UpdateItem", result)?;
        Ok(true)
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn relay_text(
        &self,
        sid: &MessageSid,
        now: i64,
    ) -> Result<Option<RelayText>, StoreError> {
        let output = self
            .get_item(sid.as_str())
            .projection_expression(
                "relay_body, relay_media, relay_callback, relay_driver, relay_words, expires_at",
            )
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        // DynamoDB's TTL deletes lazily: an expired item is gone for us.
        if number(&item, "expires_at").is_some_and(|at| at < now) {
            return Ok(None);
        }
        Ok(kept_text(&item))
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn current_forward(&self, sid: &MessageSid) -> Result<Option<MessageSid>, StoreError> {
        let output = self
            .get_item(sid.as_str())
            .projection_expression("forwarded_sid")
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        Ok(output
            .item
            .and_then(|item| text(&item, "forwarded_sid"))
            .and_then(|raw| MessageSid::parse(&raw).ok()))
    }

    async fn resolved(&self, sid: &MessageSid) -> Result<(), StoreError> {
        let result = self
            .update_item(sid.as_str())
            .update_expression(
                "REMOVE relay_body, relay_media, relay_callback, unresolved_day, fate",
            )
            .condition_expression("attribute_exists(message_sid)")
            .send()
            .await;
        condition_held(&self.table, "UpdateItem", result).map(|_| ())
    }

    #[instrument(level = "debug", skip_all, fields(table = %self.table, message_sid = %record.inbound_sid))]
    async fn record_unreached(
        &self,
        record: &UnreachedRecord,
        owner: &ClaimOwner,
    ) -> Result<(), StoreError> {
        let (condition, held) = Self::held_by(owner);
        let day = day_bucket(record.received_at);
        let mut values = attribute_map(held);
        values.extend(attribute_map(kept_text_values(&record.relay)));
        values.extend(attribute_map([
            (":final", s(record.fate.claim_state().as_str())),
            (":fate", s(record.fate.as_str())),
            (":failure", s(&record.reason)),
            (":dispatcher", s(record.dispatcher_id.as_str())),
            (":from", s(&record.from)),
            (":to", s(&record.to)),
            (":media", n(record.relay.media_urls.len())),
            (":truncated", AttributeValue::Bool(record.body_truncated)),
            (":received", n(record.received_at)),
            (":day", s(day)),
            (":expires", n(record.expires_at)),
            (":redeliveries", n(record.redeliveries)),
        ]));
        let result = self
            .update_item(record.inbound_sid.as_str())
            .update_expression(
                "SET #state = :final, fate = :fate, failure = :failure, dispatcher_id = :dispatcher, \
                 from_number = :from, to_number = :to, num_media = :media, body_truncated = :truncated, \
                 relay_body = :relay_body, relay_media = :relay_media, relay_callback = :relay_callback, \
                 relay_driver = :relay_driver, relay_words = :relay_words, received_at = :received, \
                 msg_day = :day, unresolved_day = :day, expires_at = :expires, redeliveries = :redeliveries \
                 REMOVE lock_expires_at",
            )
            .condition_expression(condition)
            .expression_attribute_names("#state", "state")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        if condition_held(&self.table, "UpdateItem", result)? {
            Ok(())
        } else {
            Err(StoreError::ClaimLost {
                table: self.table.clone(),
                key: record.inbound_sid.to_string(),
            })
        }
    }

    #[instrument(level = "debug", skip(self, reason), fields(table = %self.table))]
    async fn mark_unreached(
        &self,
        sid: &MessageSid,
        fate: Unreached,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        // The unresolved index's day is the text's own (`msg_day`, written with it);
        // an item from before the index had none, and takes its receive day.
        let result = self
            .update_item(sid.as_str())
            .update_expression(
                "SET fate = :fate, failure = :failure, \
                 unresolved_day = if_not_exists(msg_day, :today)",
            )
            .condition_expression("attribute_exists(message_sid)")
            .expression_attribute_values(":fate", s(fate.as_str()))
            .expression_attribute_values(":failure", s(reason))
            .expression_attribute_values(":today", s(day_bucket(now)))
            .send()
            .await;
        condition_held(&self.table, "UpdateItem", result).map(|_| ())
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn logged_text(
        &self,
        sid: &MessageSid,
        now: i64,
    ) -> Result<Option<LoggedText>, StoreError> {
        let output = self
            .get_item(sid.as_str())
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        if text(&item, "record_type").as_deref() != Some("inbound")
            || number(&item, "expires_at").is_some_and(|at| at < now)
        {
            return Ok(None);
        }
        let summary = decode_message_summary(&DynamoItem(&item))
            .map_err(|damage| self.damaged(sid.as_str(), damage))?;
        Ok(Some(LoggedText {
            summary,
            kept: kept_text(&item),
            body_truncated: matches!(item.get("body_truncated"), Some(AttributeValue::Bool(true))),
        }))
    }

    #[instrument(level = "debug", skip_all, fields(table = %self.table, message_sid = %moved.inbound_sid))]
    async fn record_moved_on(&self, moved: &MovedOn) -> Result<(), StoreError> {
        let attempts = serde_dynamo::to_attribute_value(&moved.attempts)
            .map_err(|e| unavailable(&self.table, "serialise attempts", e))?;
        let mut values = attribute_map([
            (":failed", s(moved.failed_sid.as_str())),
            (":tier", s(moved.tier.as_str())),
            (":reason", s(&moved.cascade_reason)),
            (":fsid", s(moved.forwarded_sid.as_str())),
            (":fto", s(moved.forwarded_to.as_str())),
            (":status", s(moved.status.as_str())),
            (":rank", n(moved.status.rank())),
            (":attempts", attempts),
            (":empty", AttributeValue::L(Vec::new())),
            (":at", n(moved.at)),
        ]);
        let redelivered = if moved.redelivered {
            values.insert(":zero".into(), n(0));
            values.insert(":one".into(), n(1));
            ", redeliveries = if_not_exists(redeliveries, :zero) + :one, redelivered_at = :at"
        } else {
            ""
        };
        // Only while the item still points at the failed message: a move is made once.
        let inbound = Update::builder()
            .table_name(&self.table)
            .key("message_sid", s(moved.inbound_sid.as_str()))
            .update_expression(format!(
                "SET routing_decision = :tier, cascade_reason = :reason, forwarded_sid = :fsid, \
                 forwarded_to = :fto, delivery_status = :status, delivery_rank = :rank, \
                 attempts = list_append(if_not_exists(attempts, :empty), :attempts), \
                 forwarded_at = :at{redelivered} REMOVE unresolved_day, fate",
            ))
            .condition_expression("forwarded_sid = :failed")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| unavailable(&self.table, "build Update", e))?;
        let forward = ForwardItem {
            sid: &moved.forwarded_sid,
            inbound_sid: &moved.inbound_sid,
            tier: moved.tier,
            dispatcher_id: &moved.dispatcher_id,
            to: &moved.forwarded_to,
            status: moved.status,
            sent_at: moved.at,
            expires_at: moved.expires_at,
            moved_on_from: Some(&moved.failed_sid),
            round: moved.round,
        };
        self.write_forward(inbound, &forward).await
    }
}

#[async_trait]
impl OutboundLog for DynamoMessageLog {
    #[instrument(level = "debug", skip_all, fields(table = %self.table, message_sid = %record.sid))]
    async fn record_outbound(&self, record: &OutboundRecord) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("message_sid", s(record.sid.as_str()))
            .item("record_type", s("outbound"))
            .item("dispatcher_id", s(record.dispatcher_id.as_str()))
            .item("to_number", s(record.to.as_str()))
            .item("delivery_status", s(record.delivery_status.as_str()))
            .item("sent_at", n(record.sent_at))
            .item("expires_at", n(record.expires_at));
        if let Some(job_ref) = &record.job_ref {
            put = put.item("job_ref", s(job_ref));
        }
        if let Some(answered) = &record.answers {
            put = put
                .item("answered_by", s(answered.signer.to_string()))
                .item("reference", s(answered.reference.as_str()))
                .item("in_answer_to", strings_of(&answered.inbound_sids));
        }
        put.send()
            .await
            .map_err(|e| unavailable(&self.table, "PutItem", e))?;
        let Some(answered) = &record.answers else {
            return Ok(());
        };
        // On each driver's text it answers, for their trail; a text whose log has
        // expired is not written back into being.
        let entry = AttributeValue::L(vec![AttributeValue::M(attribute_map([
            ("message_sid", s(record.sid.as_str())),
            ("answered_by", s(answered.signer.to_string())),
            ("reference", s(answered.reference.as_str())),
            ("sent_at", n(record.sent_at)),
        ]))]);
        for inbound in &answered.inbound_sids {
            let result = self
                .update_item(inbound.as_str())
                .update_expression(
                    "SET answers = list_append(if_not_exists(answers, :none), :answer)",
                )
                .condition_expression("attribute_exists(message_sid)")
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":answer", entry.clone())
                .send()
                .await;
            condition_held(&self.table, "UpdateItem", result)?;
        }
        Ok(())
    }
}

fn strings_of(sids: &[MessageSid]) -> AttributeValue {
    AttributeValue::L(sids.iter().map(|sid| s(sid.as_str())).collect())
}

/// Deliveries per number live in the message table under `delivery#<E.164>`: one small
/// item per number a text ever went to, kept (no `expires_at`) for the heartbeat.
#[async_trait]
impl DeliveryLog for DynamoMessageLog {
    #[instrument(level = "debug", skip(self), fields(table = %self.table, to = %to.masked()))]
    async fn record_delivery(
        &self,
        to: &PhoneNumber,
        delivered: bool,
        error_code: Option<u32>,
        at: i64,
    ) -> Result<(), StoreError> {
        let attribute = if delivered {
            "last_success_at"
        } else {
            "last_failure_at"
        };
        let mut update = self
            .update_item(delivery_key(to))
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":number", s(to.as_str()))
            .expression_attribute_values(":type", s("delivery"))
            // Never move a time backwards: callbacks arrive out of order.
            .condition_expression(format!(
                "attribute_not_exists({attribute}) OR {attribute} < :at"
            ));
        let mut set = format!("SET {attribute} = :at, record_type = :type, phone = :number");
        if let (false, Some(code)) = (delivered, error_code) {
            set.push_str(", last_error_code = :code");
            update = update.expression_attribute_values(":code", n(code));
        }
        let result = update.update_expression(set).send().await;
        condition_held(&self.table, "UpdateItem", result).map(|_| ())
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table, to = %to.masked()))]
    async fn health(&self, to: &PhoneNumber) -> Result<DeliveryHealth, StoreError> {
        let output = self
            .get_item(delivery_key(to))
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        Ok(output
            .item
            .map(|item| DeliveryHealth {
                last_failure_at: number(&item, "last_failure_at"),
                last_success_at: number(&item, "last_success_at"),
            })
            .unwrap_or_default())
    }
}

fn delivery_key(to: &PhoneNumber) -> String {
    format!("delivery#{to}")
}

const KNOWN_PROBLEMS_KEY: &str = "heartbeat#known_problems";

/// The heartbeat's known problems: one item in the message table.
#[async_trait]
impl ProblemLog for DynamoMessageLog {
    async fn known_problems(&self) -> Result<BTreeSet<ProblemKey>, StoreError> {
        let output = self
            .get_item(KNOWN_PROBLEMS_KEY)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        Ok(match output.item.as_ref().and_then(|i| i.get("problems")) {
            // Anything else is read as "none known": at worst each problem is alerted
            // once more, never lost.
            Some(AttributeValue::L(values)) => values
                .iter()
                .filter_map(|v| v.as_s().ok().cloned())
                .map(ProblemKey::from_stored)
                .collect(),
            _ => BTreeSet::new(),
        })
    }

    async fn set_known_problems(&self, problems: &BTreeSet<ProblemKey>) -> Result<(), StoreError> {
        let list: Vec<String> = problems.iter().map(|key| key.to_string()).collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("message_sid", s(KNOWN_PROBLEMS_KEY))
            .item("record_type", s("heartbeat"))
            .item("problems", strings(&list))
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "PutItem", e))?;
        Ok(())
    }
}

/// How long a phone's item lives for an `open_<REF>` alone: the longest ACK window
/// (900 s) and a minute.
const AWAITING_HOLD_SECS: i64 = 960;

/// How many conversations past their window a phone's item may carry before a write
/// drops them (each costs the write an extra update, so it is done in batches).
const STALE_CONVERSATIONS_BATCH: usize = 8;

/// References and conversations: one `ref#<REF>` item per reference reserved (its
/// `inbound_sid`, until `expires_at`), and one `phone#<E.164>` item per phone a text
/// went to, with a `c_<REF>` map per conversation (see
/// [`relay_core::message_items::decode_conversation`]) and, with acknowledgement on,
/// an `open_<REF> = <sent at, ms>` per text awaiting its ACK.
#[async_trait]
impl ConversationStore for DynamoMessageLog {
    async fn reserve_ref(
        &self,
        reference: &TextRef,
        sid: &MessageSid,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("message_sid", s(ref_key(reference)))
            .item("record_type", s("text_ref"))
            .item("inbound_sid", s(sid.as_str()))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(message_sid) OR expires_at < :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        condition_held(&self.table, "PutItem", result)
    }

    async fn open_conversation(
        &self,
        phone: &PhoneNumber,
        conversation: &Conversation,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let entry = AttributeValue::M(attribute_map([
            ("inbound_sid", s(conversation.inbound_sid.as_str())),
            ("driver", s(conversation.driver.as_str())),
            ("first_words", s(&conversation.first_words)),
            ("sent_at", n(conversation.sent_at)),
            ("until", n(expires_at)),
        ]));
        let output = self
            .update_item(phone_key(phone))
            .update_expression("SET #c = :entry, record_type = :type, expires_at = :expires")
            .expression_attribute_names("#c", conversation_attribute(&conversation.reference))
            .expression_attribute_values(":entry", entry)
            .expression_attribute_values(":type", s("phone"))
            .expression_attribute_values(":expires", n(expires_at))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "UpdateItem", e))?;
        // Past their window: dropped in batches, each only while it is the one read.
        let stale: Vec<(String, String)> = output
            .attributes
            .unwrap_or_default()
            .iter()
            .filter(|(name, _)| name.starts_with("c_"))
            .filter_map(|(name, value)| {
                let entry = value.as_m().ok()?;
                let until: i64 = entry.get("until")?.as_n().ok()?.parse().ok()?;
                let sid = entry.get("inbound_sid")?.as_s().ok()?.clone();
                (until < conversation.sent_at).then(|| (name.clone(), sid))
            })
            .collect();
        if stale.len() >= STALE_CONVERSATIONS_BATCH {
            self.drop_conversations(phone, &stale).await;
        }
        Ok(())
    }

    async fn conversations(&self, phone: &PhoneNumber) -> Result<Vec<Conversation>, StoreError> {
        let Some(item) = self.phone_item(phone).await? else {
            return Ok(Vec::new());
        };
        let mut conversations = Vec::new();
        for (name, value) in &item {
            let Some(raw) = name.strip_prefix("c_") else {
                continue;
            };
            let decoded = match (TextRef::parse(raw), value.as_m()) {
                (Some(reference), Ok(entry)) => decode_conversation(reference, &DynamoItem(entry))
                    .map_err(|damage| format!("{}: {}", damage.attribute, damage.damage)),
                _ => Err("not a conversation map under a reference".to_string()),
            };
            match decoded {
                Ok(conversation) => conversations.push(conversation),
                Err(problem) => tracing::warn!(
                    table = %self.table,
                    phone = %phone.masked(),
                    attribute = %name,
                    problem,
                    "damaged conversation skipped; it cannot be answered"
                ),
            }
        }
        Ok(conversations)
    }
}

impl DynamoMessageLog {
    /// A phone's item (`phone#<E.164>`): its conversations and awaited ACKs.
    async fn phone_item(&self, phone: &PhoneNumber) -> Result<Option<Item>, StoreError> {
        let output = self
            .get_item(phone_key(phone))
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        Ok(output.item)
    }

    /// Removes the named conversations from a phone's item while each still holds the
    /// text it held when read; a failure only leaves them for the next batch.
    async fn drop_conversations(&self, phone: &PhoneNumber, stale: &[(String, String)]) {
        let mut update = self.update_item(phone_key(phone));
        let mut removes = Vec::new();
        let mut conditions = Vec::new();
        for (i, (name, sid)) in stale.iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#c{i}"), name)
                .expression_attribute_values(format!(":s{i}"), s(sid));
            removes.push(format!("#c{i}"));
            conditions.push(format!("#c{i}.inbound_sid = :s{i}"));
        }
        let result = update
            .update_expression(format!("REMOVE {}", removes.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .send()
            .await;
        match condition_held(&self.table, "UpdateItem", result) {
            Ok(true) => {
                tracing::debug!(phone = %phone.masked(), dropped = stale.len(), "stale conversations dropped")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(phone = %phone.masked(), error = %e, "stale conversations not dropped; the next batch tries again")
            }
        }
    }
}

/// Acknowledgements: the state on the inbound item (`ack_state`, `ack_ref`, `ack_to`)
/// and, on the phone's item, one `open_<REF> = <sent at, ms>` per text awaiting its
/// ACK (the reference items are [`ConversationStore`]'s).
#[async_trait]
impl AckStore for DynamoMessageLog {
    async fn await_ack(
        &self,
        sid: &MessageSid,
        reference: &TextRef,
        to: &PhoneNumber,
        at: i64,
    ) -> Result<(), StoreError> {
        self.update_item(sid.as_str())
            .update_expression("SET ack_state = :awaiting, ack_ref = :ref, ack_to = :to")
            .expression_attribute_values(":awaiting", s(AckState::Awaiting.as_str()))
            .expression_attribute_values(":ref", s(reference.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "UpdateItem", e))?;
        // The phone's conversation sets its expiry; a text with no conversation (its
        // sender cannot be answered) gives the item one that outlives any ACK window.
        self.update_item(phone_key(to))
            .update_expression(
                "SET #open = :at, record_type = :type, expires_at = if_not_exists(expires_at, :expires)",
            )
            .expression_attribute_names("#open", open_attribute(reference))
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":type", s("phone"))
            .expression_attribute_values(":expires", n(at / 1000 + AWAITING_HOLD_SECS))
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "UpdateItem", e))?;
        Ok(())
    }

    async fn find_ref(
        &self,
        reference: &TextRef,
        now: i64,
    ) -> Result<Option<MessageSid>, StoreError> {
        let output = self
            .get_item(ref_key(reference))
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        Ok(output.item.and_then(|item| {
            let live = number(&item, "expires_at").is_none_or(|at| at >= now);
            live.then(|| text(&item, "inbound_sid"))
                .flatten()
                .and_then(|sid| MessageSid::parse(&sid).ok())
        }))
    }

    async fn oldest_open(&self, phone: &PhoneNumber) -> Result<Option<TextRef>, StoreError> {
        let Some(item) = self.phone_item(phone).await? else {
            return Ok(None);
        };
        Ok(item
            .iter()
            .filter_map(|(name, value)| {
                let reference = TextRef::parse(name.strip_prefix("open_")?)?;
                let at: i64 = value.as_n().ok()?.parse().ok()?;
                Some((at, reference))
            })
            .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)))
            .map(|(_, reference)| reference))
    }

    async fn acknowledge(
        &self,
        sid: &MessageSid,
        reference: &TextRef,
        from: &PhoneNumber,
        at: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .update_item(sid.as_str())
            .update_expression("SET ack_state = :acknowledged, acknowledged_at = :at")
            .condition_expression("ack_state = :awaiting AND ack_ref = :ref AND ack_to = :from")
            .expression_attribute_values(":acknowledged", s(AckState::Acknowledged.as_str()))
            .expression_attribute_values(":awaiting", s(AckState::Awaiting.as_str()))
            .expression_attribute_values(":ref", s(reference.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":at", n(at))
            .send()
            .await;
        condition_held(&self.table, "UpdateItem", result)
    }

    async fn begin_escalation(
        &self,
        sid: &MessageSid,
        forwarded_sid: &MessageSid,
        at: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .update_item(sid.as_str())
            .update_expression("SET ack_state = :escalating, escalated_at = :at")
            // `escalating` too: a timer whose first try failed before sending is retried.
            .condition_expression(
                "(ack_state = :awaiting OR ack_state = :escalating) AND forwarded_sid = :fsid",
            )
            .expression_attribute_values(":escalating", s(AckState::Escalating.as_str()))
            .expression_attribute_values(":awaiting", s(AckState::Awaiting.as_str()))
            .expression_attribute_values(":fsid", s(forwarded_sid.as_str()))
            .expression_attribute_values(":at", n(at))
            .send()
            .await;
        condition_held(&self.table, "UpdateItem", result)
    }

    async fn current_ack(&self, sid: &MessageSid) -> Result<CurrentAck, StoreError> {
        let output = self
            .get_item(sid.as_str())
            .projection_expression("ack_state, ack_ref")
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(CurrentAck::default());
        };
        Ok(CurrentAck {
            state: text(&item, "ack_state").and_then(|raw| AckState::parse(&raw)),
            reference: text(&item, "ack_ref").and_then(|raw| TextRef::parse(&raw)),
        })
    }

    async fn set_ack_state(&self, sid: &MessageSid, state: AckState) -> Result<(), StoreError> {
        self.update_item(sid.as_str())
            .update_expression("SET ack_state = :state")
            .expression_attribute_values(":state", s(state.as_str()))
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "UpdateItem", e))?;
        Ok(())
    }

    async fn stop_awaiting(
        &self,
        reference: &TextRef,
        phone: &PhoneNumber,
    ) -> Result<(), StoreError> {
        self.update_item(phone_key(phone))
            .update_expression("REMOVE #open")
            .expression_attribute_names("#open", open_attribute(reference))
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "UpdateItem", e))?;
        Ok(())
    }
}

fn ref_key(reference: &TextRef) -> String {
    format!("ref#{reference}")
}

fn phone_key(phone: &PhoneNumber) -> String {
    format!("phone#{phone}")
}

fn open_attribute(reference: &TextRef) -> String {
    format!("open_{reference}")
}

fn conversation_attribute(reference: &TextRef) -> String {
    format!("c_{reference}")
}
