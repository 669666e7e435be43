//! In-memory adapters beside the DynamoDB, SNS and Twilio ones: fast tests of the
//! handlers' logic, with the same semantics (conditional claims, conditional flips).
//! Only built with the `test-util` feature: never part of a function binary.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use relay_core::ack::{AckState, AckTimer, CurrentAck};
use relay_core::alert::Alert;
use relay_core::claim::{
    ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, ExistingRecord, RecordState, StoredResponse,
};
use relay_core::conversation::Conversation;
use relay_core::delivery::DeliveryStatus;
use relay_core::dispatcher::{DispatcherAttribute, DispatcherRecord, Flag};
use relay_core::fate::{Fate, MessageSummary, Unreached};
use relay_core::ids::{DispatcherId, MessageSid};
use relay_core::phone::PhoneNumber;
use relay_core::ports::{
    AckStore, AlertError, AlertPublisher, ClaimStore, CommandRecord, ConversationStore,
    DeliveryHealth, DeliveryLog, DispatcherStore, Finish, ForwardRecord, ForwardedMessage,
    LoggedText, MessageLog, MovedOn, Observed, OutboundLog, OutboundRecord, OutgoingSms,
    ProblemLog, RelayText, SendError, SenderSource, SentSms, SmsSender, StoreError, TimerError,
    TimerQueue, UnreachedRecord,
};
use relay_core::problem::ProblemKey;
use relay_core::reference::TextRef;
use relay_core::roster::{Roster, RotaItem};

#[derive(Debug, Default)]
pub struct MemoryDispatcherStore {
    items: Mutex<HashMap<String, DispatcherRecord>>,
    rota: Mutex<RotaItem>,
}

impl MemoryDispatcherStore {
    pub fn with(records: impl IntoIterator<Item = DispatcherRecord>) -> Self {
        let store = Self::default();
        for record in records {
            store.put(record);
        }
        store
    }

    pub fn put(&self, record: DispatcherRecord) {
        let mut items = self.items.lock().unwrap();
        items.insert(record.dispatcher_id.as_str().to_string(), record);
    }

    pub fn record(&self, id: &str) -> Option<DispatcherRecord> {
        self.items.lock().unwrap().get(id).cloned()
    }

    /// Sets the rota item, as `qdn rota set` would.
    pub fn set_rota(&self, rota: RotaItem) {
        *self.rota.lock().unwrap() = rota;
    }

    /// The item's `last_heartbeat` (its last check-in), if the item exists.
    pub fn last_heartbeat(&self, id: &str) -> Option<i64> {
        self.record(id).and_then(|record| record.last_heartbeat)
    }
}

#[async_trait]
impl DispatcherStore for MemoryDispatcherStore {
    async fn get(&self, id: &DispatcherId) -> Result<Option<DispatcherRecord>, StoreError> {
        Ok(self.record(id.as_str()))
    }

    async fn roster(&self) -> Result<Roster, StoreError> {
        let mut records: Vec<DispatcherRecord> =
            self.items.lock().unwrap().values().cloned().collect();
        records.sort_by(|a, b| a.dispatcher_id.cmp(&b.dispatcher_id));
        Ok(Roster::of(records).with_rota(self.rota.lock().unwrap().clone()))
    }

    async fn mark_unavailable(&self, id: &DispatcherId) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        match items.get_mut(id.as_str()) {
            Some(record) if record.is_marked_available() => {
                record.available = Flag::Set(false);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_on_duty(
        &self,
        id: &DispatcherId,
        on_duty: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        let Some(record) = items.get_mut(id.as_str()) else {
            return Ok(false);
        };
        record.on_duty = Flag::Set(on_duty);
        mended(record, DispatcherAttribute::OnDuty);
        if on_duty {
            record.available = Flag::Set(true);
            record.last_heartbeat = Some(now);
            mended(record, DispatcherAttribute::Available);
            mended(record, DispatcherAttribute::LastHeartbeat);
        }
        Ok(true)
    }

    async fn set_health(
        &self,
        id: &DispatcherId,
        seen: &Observed,
        healthy: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        let Some(record) = items.get_mut(id.as_str()) else {
            return Ok(false);
        };
        if Observed::of(record) != *seen {
            return Ok(false);
        }
        record.available = Flag::Set(healthy);
        mended(record, DispatcherAttribute::Available);
        if healthy {
            record.last_heartbeat = Some(now);
            mended(record, DispatcherAttribute::LastHeartbeat);
        }
        Ok(true)
    }

    async fn check_in(&self, id: &DispatcherId, now: i64) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        let Some(record) = items.get_mut(id.as_str()) else {
            return Ok(false);
        };
        record.last_heartbeat = Some(now);
        mended(record, DispatcherAttribute::LastHeartbeat);
        Ok(true)
    }
}

/// A write of `attribute` replaces whatever damage it had, as in the table.
fn mended(record: &mut DispatcherRecord, attribute: DispatcherAttribute) {
    record.problems.retain(|p| p.attribute != attribute);
}

/// What the in-memory log keeps under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub state: RecordState,
    pub owner: Option<ClaimOwner>,
    pub lock_expires_at: Option<i64>,
    pub fingerprint: Option<String>,
    pub response: Option<StoredResponse>,
    pub forward: Option<ForwardRecord>,
    pub command: Option<CommandRecord>,
    pub outbound: Option<OutboundRecord>,
}

