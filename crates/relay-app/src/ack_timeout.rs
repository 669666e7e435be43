//! `ack-timeout`: acknowledgement timers that come due. A timer whose text is still
//! awaiting its ACK escalates it to the next tier; any other (acknowledged, moved on
//! meanwhile, a duplicate or late copy) does nothing. SQS delivers at least once, so
//! the transition is a conditional write on the message-log item, and the move itself
//! is the one-per-text move-on claim.

use crate::relay::RelayError;
use crate::relay::acks::Acks;
use crate::relay::move_on::{MoveCause, MoveOnService, Moved};
use relay_core::ack::AckTimer;
use relay_core::ports::MessageLog;

/// What a due timer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOutcome {
    /// Nothing to do: the text was acknowledged, moved on, or this is a copy.
    Stale,
    Escalated(Moved),
}

/// Handles one due timer.
pub async fn on_timer(
    log: &dyn MessageLog,
    acks: &Acks<'_>,
    move_on: &MoveOnService<'_>,
    timer: &AckTimer,
    now: i64,
) -> Result<TimerOutcome, RelayError> {
    let Some(forward) = log.forwarded(&timer.forwarded_sid, now).await? else {
        tracing::info!(forwarded_sid = %timer.forwarded_sid, "timer for a text the log no longer has; nothing to do");
        return Ok(TimerOutcome::Stale);
    };
    if !acks
        .store
        .begin_escalation(&timer.inbound_sid, &timer.forwarded_sid, now)
        .await?
    {
        tracing::info!(message_sid = %timer.inbound_sid, forwarded_sid = %timer.forwarded_sid, ack_ref = %timer.ack_ref, "timer for a text acknowledged or moved on; nothing to do");
        return Ok(TimerOutcome::Stale);
    }
    let cause = MoveCause::NotAcknowledged {
        window_secs: acks.settings.timeout_secs,
    };
    let moved = move_on.move_on(&forward, cause, now).await?;
    tracing::info!(message_sid = %timer.inbound_sid, ack_ref = %timer.ack_ref, outcome = ?moved, "acknowledgement timer handled");
    Ok(TimerOutcome::Escalated(moved))
}
