//! The sandbox's shared, mutex-guarded state.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::types::{Account, Fault, RecordedRequest, SentMessage};

/// Everything one sandbox knows; cloned into every handler.
#[derive(Clone)]
pub(crate) struct Shared {
    pub accounts: Arc<Vec<Account>>,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    messages: Vec<SentMessage>,
    requests: Vec<RecordedRequest>,
    faults: Vec<Fault>,
}

impl Shared {
    pub fn new(accounts: Vec<Account>) -> Self {
        Self {
            accounts: Arc::new(accounts),
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not wedge the sandbox for the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn messages(&self) -> Vec<SentMessage> {
        self.lock().messages.clone()
    }

    pub fn message(&self, account_sid: &str, sid: &str) -> Option<SentMessage> {
        self.lock()
            .messages
            .iter()
            .find(|m| m.sid == sid && m.account_sid == account_sid)
            .cloned()
    }

    /// Moves message `sid` (of any account) to `status`, with `error_code`; the message
    /// as it is now.
    pub fn set_status(
        &self,
        sid: &str,
        status: &str,
        error_code: Option<u32>,
    ) -> Option<SentMessage> {
        let mut inner = self.lock();
        let message = inner.messages.iter_mut().find(|m| m.sid == sid)?;
        status.clone_into(&mut message.status);
        message.error_code = error_code;
        Some(message.clone())
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn push_fault(&self, fault: Fault) {
        if fault.times > 0 {
            self.lock().faults.push(fault);
        }
    }

    /// Takes one use of the first fault matching a request to `to`.
    pub fn take_fault(&self, to: Option<&str>) -> Option<Fault> {
        let mut inner = self.lock();
        let index = inner
            .faults
            .iter()
            .position(|f| f.times > 0 && f.to.as_deref().is_none_or(|want| Some(want) == to))?;
        let fault = &mut inner.faults[index];
        fault.times -= 1;
        let taken = fault.clone();
        if fault.times == 0 {
            inner.faults.remove(index);
        }
        Some(taken)
    }

    /// Records a request and, when it was accepted, its message.
    pub fn record(&self, request: RecordedRequest, message: Option<SentMessage>) {
        let mut inner = self.lock();
        inner.requests.push(request);
        inner.messages.extend(message);
    }

    pub fn reset(&self) {
        *self.lock() = Inner::default();
    }
}
