//! `qdn trail <MessageSid>`: what became of one message, from the message log.

use crate::cli::TrailArgs;
use crate::context::{self, CommandResult, Done, Failure, Settings};
use crate::format::{iso, out, out_json, render, table};

pub async fn run(settings: &Settings, args: TrailArgs) -> CommandResult {
    let sid = args.message_sid.trim();
    if sid.is_empty() {
        return Err(Failure::usage("the MessageSid is empty"));
    }
    let aws = context::aws_config().await;
    let log = context::operator_store(&aws, settings);
    let trail = log.trail(sid).await?.ok_or_else(|| {
        Failure::not_found(format!(
            "no message {sid:?} in {} (unknown, or its log has expired)",
            settings.message_table
        ))
    })?;
    if settings.json {
        out_json(&serde_json::to_value(&trail).map_err(|e| Failure::aws(e.to_string()))?);
        return Ok(Done::Ok);
    }
    let mut heading = format!("{} ({}", trail.message_sid, trail.kind);
    if let Some(state) = &trail.state {
        heading.push_str(&format!(", {state}"));
    }
    heading.push(')');
    if trail.message_sid != sid {
        heading.push_str(&format!("; {sid} is a text sent for it"));
    }
    let mut t = table(&["TIME (UTC)", "EVENT", "DETAIL"]);
    for event in &trail.events {
        t.add_row(vec![
            event.at.map(iso).unwrap_or_else(|| "-".into()),
            event.event.clone(),
            event.detail.clone(),
        ]);
    }
    out(&format!("{heading}\n{}", render(&mut t)));
    Ok(Done::Ok)
}