#[derive(Debug, Default)]
pub struct MemoryMessageLog {
    entries: Mutex<HashMap<String, LogEntry>>,
    /// Forwarded messages by their SID, with their latest delivery status.
    forwards: Mutex<HashMap<String, (ForwardedMessage, DeliveryStatus)>>,
    /// Kept texts by inbound SID.
    relay: Mutex<HashMap<String, RelayText>>,
    /// Inbound SID → the forwarded text it points at now.
    current: Mutex<HashMap<String, MessageSid>>,
    deliveries: Mutex<HashMap<String, DeliveryHealth>>,
    moves: Mutex<Vec<MovedOn>>,
    known_problems: Mutex<BTreeSet<ProblemKey>>,
    /// Inbound SID → how it reached nobody, and why, while unresolved.
    unreached: Mutex<HashMap<String, (Unreached, String)>>,
    /// Texts whose first try reached nobody, by inbound SID.
    unsent: Mutex<HashMap<String, UnreachedRecord>>,
}

impl MemoryMessageLog {
    /// How text `sid` reached nobody, while it is unresolved.
    pub fn unreached(&self, sid: &str) -> Option<(Unreached, String)> {
        self.unreached.lock().unwrap().get(sid).cloned()
    }

    pub fn entry(&self, key: &str) -> Option<LogEntry> {
        self.entries.lock().unwrap().get(key).cloned()
    }

    /// Every failed delivery that was moved on, in order.
    pub fn moves(&self) -> Vec<MovedOn> {
        self.moves.lock().unwrap().clone()
    }

    /// The latest delivery status of forwarded message `sid`.
    pub fn delivery_status(&self, sid: &str) -> Option<DeliveryStatus> {
        self.forwards
            .lock()
            .unwrap()
            .get(sid)
            .map(|(_, status)| *status)
    }

    /// Lets a test play an invocation whose lock lapsed.
    pub fn expire_lock(&self, key: &str) {
        if let Some(entry) = self.entries.lock().unwrap().get_mut(key) {
            entry.lock_expires_at = Some(i64::MIN);
        }
    }

    fn finish_held(
        &self,
        key: &str,
        owner: &ClaimOwner,
        update: impl FnOnce(&mut LogEntry),
    ) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap();
        match entries.get_mut(key) {
            Some(entry)
                if entry.state == RecordState::InProgress
                    && entry.owner.as_ref() == Some(owner) =>
            {
                entry.lock_expires_at = None;
                update(entry);
                Ok(())
            }
            _ => Err(StoreError::ClaimLost {
                table: "memory".into(),
                key: key.to_string(),
            }),
        }
    }
}

#[async_trait]
impl ClaimStore for MemoryMessageLog {
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<ClaimOutcome, StoreError> {
        let mut entries = self.entries.lock().unwrap();
        if let Some(entry) = entries.get(request.key.as_str())
            && !request.may_take_over(entry.state, entry.lock_expires_at)
        {
            return Ok(ClaimOutcome::Taken(ExistingRecord {
                state: entry.state,
                fingerprint: entry.fingerprint.clone(),
                response: entry.response.clone(),
            }));
        }
        entries.insert(
            request.key.as_str().to_string(),
            LogEntry {
                state: RecordState::InProgress,
                owner: Some(request.owner.clone()),
                lock_expires_at: Some(request.now + request.lock_secs),
                fingerprint: request.fingerprint.map(str::to_string),
                response: None,
                forward: None,
                command: None,
                outbound: None,
            },
        );
        Ok(ClaimOutcome::Acquired)
    }

