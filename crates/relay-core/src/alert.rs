//! Ops alerts, published to SNS.
//!
//! `Subject` names the event; `Message` is JSON with `type`, `dispatcher_id`, `reason`
//! and, when a message caused it, `message_sid`; `type` is also a message attribute
//! so subscribers can filter on it.

use std::fmt;

use serde::Serialize;

use crate::cascade::Tier;
use crate::ids::{DispatcherId, MessageSid};
use crate::problem::ConfigProblem;
use crate::rota::RotaProblem;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Cascade,
    DispatcherUnavailable,
    DispatcherAvailable,
    Undeliverable,
    /// A dispatcher item the relay cannot use as configured (the heartbeat finds it).
    ConfigurationProblem,
    /// Nobody acknowledged a text in time: it went to the next tier.
    AckTimeout,
    /// Past the last tier, nobody acknowledged the text.
    Unacknowledged,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Cascade => "cascade",
            AlertKind::DispatcherUnavailable => "dispatcher_unavailable",
            AlertKind::DispatcherAvailable => "dispatcher_available",
            AlertKind::Undeliverable => "undeliverable",
            AlertKind::ConfigurationProblem => "configuration_problem",
            AlertKind::AckTimeout => "ack_timeout",
            AlertKind::Unacknowledged => "unacknowledged",
        }
    }
}

/// Who an alert is about: a dispatcher item, or an item whose key is no dispatcher ID
/// (shown as [`crate::dispatcher::shown_key`] gives it). Either is a string in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AlertSubject {
    Dispatcher(DispatcherId),
    UnreadableItem(String),
}

impl fmt::Display for AlertSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertSubject::Dispatcher(id) => f.write_str(id.as_str()),
            AlertSubject::UnreadableItem(key) => f.write_str(key),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    #[serde(rename = "type")]
    pub kind: AlertKind,
    pub dispatcher_id: AlertSubject,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_sid: Option<MessageSid>,
    /// The tier the message went to, for cascades.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_decision: Option<Tier>,
    /// Tiers left out because their number cannot be normalised (configuration errors).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalid_numbers: Vec<String>,
    /// The dispatcher item's attribute a configuration problem is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<&'static str>,
    /// Unix seconds.
    pub at: i64,
}

impl Alert {
    pub fn new(
        kind: AlertKind,
        dispatcher_id: &DispatcherId,
        reason: impl Into<String>,
        at: i64,
    ) -> Self {
        Self::about(
            kind,
            AlertSubject::Dispatcher(dispatcher_id.clone()),
            reason,
            at,
        )
    }

    /// A configuration problem, naming its dispatcher (or unreadable item) and
    /// attribute.
    pub fn configuration_problem(problem: &ConfigProblem, at: i64) -> Self {
        let subject = match problem {
            ConfigProblem::Attribute { dispatcher_id, .. }
            | ConfigProblem::PrimaryMissing { dispatcher_id } => {
                AlertSubject::Dispatcher(dispatcher_id.clone())
            }
            ConfigProblem::Rota(RotaProblem::MissingDispatcher(dispatcher_id)) => {
                AlertSubject::Dispatcher(dispatcher_id.clone())
            }
            // The item at fault: an unreadable dispatcher item, or the rota's.
            ConfigProblem::Unreadable(_) | ConfigProblem::Rota(_) => {
                AlertSubject::UnreadableItem(problem.dispatcher().to_string())
            }
        };
        let mut alert = Self::about(
            AlertKind::ConfigurationProblem,
            subject,
            problem.to_string(),
            at,
        );
        alert.attribute = problem.attribute_name();
        alert
    }

    fn about(kind: AlertKind, subject: AlertSubject, reason: impl Into<String>, at: i64) -> Self {
        Alert {
            kind,
            dispatcher_id: subject,
            reason: reason.into(),
            message_sid: None,
            routing_decision: None,
            invalid_numbers: Vec::new(),
            attribute: None,
            at,
        }
    }

