//! References and conversations, the service: every relayed text gets a reference free
//! among the live ones, and the phone it went to may answer it for the reply window.

use relay_core::conversation::{Conversation, Driver};
use relay_core::ids::MessageSid;
use relay_core::phone::PhoneNumber;
use relay_core::ports::{ConversationStore, StoreError};
use relay_core::reference::TextRef;

/// How many random references to try before giving up on finding a free one (with
/// 18,432 of them, only a relay with thousands of live texts gets near it).
const REF_TRIES: usize = 20;

/// The least a reference (and its phone's item) is held: the longest acknowledgement
/// window (`ACK_TIMEOUT_SECS` is at most 900) and a minute for the send, so an `ACK`
/// finds its text whatever `REPLY_WINDOW_SECS` is.
pub const MIN_HOLD_SECS: u64 = 900 + 60;

/// Why a text could not get its reference.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every reference tried is held by a live text: thousands of texts are live
    /// within the reply window.
    #[error("no free text reference in {tries} tries")]
    NoFreeReference { tries: usize },
}

impl ReferenceError {
    /// What failed, without a service's own text: for alerts and answers.
    pub fn summary(&self) -> String {
        match self {
            ReferenceError::Store(e) => e.summary(),
            ReferenceError::NoFreeReference { .. } => self.to_string(),
        }
    }
}

/// References and conversations, borrowed for one invocation.
#[derive(Clone, Copy)]
pub struct Replies<'a> {
    pub store: &'a dyn ConversationStore,
    /// `REPLY_WINDOW_SECS`.
    pub window_secs: u64,
}

impl Replies<'_> {
    /// How long from now a reference and its phone's item are kept.
    fn hold_secs(&self) -> i64 {
        (self.window_secs + 60).max(MIN_HOLD_SECS) as i64
    }

    /// A reference for a text about to go out for message `sid`, held for the reply
    /// window from now (with a minute for the send), and never less than an `ACK`
    /// needs.
    pub async fn reserve(&self, sid: &MessageSid, now: i64) -> Result<TextRef, ReferenceError> {
        let expires_at = now + self.hold_secs();
        for _ in 0..REF_TRIES {
            let reference = TextRef::random();
            if self
                .store
                .reserve_ref(&reference, sid, now, expires_at)
                .await?
            {
                return Ok(reference);
            }
        }
        Err(ReferenceError::NoFreeReference { tries: REF_TRIES })
    }

    /// The text went to `to`: `to` may answer its driver for the window. A failure is
    /// logged, not fatal: the text is out, and the dispatcher can still answer through
    /// the API.
    pub async fn opened(
        &self,
        sid: &MessageSid,
        reference: &TextRef,
        driver: &Driver,
        to: &PhoneNumber,
        now: i64,
    ) {
        let conversation = Conversation {
            reference: reference.clone(),
            inbound_sid: sid.clone(),
            driver: driver.number.clone(),
            first_words: driver.first_words.clone(),
            sent_at: now,
        };
        let expires_at = now + self.hold_secs();
        if let Err(e) = self
            .store
            .open_conversation(to, &conversation, expires_at)
            .await
        {
            tracing::error!(message_sid = %sid, reference = %reference, to = %to.masked(), error = %e, "conversation not opened; the text cannot be answered by text");
        }
    }

    /// The conversations `phone` may answer now.
    pub async fn live(
        &self,
        phone: &PhoneNumber,
        now: i64,
    ) -> Result<Vec<Conversation>, StoreError> {
        let mut conversations = self.store.conversations(phone).await?;
        conversations.retain(|c| c.is_live(now, self.window_secs));
        Ok(conversations)
    }
}
