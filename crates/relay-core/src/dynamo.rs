//! DynamoDB adapters: the dispatcher state table and the message log.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use tracing::instrument;

use crate::dispatcher::DispatcherRecord;
use crate::ids::{DispatcherId, MessageSid};
use crate::ports::{Claim, CommandRecord, DispatcherStore, ForwardRecord, MessageLog, StoreError};

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn unavailable(table: &str, operation: &'static str, err: impl std::error::Error) -> StoreError {
    StoreError::Unavailable {
        table: table.to_string(),
        operation,
        detail: DisplayErrorContext(err).to_string(),
    }
}

/// `Ok(true)` when a conditional write happened, `Ok(false)` when its condition did
/// not hold (which callers expect: it is how concurrent invocations agree).
fn condition_held<O, E>(
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

/// The `STATE_TABLE` of dispatcher items, keyed by `dispatcher_id`.
#[derive(Debug, Clone)]
pub struct DynamoDispatcherStore {
    client: Client,
    table: String,
}

impl DynamoDispatcherStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDispatcherStore {
            client,
            table: table.into(),
        }
    }

    fn parse(&self, item: Item) -> Result<DispatcherRecord, StoreError> {
        let key = match item.get("dispatcher_id") {
            Some(AttributeValue::S(id)) => id.clone(),
            _ => "?".to_string(),
        };
        serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed {
            table: self.table.clone(),
            key,
            detail: e.to_string(),
        })
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
            .key("dispatcher_id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        output.item.map(|item| self.parse(item)).transpose()
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn all(&self) -> Result<Vec<Result<DispatcherRecord, StoreError>>, StoreError> {
        let mut records = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| unavailable(&self.table, "Scan", e))?;
            records.extend(
                output
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|i| self.parse(i)),
            );
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(records),
            }
        }
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table))]
    async fn mark_unavailable(&self, id: &DispatcherId) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("dispatcher_id", s(id.as_str()))
            .update_expression("SET available = :false")
            .condition_expression("available = :true")
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
            .key("dispatcher_id", s(id.as_str()))
            .condition_expression("attribute_exists(dispatcher_id)")
            .expression_attribute_values(":on_duty", AttributeValue::Bool(on_duty));
        let request = if on_duty {
            request
                .update_expression(
                    "SET on_duty = :on_duty, available = :on_duty, last_heartbeat = :now",
                )
                .expression_attribute_values(":now", n(now))
        } else {
            request.update_expression("SET on_duty = :on_duty")
        };
        condition_held(&self.table, "UpdateItem", request.send().await)
    }
}

/// Message-log item states.
pub mod state {
    pub const IN_PROGRESS: &str = "in_progress";
    pub const FORWARDED: &str = "forwarded";
    pub const COMMAND: &str = "command";
    pub const OUTCOME_UNKNOWN: &str = "outcome_unknown";
}

/// Abandoned claims are kept this much longer than their lock before DynamoDB's TTL
/// may remove them; the lock itself is checked by time, not by TTL (TTL is lazy).
const CLAIM_RETENTION_SECS: i64 = 3_600;

/// The `MESSAGE_TABLE`: the message log and idempotency records, keyed by
/// `message_sid`, expiring on `expires_at`.
///
/// Inbound items (`record_type = inbound`) go `in_progress` → `forwarded` /
/// `command` / `outcome_unknown`; forwarded messages get a `record_type = forward`
/// item under their own SID pointing back at the inbound one, for status callbacks
/// and acknowledgements.
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

    async fn read_state(&self, sid: &MessageSid) -> Result<Option<String>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("message_sid", s(sid.as_str()))
            .consistent_read(true)
            .projection_expression("#state")
            .expression_attribute_names("#state", "state")
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "GetItem", e))?;
        Ok(output.item.and_then(|item| match item.get("state") {
            Some(AttributeValue::S(state)) => Some(state.clone()),
            _ => None,
        }))
    }
}

