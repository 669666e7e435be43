//! The dispatcher state item, as the seed's schema stores it plus `phone` and `on_duty`.

use serde::{Deserialize, Serialize};

use crate::ids::DispatcherId;

/// How long message-log entries live when the item does not say (one day).
pub const DEFAULT_MESSAGE_LOG_TTL_SECS: u64 = 86_400;

/// One item of `STATE_TABLE`. Numbers stay as typed; they are normalised on use so a
/// bad one is reported where it matters (as a skipped tier) instead of hiding the item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatcherRecord {
    pub dispatcher_id: DispatcherId,
    #[serde(default)]
    pub phone: Option<String>,
    /// Absent means not available: a dispatcher is never assumed to be there.
    #[serde(default)]
    pub available: bool,
    #[serde(default)]
    pub last_heartbeat: Option<i64>,
    #[serde(default)]
    pub backup_dispatcher: Option<String>,
    #[serde(default)]
    pub tertiary_contact: Option<String>,
    #[serde(default)]
    pub message_log_ttl: Option<u64>,
    /// The dispatcher's own switch; absent means on duty.
    #[serde(default)]
    pub on_duty: Option<bool>,
}

impl DispatcherRecord {
    pub fn is_on_duty(&self) -> bool {
        self.on_duty.unwrap_or(true)
    }

    pub fn message_log_ttl_secs(&self) -> u64 {
        self.message_log_ttl
            .filter(|ttl| *ttl > 0)
            .unwrap_or(DEFAULT_MESSAGE_LOG_TTL_SECS)
    }
}
