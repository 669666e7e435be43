//! Delivery statuses, as Twilio's status callbacks report them, and the order they
//! come in, so a late or redelivered callback never moves a message backwards.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::MessageSid;
use crate::sms::{FieldError, Form};

/// A message's status, stored as Twilio's lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Accepted,
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Read,
    Canceled,
    PartiallyDelivered,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 11] = [
        DeliveryStatus::Accepted,
        DeliveryStatus::Scheduled,
        DeliveryStatus::Queued,
        DeliveryStatus::Sending,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Undelivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Read,
        DeliveryStatus::Canceled,
        DeliveryStatus::PartiallyDelivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Accepted => "accepted",
            DeliveryStatus::Scheduled => "scheduled",
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Undelivered => "undelivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Canceled => "canceled",
            DeliveryStatus::PartiallyDelivered => "partially_delivered",
        }
    }

    /// Twilio's name, any case; `None` for a status we do not know.
    pub fn parse(raw: &str) -> Option<DeliveryStatus> {
        let raw = raw.trim();
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(raw))
    }

    /// How far along a message is: a status may only replace one of a lower rank.
    /// Final statuses share a rank, so the first final word stands (`read` is the
    /// one step after `delivered`).
    pub fn rank(self) -> u8 {
        match self {
            DeliveryStatus::Accepted | DeliveryStatus::Scheduled => 0,
            DeliveryStatus::Queued => 1,
            DeliveryStatus::Sending => 2,
            DeliveryStatus::Sent => 3,
            DeliveryStatus::Delivered
            | DeliveryStatus::Undelivered
            | DeliveryStatus::Failed
            | DeliveryStatus::Canceled
            | DeliveryStatus::PartiallyDelivered => 4,
            DeliveryStatus::Read => 5,
        }
    }

    /// The text did not reach the phone: the message moves on to the next tier.
    pub fn is_failure(self) -> bool {
        matches!(self, DeliveryStatus::Undelivered | DeliveryStatus::Failed)
    }

    /// The text reached the phone.
    pub fn is_delivered(self) -> bool {
        matches!(self, DeliveryStatus::Delivered | DeliveryStatus::Read)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One status callback: which forwarded message, its new status, Twilio's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub sid: MessageSid,
    pub status: DeliveryStatus,
    pub error_code: Option<u32>,
}

impl StatusUpdate {
    /// Reads a callback's form. `Ok(None)` for a status Twilio may add that we do not
    /// know: it is logged and answered `200`, as there is nothing to do with it.
    pub fn from_form(form: &[(String, String)]) -> Result<Option<Self>, FieldError> {
        let form = Form(form);
        let sid =
            MessageSid::parse(form.required("MessageSid")?).map_err(|e| FieldError::Invalid {
                field: "MessageSid",
                detail: e.to_string(),
            })?;
        let raw_status = form.required("MessageStatus")?;
        let error_code = match form
            .param("ErrorCode")
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            None => None,
            Some(code) => Some(code.parse::<u32>().map_err(|_| FieldError::Invalid {
                field: "ErrorCode",
                detail: "not a number".into(),
            })?),
        };
        let Some(status) = DeliveryStatus::parse(raw_status) else {
            tracing::warn!(message_sid = %sid, status = raw_status, "status callback with a status we do not know; ignored");
            return Ok(None);
        };
        Ok(Some(StatusUpdate {
            sid,
            status,
            error_code,
        }))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_round_trip() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert_eq!(
            DeliveryStatus::parse(" Delivered "),
            Some(DeliveryStatus::Delivered)
        );
        assert_eq!(DeliveryStatus::parse("lost"), None);
    }

    #[test]
    fn statuses_only_move_forward() {
        use DeliveryStatus::*;
        assert!(Queued.rank() < Sent.rank() && Sent.rank() < Delivered.rank());
        // `sent` after `delivered` changes nothing; one final word does not replace
        // another; `read` follows `delivered`.
        assert!(Sent.rank() < Delivered.rank());
        assert_eq!(Delivered.rank(), Failed.rank());
        assert!(Delivered.rank() < Read.rank());
        assert!(Undelivered.is_failure() && Failed.is_failure() && !Delivered.is_failure());
    }

    proptest! {
        #[test]
        fn any_text_is_a_known_status_or_none(raw in "\\PC{0,30}") {
            if let Some(status) = DeliveryStatus::parse(&raw) {
                prop_assert!(raw.trim().eq_ignore_ascii_case(status.as_str()));
            }
        }
    }
}