    async fn release(&self, key: &ClaimKey, owner: &ClaimOwner) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap();
        let held = entries
            .get(key.as_str())
            .is_some_and(|e| e.state == RecordState::InProgress && e.owner.as_ref() == Some(owner));
        if held {
            entries.remove(key.as_str());
        }
        Ok(())
    }

    async fn finish(
        &self,
        key: &ClaimKey,
        owner: &ClaimOwner,
        finish: &Finish<'_>,
    ) -> Result<(), StoreError> {
        self.finish_held(key.as_str(), owner, |entry| {
            entry.state = finish.state;
            entry.response = finish.response.cloned();
        })
    }
}

#[async_trait]
impl MessageLog for MemoryMessageLog {
    async fn record_forwarded(
        &self,
        record: &ForwardRecord,
        owner: &ClaimOwner,
    ) -> Result<(), StoreError> {
        self.finish_held(record.inbound_sid.as_str(), owner, |entry| {
            entry.state = RecordState::Forwarded;
            entry.forward = Some(record.clone());
        })?;
        let forwarded = ForwardedMessage {
            sid: record.forwarded_sid.clone(),
            inbound_sid: record.inbound_sid.clone(),
            tier: record.routing_decision,
            dispatcher_id: record.dispatcher_id.clone(),
            to: record.forwarded_to.clone(),
            sent_at: Some(record.forwarded_at),
            expires_at: record.expires_at,
            round: 0,
        };
        self.forwards.lock().unwrap().insert(
            record.forwarded_sid.as_str().to_string(),
            (forwarded, record.forwarded_status),
        );
        self.relay.lock().unwrap().insert(
            record.inbound_sid.as_str().to_string(),
            record.relay.clone(),
        );
        Ok(())
    }

    async fn forwarded(
        &self,
        sid: &MessageSid,
        now: i64,
    ) -> Result<Option<ForwardedMessage>, StoreError> {
        let forwards = self.forwards.lock().unwrap();
        Ok(forwards
            .get(sid.as_str())
            .map(|(forwarded, _)| forwarded.clone())
            .filter(|f| f.expires_at >= now))
    }

    async fn record_delivery_status(
        &self,
        forward: &ForwardedMessage,
        status: DeliveryStatus,
        _error_code: Option<u32>,
        _at: i64,
    ) -> Result<bool, StoreError> {
        let mut forwards = self.forwards.lock().unwrap();
        let Some((_, stored)) = forwards.get_mut(forward.sid.as_str()) else {
            return Ok(false);
        };
        if *stored == status || stored.rank() < status.rank() {
            *stored = status;
            return Ok(true);
        }
        Ok(false)
    }

    async fn relay_text(
        &self,
        sid: &MessageSid,
        _now: i64,
    ) -> Result<Option<RelayText>, StoreError> {
        Ok(self.relay.lock().unwrap().get(sid.as_str()).cloned())
    }

    async fn current_forward(&self, sid: &MessageSid) -> Result<Option<MessageSid>, StoreError> {
        Ok(self.current.lock().unwrap().get(sid.as_str()).cloned())
    }

    async fn resolved(&self, sid: &MessageSid) -> Result<(), StoreError> {
        self.relay.lock().unwrap().remove(sid.as_str());
        self.unreached.lock().unwrap().remove(sid.as_str());
        Ok(())
    }

    async fn record_unreached(
        &self,
        record: &UnreachedRecord,
        owner: &ClaimOwner,
    ) -> Result<(), StoreError> {
        self.finish_held(record.inbound_sid.as_str(), owner, |entry| {
            entry.state = record.fate.claim_state();
        })?;
        let sid = record.inbound_sid.as_str().to_string();
        self.relay
            .lock()
            .unwrap()
            .insert(sid.clone(), record.relay.clone());
        self.unreached
            .lock()
            .unwrap()
            .insert(sid.clone(), (record.fate, record.reason.clone()));
        self.unsent.lock().unwrap().insert(sid, record.clone());
        Ok(())
    }

    async fn mark_unreached(
        &self,
        sid: &MessageSid,
        fate: Unreached,
        reason: &str,
        _now: i64,
    ) -> Result<(), StoreError> {
        self.unreached
            .lock()
            .unwrap()
            .insert(sid.as_str().to_string(), (fate, reason.to_string()));
        Ok(())
    }

