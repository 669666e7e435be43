//! Ops alerts, published to SNS.
//!
//! `Subject` names the event; `Message` is JSON with `type`, `dispatcher_id`, `reason`
//! and, when a message caused it, `message_sid`; `type` is also a message attribute
//! so subscribers can filter on it.

use serde::Serialize;

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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    #[serde(rename = "type")]
    pub kind: AlertKind,
    pub dispatcher_id: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_sid: Option<String>,
    /// The tier the message went to, for cascades.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_decision: Option<String>,
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
    pub fn new(kind: AlertKind, dispatcher_id: &str, reason: impl Into<String>, at: i64) -> Self {
        Alert {
            kind,
            dispatcher_id: dispatcher_id.to_string(),
            reason: reason.into(),
            message_sid: None,
            routing_decision: None,
            invalid_numbers: Vec::new(),
            attribute: None,
            at,
        }
    }

    pub fn about_attribute(mut self, attribute: Option<&'static str>) -> Self {
        self.attribute = attribute;
        self
    }

    pub fn for_message(mut self, message_sid: &str) -> Self {
        self.message_sid = Some(message_sid.to_string());
        self
    }

    /// SNS subjects are ASCII, at most 100 characters.
    pub fn subject(&self) -> String {
        let subject = match (self.kind, self.routing_decision.as_deref()) {
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

    #[test]
    fn message_carries_the_contract_fields() {
        let mut alert = Alert::new(AlertKind::Cascade, "sergio-main", "primary off duty", 7)
            .for_message("SM0123");
        alert.routing_decision = Some("backup".into());
        let json: serde_json::Value = serde_json::from_str(&alert.message_json()).unwrap();
        assert_eq!(json["type"], "cascade");
        assert_eq!(json["dispatcher_id"], "sergio-main");
        assert_eq!(json["reason"], "primary off duty");
        assert_eq!(json["message_sid"], "SM0123");
        assert_eq!(json["routing_decision"], "backup");
        assert_eq!(
            alert.subject(),
            "QDN relay: message cascaded to backup (sergio-main)"
        );
    }

    #[test]
    fn subject_is_short_ascii() {
        let alert = Alert::new(AlertKind::Undeliverable, &"é".repeat(200), "r", 0);
        let subject = alert.subject();
        assert!(subject.len() <= 100 && subject.is_ascii());
        let no_sid = Alert::new(AlertKind::DispatcherAvailable, "x", "r", 0);
        assert!(!no_sid.message_json().contains("message_sid"));
    }
}
