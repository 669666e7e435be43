//! What became of one message, from its message-log items: for `qdn trail`.

use serde::Serialize;

use relay_core::phone::mask;

/// One thing that happened to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailEvent {
    /// Unix seconds, when the log knows.
    pub at: Option<i64>,
    pub event: String,
    pub detail: String,
}

/// A message's story, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trail {
    pub message_sid: String,
    /// `inbound` (a driver's or dispatcher's text) or `outbound` (a dispatcher's reply).
    pub kind: String,
    pub state: Option<String>,
    pub events: Vec<TrailEvent>,
}

/// The log's items as flat JSON (`serde_dynamo` of the DynamoDB items): the inbound
/// item and its forward items, or one outbound item.
pub fn build_trail(main: &serde_json::Value, forwards: &[serde_json::Value]) -> Trail {
    let text = |v: &serde_json::Value, name: &str| {
        v.get(name).and_then(|x| x.as_str()).map(str::to_string)
    };
    let num = |v: &serde_json::Value, name: &str| v.get(name).and_then(|x| x.as_i64());
    let sid = text(main, "message_sid").unwrap_or_default();
    let mut events = Vec::new();
    let kind = text(main, "record_type").unwrap_or_else(|| "inbound".into());
    if kind == "outbound" {
        let what = match (text(main, "job_ref"), text(main, "answered_by")) {
            (Some(job), _) => format!("job {job}"),
            (None, Some(by)) => format!(
                "answer by text from {by}, reference {}",
                text(main, "reference").unwrap_or_default()
            ),
            (None, None) => "no job reference".to_string(),
        };
        events.push(TrailEvent {
            at: num(main, "sent_at"),
            event: "sent".into(),
            detail: format!(
                "dispatcher {} to {} ({what})",
                text(main, "dispatcher_id").unwrap_or_default(),
                mask(&text(main, "to_number").unwrap_or_default()),
            ),
        });
        if let Some(status) = text(main, "delivery_status") {
            events.push(TrailEvent {
                at: None,
                event: "status".into(),
                detail: status,
            });
        }
        return Trail {
            message_sid: sid,
            kind,
            state: None,
            events,
        };
    }
    events.push(TrailEvent {
        at: num(main, "received_at"),
        event: "received".into(),
        detail: format!(
            "from {} to {}",
            mask(&text(main, "from_number").unwrap_or_default()),
            text(main, "to_number").unwrap_or_default()
        ),
    });
    if let Some(command) = text(main, "command") {
        events.push(TrailEvent {
            at: num(main, "received_at"),
            event: "command".into(),
            detail: command,
        });
    }
    if let Some(serde_json::Value::Array(attempts)) = main.get("attempts") {
        for attempt in attempts {
            let code = num(attempt, "error_code")
                .map(|c| format!(" (Twilio {c})"))
                .unwrap_or_default();
            events.push(TrailEvent {
                at: None,
                event: "attempt".into(),
                detail: format!(
                    "{} {}: {}{code}",
                    text(attempt, "tier").unwrap_or_default(),
                    text(attempt, "to").unwrap_or_default(),
                    text(attempt, "outcome").unwrap_or_default()
                ),
            });
        }
    }
    let mut forwards: Vec<&serde_json::Value> = forwards.iter().collect();
    forwards.sort_by_key(|f| num(f, "sent_at").unwrap_or_default());
    for forward in forwards {
        let moved = text(forward, "moved_on_from")
            .map(|from| format!(", moved on from {from}"))
            .unwrap_or_default();
        events.push(TrailEvent {
            at: num(forward, "sent_at"),
            event: "forwarded".into(),
            detail: format!(
                "{} to {} as {}{moved}",
                text(forward, "routing_decision").unwrap_or_default(),
                mask(&text(forward, "to_number").unwrap_or_default()),
                text(forward, "message_sid").unwrap_or_default()
            ),
        });
        if let Some(status) = text(forward, "delivery_status") {
            let code = num(forward, "delivery_error_code")
                .map(|c| format!(" (Twilio {c})"))
                .unwrap_or_default();
            events.push(TrailEvent {
                at: num(forward, "status_at").or(num(forward, "sent_at")),
                event: "status".into(),
                detail: format!(
                    "{}: {status}{code}",
                    text(forward, "message_sid").unwrap_or_default()
                ),
            });
        }
    }
    if let Some(reason) = text(main, "cascade_reason") {
        events.push(TrailEvent {
            at: num(main, "forwarded_at"),
            event: "decision".into(),
            detail: format!(
                "{} ({reason})",
                text(main, "routing_decision").unwrap_or_default()
            ),
        });
    }
    if let Some(ack) = text(main, "ack_state") {
        let at = num(main, "acknowledged_at").or(num(main, "escalated_at"));
        events.push(TrailEvent {
            at,
            event: "acknowledgement".into(),
            detail: format!(
                "{ack} (reference {})",
                text(main, "ack_ref").unwrap_or_default()
            ),
        });
    }
    if let Some(serde_json::Value::Array(answers)) = main.get("answers") {
        for answer in answers {
            events.push(TrailEvent {
                at: num(answer, "sent_at"),
                event: "answered".into(),
                detail: format!(
                    "{} by text, reference {}, as {}",
                    text(answer, "answered_by").unwrap_or_default(),
                    text(answer, "reference").unwrap_or_default(),
                    text(answer, "message_sid").unwrap_or_default()
                ),
            });
        }
    }
    if let Some(failure) = text(main, "failure") {
        events.push(TrailEvent {
            at: None,
            event: "failure".into(),
            detail: failure,
        });
    }
    if let Some(at) = num(main, "redelivered_at") {
        events.push(TrailEvent {
            at: Some(at),
            event: "redelivered".into(),
            detail: format!(
                "sent again by an operator (qdn redeliver, {} time(s))",
                num(main, "redeliveries").unwrap_or(1)
            ),
        });
    }
    // Still unresolved: said last, with what to do about it.
    if main.get("unresolved_day").is_some() {
        events.push(TrailEvent {
            at: None,
            event: "reached nobody".into(),
            detail: format!(
                "{}: listed by `qdn messages --undelivered`; `qdn redeliver {sid}` sends it again once the cause is mended",
                text(main, "fate").unwrap_or_else(|| "undeliverable".into()).replace('_', " ")
            ),
        });
    }
    // Oldest first; events the log has no time for keep their place after the timed
    // ones before them.
    let mut last = i64::MIN;
    let mut keyed: Vec<(i64, usize, TrailEvent)> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            last = e.at.unwrap_or(last);
            (last, i, e)
        })
        .collect();
    keyed.sort_by_key(|(at, i, _)| (*at, *i));
    Trail {
        message_sid: sid,
        kind: "inbound".into(),
        state: text(main, "state"),
        events: keyed.into_iter().map(|(_, _, e)| e).collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_moved_on_message_reads_in_order() {
        let inbound = json!({
            "message_sid": "SMa", "record_type": "inbound", "state": "forwarded",
            "received_at": 100, "from_number": "+16195550123", "to_number": "+15005550006",
            "routing_decision": "backup", "cascade_reason": "primary: delivery failed (Twilio error 30003)",
            "forwarded_at": 105,
            "attempts": [
                {"tier": "primary", "to": "***0100", "outcome": "sent"},
                {"tier": "primary", "to": "***0100", "outcome": "delivery_failed", "error_code": 30003},
                {"tier": "backup", "to": "***4807", "outcome": "sent"}
            ]
        });
        let forwards = [
            json!({"message_sid": "SMb", "routing_decision": "backup", "to_number": "+18583354807",
                   "sent_at": 105, "delivery_status": "delivered", "status_at": 110, "moved_on_from": "SMp"}),
            json!({"message_sid": "SMp", "routing_decision": "primary", "to_number": "+18585550100",
                   "sent_at": 100, "delivery_status": "undelivered", "delivery_error_code": 30003, "status_at": 104}),
        ];
        let trail = build_trail(&inbound, &forwards);
        let events: Vec<&str> = trail.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events[0], "received");
        assert!(events.contains(&"attempt") && events.contains(&"decision"));
        let forwarded: Vec<&TrailEvent> = trail
            .events
            .iter()
            .filter(|e| e.event == "forwarded")
            .collect();
        assert!(forwarded[0].detail.contains("SMp") && forwarded[1].detail.contains("SMb"));
        assert!(forwarded[1].detail.contains("moved on from SMp"));
        let all = serde_json::to_string(&trail).unwrap();
        assert!(!all.contains("6195550123"), "numbers are masked: {all}");
        let times: Vec<i64> = trail.events.iter().filter_map(|e| e.at).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    #[test]
    fn a_text_that_reached_nobody_says_so_last_and_a_redelivery_is_on_the_trail() {
        let inbound = json!({
            "message_sid": "SMa", "record_type": "inbound", "state": "undelivered",
            "received_at": 100, "from_number": "+16195550123", "to_number": "+15005550006",
            "failure": "primary: refused", "fate": "undeliverable", "unresolved_day": "1970-01-01"
        });
        let trail = build_trail(&inbound, &[]);
        let last = trail.events.last().unwrap();
        assert_eq!(last.event, "reached nobody");
        assert!(
            last.detail.starts_with("undeliverable: "),
            "{}",
            last.detail
        );
        assert!(last.detail.contains("qdn redeliver SMa"), "{}", last.detail);

        let redelivered = json!({
            "message_sid": "SMa", "record_type": "inbound", "state": "forwarded",
            "received_at": 100, "redelivered_at": 900, "redeliveries": 1
        });
        let trail = build_trail(&redelivered, &[]);
        let event = trail
            .events
            .iter()
            .find(|e| e.event == "redelivered")
            .unwrap();
        assert_eq!(event.at, Some(900));
        assert!(trail.events.iter().all(|e| e.event != "reached nobody"));
    }

    #[test]
    fn an_answer_by_text_is_on_the_drivers_trail_with_who_and_when() {
        let inbound = json!({
            "message_sid": "SMa", "record_type": "inbound", "state": "forwarded",
            "received_at": 100, "from_number": "+16195550123", "to_number": "+15005550006",
            "routing_decision": "primary", "cascade_reason": "primary available", "forwarded_at": 101,
            "answers": [{"message_sid": "SMz", "answered_by": "sergio-main", "reference": "K7Q", "sent_at": 160}]
        });
        let trail = build_trail(&inbound, &[]);
        let answered = trail.events.last().unwrap();
        assert_eq!(answered.event, "answered");
        assert_eq!(answered.at, Some(160));
        assert_eq!(
            answered.detail,
            "sergio-main by text, reference K7Q, as SMz"
        );
        let outbound = json!({
            "message_sid": "SMz", "record_type": "outbound", "dispatcher_id": "sergio-main",
            "to_number": "+16195550123", "answered_by": "sergio-main", "reference": "K7Q", "sent_at": 160
        });
        let trail = build_trail(&outbound, &[]);
        assert_eq!(
            trail.events[0].detail,
            "dispatcher sergio-main to ***0123 (answer by text from sergio-main, reference K7Q)"
        );
    }
}