    async fn logged_text(
        &self,
        sid: &MessageSid,
        _now: i64,
    ) -> Result<Option<LoggedText>, StoreError> {
        let Some(entry) = self.entry(sid.as_str()) else {
            return Ok(None);
        };
        let unreached = self.unreached(sid.as_str());
        let unsent = self.unsent.lock().unwrap().get(sid.as_str()).cloned();
        let forward = entry.forward.as_ref();
        let current = self.current.lock().unwrap().get(sid.as_str()).cloned();
        let summary = MessageSummary {
            sid: sid.clone(),
            state: entry.state,
            received_at: forward
                .map(|f| f.received_at)
                .or(unsent.as_ref().map(|u| u.received_at))
                .unwrap_or_default(),
            from: forward
                .map(|f| f.from.clone())
                .or(unsent.as_ref().map(|u| u.from.clone())),
            to: forward
                .map(|f| f.to.clone())
                .or(unsent.as_ref().map(|u| u.to.clone())),
            tier: forward.map(|f| f.routing_decision),
            dispatcher_id: forward.map(|f| f.dispatcher_id.clone()),
            forwarded_sid: current.or(forward.map(|f| f.forwarded_sid.clone())),
            delivery_status: None,
            fate: match (&unreached, entry.state) {
                (Some((fate, _)), _) => Fate::Unreached(*fate),
                (None, RecordState::InProgress) => Fate::InProgress,
                _ => Fate::Sent,
            },
            escalated: false,
            redeliveries: 0,
            failure: unreached.map(|(_, why)| why),
            expires_at: forward.map(|f| f.expires_at),
        };
        Ok(Some(LoggedText {
            summary,
            kept: self.relay.lock().unwrap().get(sid.as_str()).cloned(),
            body_truncated: forward.is_some_and(|f| f.body_truncated),
        }))
    }

    async fn record_moved_on(&self, moved: &MovedOn) -> Result<(), StoreError> {
        let forwarded = ForwardedMessage {
            sid: moved.forwarded_sid.clone(),
            inbound_sid: moved.inbound_sid.clone(),
            tier: moved.tier,
            dispatcher_id: moved.dispatcher_id.clone(),
            to: moved.forwarded_to.clone(),
            sent_at: Some(moved.at),
            expires_at: moved.expires_at,
            round: moved.round,
        };
        self.forwards.lock().unwrap().insert(
            moved.forwarded_sid.as_str().to_string(),
            (forwarded, moved.status),
        );
        self.current.lock().unwrap().insert(
            moved.inbound_sid.as_str().to_string(),
            moved.forwarded_sid.clone(),
        );
        self.moves.lock().unwrap().push(moved.clone());
        Ok(())
    }

    async fn record_command(
        &self,
        record: &CommandRecord,
        owner: &ClaimOwner,
    ) -> Result<(), StoreError> {
        self.finish_held(record.inbound_sid.as_str(), owner, |entry| {
            entry.state = RecordState::Command;
            entry.command = Some(record.clone());
        })
    }
}

