//! In-memory adapters beside the DynamoDB, SNS and Twilio ones: fast tests of the
//! handlers' logic, with the same semantics (conditional claims, conditional flips).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::alert::Alert;
use crate::dispatcher::DispatcherRecord;
use crate::dynamo::state;
use crate::ids::{DispatcherId, MessageSid};
use crate::ports::{
    AlertError, AlertPublisher, Claim, CommandRecord, DispatcherStore, ForwardRecord, MessageLog,
    OutgoingSms, SendError, SentSms, SmsSender, StoreError,
};

#[derive(Debug, Default)]
pub struct MemoryDispatcherStore {
    items: Mutex<HashMap<String, DispatcherRecord>>,
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
}

#[async_trait]
impl DispatcherStore for MemoryDispatcherStore {
    async fn get(&self, id: &DispatcherId) -> Result<Option<DispatcherRecord>, StoreError> {
        Ok(self.record(id.as_str()))
    }

    async fn all(&self) -> Result<Vec<Result<DispatcherRecord, StoreError>>, StoreError> {
        Ok(self
            .items
            .lock()
            .unwrap()
            .values()
            .cloned()
            .map(Ok)
            .collect())
    }

    async fn mark_unavailable(&self, id: &DispatcherId) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        match items.get_mut(id.as_str()) {
            Some(record) if record.available => {
                record.available = false;
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
        record.on_duty = Some(on_duty);
        if on_duty {
            record.available = true;
            record.last_heartbeat = Some(now);
        }
        Ok(true)
    }
}

/// What the in-memory log keeps of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub state: String,
    pub lock_expires_at: Option<i64>,
    pub forward: Option<ForwardRecord>,
    pub command: Option<CommandRecord>,
}

#[derive(Debug, Default)]
pub struct MemoryMessageLog {
    entries: Mutex<HashMap<String, LogEntry>>,
}

impl MemoryMessageLog {
    pub fn entry(&self, sid: &str) -> Option<LogEntry> {
        self.entries.lock().unwrap().get(sid).cloned()
    }

    fn finish(
        &self,
        sid: &MessageSid,
        update: impl FnOnce(&mut LogEntry),
    ) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap();
        match entries.get_mut(sid.as_str()) {
            Some(entry) if entry.state == state::IN_PROGRESS => {
                entry.lock_expires_at = None;
                update(entry);
                Ok(())
            }
            _ => Err(StoreError::Unavailable {
                table: "memory".into(),
                operation: "finish",
                detail: format!("{sid} is not claimed"),
            }),
        }
    }
}

#[async_trait]
impl MessageLog for MemoryMessageLog {
    async fn claim(&self, sid: &MessageSid, now: i64, lock_secs: i64) -> Result<Claim, StoreError> {
        let mut entries = self.entries.lock().unwrap();
        match entries.get(sid.as_str()) {
            Some(entry) if entry.state != state::IN_PROGRESS => {
                return Ok(Claim::AlreadyHandled {
                    state: entry.state.clone(),
                });
            }
            Some(entry) if entry.lock_expires_at.is_some_and(|at| at >= now) => {
                return Ok(Claim::InProgress);
            }
            _ => {}
        }
        entries.insert(
            sid.as_str().to_string(),
            LogEntry {
                state: state::IN_PROGRESS.into(),
                lock_expires_at: Some(now + lock_secs),
                forward: None,
                command: None,
            },
        );
        Ok(Claim::Acquired)
    }

    async fn release(&self, sid: &MessageSid) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap();
        if entries
            .get(sid.as_str())
            .is_some_and(|e| e.state == state::IN_PROGRESS)
        {
            entries.remove(sid.as_str());
        }
        Ok(())
    }

    async fn record_forwarded(&self, record: &ForwardRecord) -> Result<(), StoreError> {
        self.finish(&record.inbound_sid, |entry| {
            entry.state = state::FORWARDED.into();
            entry.forward = Some(record.clone());
        })
    }

    async fn record_command(&self, record: &CommandRecord) -> Result<(), StoreError> {
        self.finish(&record.inbound_sid, |entry| {
            entry.state = state::COMMAND.into();
            entry.command = Some(record.clone());
        })
    }

    async fn record_outcome_unknown(
        &self,
        sid: &MessageSid,
        _detail: &str,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        self.finish(sid, |entry| entry.state = state::OUTCOME_UNKNOWN.into())
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

    /// Messages that went out.
    pub fn sent(&self) -> Vec<OutgoingSms> {
        self.sent.lock().unwrap().clone()
    }

    /// Every send asked for, including the failed ones.
    pub fn tried(&self) -> Vec<OutgoingSms> {
        self.tried.lock().unwrap().clone()
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
            status: "queued".into(),
        })
    }
}