#[async_trait]
impl MessageLog for DynamoMessageLog {
    #[instrument(level = "debug", skip(self), fields(table = %self.table, message_sid = %sid))]
    async fn claim(&self, sid: &MessageSid, now: i64, lock_secs: i64) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("message_sid", s(sid.as_str()))
            .item("record_type", s("inbound"))
            .item("state", s(state::IN_PROGRESS))
            .item("received_at", n(now))
            .item("lock_expires_at", n(now + lock_secs))
            .item("expires_at", n(now + lock_secs + CLAIM_RETENTION_SECS))
            .condition_expression(
                "attribute_not_exists(message_sid) OR (#state = :in_progress AND lock_expires_at < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_progress", s(state::IN_PROGRESS))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        if condition_held(&self.table, "PutItem", result)? {
            return Ok(Claim::Acquired);
        }
        Ok(match self.read_state(sid).await? {
            Some(state) if state == state::IN_PROGRESS => Claim::InProgress,
            Some(state) => Claim::AlreadyHandled { state },
            // Released between our write and our read: someone else owns it now or
            // will; treat it as in progress rather than racing again.
            None => Claim::InProgress,
        })
    }

    #[instrument(level = "debug", skip(self), fields(table = %self.table, message_sid = %sid))]
    async fn release(&self, sid: &MessageSid) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("message_sid", s(sid.as_str()))
            .condition_expression("#state = :in_progress")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_progress", s(state::IN_PROGRESS))
            .send()
            .await;
        // A claim that is no longer in progress is not ours to release.
        condition_held(&self.table, "DeleteItem", result).map(|_| ())
    }

    #[instrument(level = "debug", skip_all, fields(table = %self.table, message_sid = %record.inbound_sid))]
    async fn record_forwarded(&self, record: &ForwardRecord) -> Result<(), StoreError> {
        let attempts: Vec<AttributeValue> = record
            .attempts
            .iter()
            .map(|a| serde_dynamo::to_attribute_value(a).expect("attempts serialise"))
            .collect();
        let set = "SET #state = :final, routing_decision = :tier, dispatcher_id = :dispatcher, \
            cascade_reason = :reason, forwarded_sid = :fsid, forwarded_to = :fto, \
            delivery_status = :status, from_number = :from, to_number = :to, num_media = :media, \
            body_truncated = :truncated, attempts = :attempts, forwarded_at = :at, \
            expires_at = :expires REMOVE lock_expires_at";
        let values = HashMap::from([
            (":in_progress".to_string(), s(state::IN_PROGRESS)),
            (":final".to_string(), s(state::FORWARDED)),
            (":tier".to_string(), s(record.routing_decision.as_str())),
            (":dispatcher".to_string(), s(record.dispatcher_id.as_str())),
            (":reason".to_string(), s(&record.cascade_reason)),
            (":fsid".to_string(), s(record.forwarded_sid.as_str())),
            (":fto".to_string(), s(record.forwarded_to.as_str())),
            (":status".to_string(), s(&record.forwarded_status)),
            (":from".to_string(), s(&record.from)),
            (":to".to_string(), s(&record.to)),
            (":media".to_string(), n(record.num_media)),
            (
                ":truncated".to_string(),
                AttributeValue::Bool(record.body_truncated),
            ),
            (":attempts".to_string(), AttributeValue::L(attempts)),
            (":at".to_string(), n(record.forwarded_at)),
            (":expires".to_string(), n(record.expires_at)),
        ]);
        // Only the holder of the in-progress claim may turn it into a final record.
        let inbound = Update::builder()
            .table_name(&self.table)
            .key("message_sid", s(record.inbound_sid.as_str()))
            .update_expression(set)
            .condition_expression("#state = :in_progress")
            .expression_attribute_names("#state", "state")
            .set_expression_attribute_values(Some(values))
            .build()
            .expect("table, key and update expression are set");
        let forward = Put::builder()
            .table_name(&self.table)
            .item("message_sid", s(record.forwarded_sid.as_str()))
            .item("record_type", s("forward"))
            .item("inbound_sid", s(record.inbound_sid.as_str()))
            .item("routing_decision", s(record.routing_decision.as_str()))
            .item("dispatcher_id", s(record.dispatcher_id.as_str()))
            .item("to_number", s(record.forwarded_to.as_str()))
            .item("delivery_status", s(&record.forwarded_status))
            .item("sent_at", n(record.forwarded_at))
            .item("expires_at", n(record.expires_at))
            .build()
            .expect("table and item are set");
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(inbound).build())
            .transact_items(TransactWriteItem::builder().put(forward).build())
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "TransactWriteItems", e))?;
        Ok(())
    }

    #[instrument(level = "debug", skip_all, fields(table = %self.table, message_sid = %record.inbound_sid))]
    async fn record_command(&self, record: &CommandRecord) -> Result<(), StoreError> {
        let ids = record
            .dispatcher_ids
            .iter()
            .map(|id| s(id.as_str()))
            .collect();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("message_sid", s(record.inbound_sid.as_str()))
            .update_expression(
                "SET #state = :final, command = :command, dispatcher_ids = :ids, expires_at = :expires \
                 REMOVE lock_expires_at",
            )
            .condition_expression("#state = :in_progress")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_progress", s(state::IN_PROGRESS))
            .expression_attribute_values(":final", s(state::COMMAND))
            .expression_attribute_values(":command", s(&record.command))
            .expression_attribute_values(":ids", AttributeValue::L(ids))
            .expression_attribute_values(":expires", n(record.expires_at))
            .return_values(ReturnValue::None)
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "UpdateItem", e))?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self, detail), fields(table = %self.table, message_sid = %sid))]
    async fn record_outcome_unknown(
        &self,
        sid: &MessageSid,
        detail: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("message_sid", s(sid.as_str()))
            .update_expression("SET #state = :final, failure = :detail, expires_at = :expires REMOVE lock_expires_at")
            .condition_expression("#state = :in_progress")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_progress", s(state::IN_PROGRESS))
            .expression_attribute_values(":final", s(state::OUTCOME_UNKNOWN))
            .expression_attribute_values(":detail", s(detail))
            .expression_attribute_values(":expires", n(expires_at))
            .send()
            .await
            .map_err(|e| unavailable(&self.table, "UpdateItem", e))?;
        Ok(())
    }
}