#[async_trait]
impl OutboundLog for MemoryMessageLog {
    async fn record_outbound(&self, record: &OutboundRecord) -> Result<(), StoreError> {
        self.entries.lock().unwrap().insert(
            record.sid.as_str().to_string(),
            LogEntry {
                state: RecordState::Answered,
                owner: None,
                lock_expires_at: None,
                fingerprint: None,
                response: None,
                forward: None,
                command: None,
                outbound: Some(record.clone()),
            },
        );
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct RecordingAlerts {
    alerts: Mutex<Vec<Alert>>,
}

impl RecordingAlerts {
    pub fn alerts(&self) -> Vec<Alert> {
        self.alerts.lock().unwrap().clone()
    }
}

#[async_trait]
impl AlertPublisher for RecordingAlerts {
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError> {
        self.alerts.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

/// A sender that answers from a script (first entry first), then succeeds.
#[derive(Debug, Default)]
pub struct ScriptedSender {
    script: Mutex<VecDeque<SendError>>,
    sent: Mutex<Vec<OutgoingSms>>,
    tried: Mutex<Vec<OutgoingSms>>,
}

impl ScriptedSender {
    pub fn failing_with(errors: impl IntoIterator<Item = SendError>) -> Self {
        let sender = Self::default();
        sender.script.lock().unwrap().extend(errors);
        sender
    }

    /// Queues `errors` for the next sends.
    pub fn script(&self, errors: impl IntoIterator<Item = SendError>) {
        self.script.lock().unwrap().extend(errors);
    }

    /// Messages that went out.
    pub fn sent(&self) -> Vec<OutgoingSms> {
        self.sent.lock().unwrap().clone()
    }

    /// Every send asked for, including the failed ones.
    pub fn tried(&self) -> Vec<OutgoingSms> {
        self.tried.lock().unwrap().clone()
    }
}

/// The scripted sender, for a function that makes its sender only when a text is due.
#[async_trait]
impl SenderSource for ScriptedSender {
    async fn sender(&self) -> Result<Box<dyn SmsSender + '_>, String> {
        Ok(Box::new(Borrowed(self)))
    }
}

struct Borrowed<'a>(&'a ScriptedSender);

#[async_trait]
impl SmsSender for Borrowed<'_> {
    async fn send(&self, sms: &OutgoingSms) -> Result<SentSms, SendError> {
        self.0.send(sms).await
    }
}

#[async_trait]
impl SmsSender for ScriptedSender {
    async fn send(&self, sms: &OutgoingSms) -> Result<SentSms, SendError> {
        self.tried.lock().unwrap().push(sms.clone());
        if let Some(error) = self.script.lock().unwrap().pop_front() {
            return Err(error);
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push(sms.clone());
        let sid = MessageSid::parse(&format!("SM{:032x}", sent.len())).expect("valid sid");
        Ok(SentSms {
            sid,
            status: DeliveryStatus::Queued,
        })
    }
}

#[async_trait]
impl DeliveryLog for MemoryMessageLog {
    async fn record_delivery(
        &self,
        to: &PhoneNumber,
        delivered: bool,
        _error_code: Option<u32>,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut deliveries = self.deliveries.lock().unwrap();
        let health = deliveries.entry(to.as_str().to_string()).or_default();
        let slot = if delivered {
            &mut health.last_success_at
        } else {
            &mut health.last_failure_at
        };
        *slot = Some(slot.map_or(at, |old| old.max(at)));
        Ok(())
    }

    async fn health(&self, to: &PhoneNumber) -> Result<DeliveryHealth, StoreError> {
        Ok(self
            .deliveries
            .lock()
            .unwrap()
            .get(to.as_str())
            .copied()
            .unwrap_or_default())
    }
}

#[async_trait]
impl ProblemLog for MemoryMessageLog {
    async fn known_problems(&self) -> Result<BTreeSet<ProblemKey>, StoreError> {
        Ok(self.known_problems.lock().unwrap().clone())
    }

    async fn set_known_problems(&self, problems: &BTreeSet<ProblemKey>) -> Result<(), StoreError> {
        *self.known_problems.lock().unwrap() = problems.clone();
        Ok(())
    }
}

/// References, conversations and acknowledgement records, in memory.
#[derive(Debug, Default)]
pub struct MemoryAcks {
    /// Reference → (inbound SID, expires at).
    refs: Mutex<HashMap<String, (MessageSid, i64)>>,
    /// Phone → its conversations.
    conversations: Mutex<HashMap<String, Vec<Conversation>>>,
    /// Inbound SID → (state, reference, phone).
    messages: Mutex<HashMap<String, (AckState, TextRef, PhoneNumber)>>,
    /// Phone → open references with the time they were sent.
    open: Mutex<HashMap<String, Vec<(i64, TextRef)>>>,
    /// Inbound SID → its current forwarded text (tests set it, as the message log does).
    current: Mutex<HashMap<String, MessageSid>>,
}

impl MemoryAcks {
    pub fn state(&self, sid: &str) -> Option<AckState> {
        self.messages
            .lock()
            .unwrap()
            .get(sid)
            .map(|(state, _, _)| *state)
    }

    /// What the message log's `forwarded_sid` would say for `sid`.
    pub fn set_current(&self, sid: &MessageSid, forwarded_sid: &MessageSid) {
        self.current
            .lock()
            .unwrap()
            .insert(sid.as_str().to_string(), forwarded_sid.clone());
    }
}

#[async_trait]
impl ConversationStore for MemoryAcks {
    async fn reserve_ref(
        &self,
        reference: &TextRef,
        sid: &MessageSid,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut refs = self.refs.lock().unwrap();
        if let Some((_, expires)) = refs.get(reference.as_str())
            && *expires >= now
        {
            return Ok(false);
        }
        refs.insert(reference.as_str().to_string(), (sid.clone(), expires_at));
        Ok(true)
    }

