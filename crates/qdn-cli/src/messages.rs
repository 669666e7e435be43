//! `qdn messages`: recent drivers' texts, newest first, with what became of each,
//! from the message table's time-ordered indexes.

use serde_json::{Value, json};

use relay_core::fate::{Fate, MessageSummary};
use relay_core::ids::DispatcherId;
use relay_core::phone::mask;
use relay_core::stored::MAX_TTL_SECS;

use crate::cli::MessagesArgs;
use crate::context::{self, CommandResult, Done, Failure, Settings};
use crate::format::{age, iso, out, out_json, parse_duration, render, table, unix_now};
use crate::store::{Listed, Listing};

pub async fn run(settings: &Settings, args: MessagesArgs) -> CommandResult {
    let since_secs =
        parse_duration(&args.since).map_err(|e| Failure::usage(format!("--since: {e}")))?;
    if since_secs > MAX_TTL_SECS as u64 {
        return Err(Failure::usage(
            "--since: at most 366d (no message log lives longer)",
        ));
    }
    let dispatcher = args
        .dispatcher
        .as_deref()
        .map(|raw| {
            DispatcherId::parse(raw.trim())
                .map_err(|e| Failure::usage(format!("--dispatcher: {e}")))
        })
        .transpose()?;
    let now = unix_now();
    let listing = Listing {
        since: now - since_secs as i64,
        now,
        undelivered: args.undelivered,
        dispatcher,
        page_size: i32::from(args.page_size),
    };
    let aws = context::aws_config().await;
    let store = context::operator_store(&aws, settings);
    let result = store.messages(&listing).await?;

    if settings.json {
        let messages: Vec<Value> = result.texts.iter().map(listed_json).collect();
        out_json(&json!({
            "since": iso(listing.since),
            "since_unix": listing.since,
            "undelivered_only": listing.undelivered,
            "pages": result.pages,
            "messages": messages,
        }));
        return Ok(Done::Ok);
    }
    let what = if listing.undelivered {
        "texts that reached nobody"
    } else {
        "drivers' texts"
    };
    if result.texts.is_empty() {
        out(&format!(
            "no {what} since {} ({} ago)",
            iso(listing.since),
            args.since.trim()
        ));
        return Ok(Done::Ok);
    }
    let mut header = vec![
        "WHEN",
        "SID",
        "DRIVER",
        "TIER",
        "DISPATCHER",
        "DELIVERY",
        "FATE",
    ];
    if listing.undelivered {
        header.push("WHY");
    }
    let mut rows = table(&header);
    for listed in &result.texts {
        let mut row = match listed {
            Listed::Text(text) => vec![
                age(now, Some(text.received_at)),
                text.sid.to_string(),
                text.from.as_deref().map(mask).unwrap_or_else(|| "-".into()),
                text.tier.map_or("-", |tier| tier.as_str()).to_string(),
                text.dispatcher_id
                    .as_ref()
                    .map_or("-".into(), ToString::to_string),
                text.delivery_status
                    .map_or("-", |status| status.as_str())
                    .to_string(),
                fate_words(text),
            ],
            Listed::Damaged { key, damage } => vec![
                "?".into(),
                key.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("damaged item: {} {}", damage.attribute, damage.damage),
            ],
        };
        if listing.undelivered {
            row.push(match listed {
                Listed::Text(text) => text.failure.clone().unwrap_or_default(),
                Listed::Damaged { .. } => String::new(),
            });
        }
        rows.add_row(row);
    }
    out(&format!(
        "{} {what} since {} ({} ago), newest first\n{}",
        result.texts.len(),
        iso(listing.since),
        args.since.trim(),
        render(&mut rows)
    ));
    Ok(Done::Ok)
}

/// The fate as people read it: `acknowledged, escalated`, `undeliverable,
/// redelivered 1x`.
fn fate_words(text: &MessageSummary) -> String {
    let mut words = text.fate.to_string();
    if text.escalated && !matches!(text.fate, Fate::Unreached(_)) {
        words.push_str(", escalated");
    }
    if text.redeliveries > 0 {
        words.push_str(&format!(", redelivered {}x", text.redeliveries));
    }
    words
}

fn listed_json(listed: &Listed) -> Value {
    match listed {
        Listed::Text(text) => json!({
            "message_sid": text.sid.as_str(),
            "received_at": text.received_at,
            "received": iso(text.received_at),
            "driver": text.from.as_deref().map(mask),
            "tier": text.tier.map(|tier| tier.as_str()),
            "dispatcher_id": text.dispatcher_id.as_ref().map(|id| id.as_str()),
            "forwarded_sid": text.forwarded_sid.as_ref().map(|sid| sid.as_str()),
            "delivery_status": text.delivery_status.map(|status| status.as_str()),
            "fate": text.fate.as_str(),
            "unresolved": matches!(text.fate, Fate::Unreached(_)),
            "escalated": text.escalated,
            "redeliveries": text.redeliveries,
            "failure": text.failure,
            "state": text.state.as_str(),
        }),
        Listed::Damaged { key, damage } => json!({
            "message_sid": key,
            "damaged": {"attribute": damage.attribute, "problem": damage.damage.to_string()},
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_core::claim::RecordState;
    use relay_core::fate::Unreached;
    use relay_core::ids::MessageSid;

    fn text(fate: Fate, escalated: bool, redeliveries: u32) -> MessageSummary {
        MessageSummary {
            sid: MessageSid::parse("SM0123456789abcdef0123456789abcdef").unwrap(),
            state: RecordState::Forwarded,
            received_at: 1,
            from: Some("+16195550123".into()),
            to: None,
            tier: None,
            dispatcher_id: None,
            forwarded_sid: None,
            delivery_status: None,
            fate,
            escalated,
            redeliveries,
            failure: None,
            expires_at: None,
        }
    }

    #[test]
    fn a_fate_says_whether_it_was_escalated_or_redelivered() {
        assert_eq!(
            fate_words(&text(Fate::Acknowledged, true, 0)),
            "acknowledged, escalated"
        );
        assert_eq!(
            fate_words(&text(Fate::Unreached(Unreached::OutcomeUnknown), true, 2)),
            "outcome unknown, redelivered 2x"
        );
        assert_eq!(
            fate_words(&text(Fate::AwaitingAck, false, 0)),
            "awaiting ack"
        );
    }

    #[test]
    fn json_masks_the_driver() {
        let value = listed_json(&Listed::Text(Box::new(text(Fate::Sent, false, 0))));
        assert_eq!(value["driver"], mask("+16195550123"));
        assert_ne!(value["driver"], "+16195550123");
        assert_eq!(value["unresolved"], false);
    }
}