    pub fn for_message(mut self, message_sid: &MessageSid) -> Self {
        self.message_sid = Some(message_sid.clone());
        self
    }

    /// The tier a cascaded or escalated text went to.
    pub fn routed_to(mut self, tier: Tier) -> Self {
        self.routing_decision = Some(tier);
        self
    }

    pub fn with_invalid_numbers(mut self, invalid_numbers: Vec<String>) -> Self {
        self.invalid_numbers = invalid_numbers;
        self
    }

    /// SNS subjects are ASCII, at most 100 characters.
    pub fn subject(&self) -> String {
        let subject = match (self.kind, self.routing_decision) {
            (AlertKind::Cascade, Some(tier)) => {
                format!(
                    "QDN relay: message cascaded to {tier} ({})",
                    self.dispatcher_id
                )
            }
            (AlertKind::Cascade, None) => format!("QDN relay: cascade ({})", self.dispatcher_id),
            (AlertKind::DispatcherUnavailable, _) => {
                format!("QDN relay: dispatcher {} unavailable", self.dispatcher_id)
            }
            (AlertKind::DispatcherAvailable, _) => {
                format!("QDN relay: dispatcher {} available", self.dispatcher_id)
            }
            (AlertKind::Undeliverable, _) => {
                format!("QDN relay: message undeliverable ({})", self.dispatcher_id)
            }
            (AlertKind::ConfigurationProblem, _) => {
                format!("QDN relay: configuration problem ({})", self.dispatcher_id)
            }
            (AlertKind::AckTimeout, Some(tier)) => format!(
                "QDN relay: not acknowledged, escalated to {tier} ({})",
                self.dispatcher_id
            ),
            (AlertKind::AckTimeout, None) => {
                format!("QDN relay: not acknowledged ({})", self.dispatcher_id)
            }
            (AlertKind::Unacknowledged, _) => {
                format!("QDN relay: message unacknowledged ({})", self.dispatcher_id)
            }
        };
        subject
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .take(100)
            .collect()
    }

    pub fn message_json(&self) -> String {
        serde_json::to_string(self).expect("alerts serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sergio() -> DispatcherId {
        DispatcherId::parse("sergio-main").unwrap()
    }

    #[test]
    fn message_carries_the_contract_fields() {
        let sid = MessageSid::parse("SM0123456789abcdef0123456789abcdef").unwrap();
        let alert = Alert::new(AlertKind::Cascade, &sergio(), "primary off duty", 7)
            .for_message(&sid)
            .routed_to(Tier::Backup);
        let json: serde_json::Value = serde_json::from_str(&alert.message_json()).unwrap();
        assert_eq!(json["type"], "cascade");
        assert_eq!(json["dispatcher_id"], "sergio-main");
        assert_eq!(json["reason"], "primary off duty");
        assert_eq!(json["message_sid"], sid.as_str());
        assert_eq!(json["routing_decision"], "backup");
        assert_eq!(
            alert.subject(),
            "QDN relay: message cascaded to backup (sergio-main)"
        );
    }

    #[test]
    fn subject_is_short_ascii() {
        let long = DispatcherId::parse(&"d".repeat(64)).unwrap();
        let alert = Alert::new(AlertKind::Undeliverable, &long, "r", 0);
        let subject = alert.subject();
        assert!(subject.len() <= 100 && subject.is_ascii());
        let odd = Alert::configuration_problem(
            &ConfigProblem::Unreadable(crate::dispatcher::UnreadableDispatcher {
                key: Some("é".repeat(200)),
                damage: crate::stored::Damage::Missing,
            }),
            0,
        );
        let subject = odd.subject();
        assert!(subject.len() <= 100 && subject.is_ascii(), "{subject}");
        let no_sid = Alert::new(AlertKind::DispatcherAvailable, &sergio(), "r", 0);
        assert!(!no_sid.message_json().contains("message_sid"));
    }
}