    async fn open_conversation(
        &self,
        phone: &PhoneNumber,
        conversation: &Conversation,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut all = self.conversations.lock().unwrap();
        let on_phone = all.entry(phone.as_str().to_string()).or_default();
        on_phone.retain(|c| c.reference != conversation.reference);
        on_phone.push(conversation.clone());
        Ok(())
    }

    async fn conversations(&self, phone: &PhoneNumber) -> Result<Vec<Conversation>, StoreError> {
        Ok(self
            .conversations
            .lock()
            .unwrap()
            .get(phone.as_str())
            .cloned()
            .unwrap_or_default())
    }
}

#[async_trait]
impl AckStore for MemoryAcks {
    async fn await_ack(
        &self,
        sid: &MessageSid,
        reference: &TextRef,
        to: &PhoneNumber,
        at: i64,
    ) -> Result<(), StoreError> {
        self.messages.lock().unwrap().insert(
            sid.as_str().to_string(),
            (AckState::Awaiting, reference.clone(), to.clone()),
        );
        self.open
            .lock()
            .unwrap()
            .entry(to.as_str().to_string())
            .or_default()
            .push((at, reference.clone()));
        Ok(())
    }

    async fn find_ref(
        &self,
        reference: &TextRef,
        now: i64,
    ) -> Result<Option<MessageSid>, StoreError> {
        Ok(self
            .refs
            .lock()
            .unwrap()
            .get(reference.as_str())
            .filter(|(_, expires)| *expires >= now)
            .map(|(sid, _)| sid.clone()))
    }

    async fn oldest_open(&self, phone: &PhoneNumber) -> Result<Option<TextRef>, StoreError> {
        Ok(self
            .open
            .lock()
            .unwrap()
            .get(phone.as_str())
            .and_then(|open| open.iter().min_by_key(|(at, _)| *at))
            .map(|(_, reference)| reference.clone()))
    }

    async fn acknowledge(
        &self,
        sid: &MessageSid,
        reference: &TextRef,
        from: &PhoneNumber,
        _at: i64,
    ) -> Result<bool, StoreError> {
        let mut messages = self.messages.lock().unwrap();
        match messages.get_mut(sid.as_str()) {
            Some((state, current, to))
                if *state == AckState::Awaiting && current == reference && to == from =>
            {
                *state = AckState::Acknowledged;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn begin_escalation(
        &self,
        sid: &MessageSid,
        forwarded_sid: &MessageSid,
        _at: i64,
    ) -> Result<bool, StoreError> {
        let current = self.current.lock().unwrap().get(sid.as_str()).cloned();
        let mut messages = self.messages.lock().unwrap();
        match messages.get_mut(sid.as_str()) {
            Some((state, _, _))
                if matches!(state, AckState::Awaiting | AckState::Escalating)
                    && current.as_ref() == Some(forwarded_sid) =>
            {
                *state = AckState::Escalating;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn current_ack(&self, sid: &MessageSid) -> Result<CurrentAck, StoreError> {
        Ok(self
            .messages
            .lock()
            .unwrap()
            .get(sid.as_str())
            .map(|(state, reference, _)| CurrentAck {
                state: Some(*state),
                reference: Some(reference.clone()),
            })
            .unwrap_or_default())
    }

    async fn set_ack_state(&self, sid: &MessageSid, state: AckState) -> Result<(), StoreError> {
        if let Some(entry) = self.messages.lock().unwrap().get_mut(sid.as_str()) {
            entry.0 = state;
        }
        Ok(())
    }

    async fn stop_awaiting(
        &self,
        reference: &TextRef,
        phone: &PhoneNumber,
    ) -> Result<(), StoreError> {
        if let Some(open) = self.open.lock().unwrap().get_mut(phone.as_str()) {
            open.retain(|(_, r)| r != reference);
        }
        Ok(())
    }
}

/// Timers, recorded instead of queued.
#[derive(Debug, Default)]
pub struct RecordingTimers {
    timers: Mutex<Vec<(AckTimer, u64)>>,
}

impl RecordingTimers {
    pub fn timers(&self) -> Vec<(AckTimer, u64)> {
        self.timers.lock().unwrap().clone()
    }
}

#[async_trait]
impl TimerQueue for RecordingTimers {
    async fn schedule(&self, timer: &AckTimer, delay_secs: u64) -> Result<(), TimerError> {
        self.timers
            .lock()
            .unwrap()
            .push((timer.clone(), delay_secs));
        Ok(())
    }
}
