//! What became of a driver's text, as `qdn messages` lists it and `qdn redeliver`
//! judges it: one [`Fate`] read from the text's inbound item, and the texts that
//! reached nobody ([`Unreached`]), which the message table indexes apart.

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cascade::Tier;
use crate::claim::RecordState;
use crate::delivery::DeliveryStatus;
use crate::ids::{DispatcherId, MessageSid};

/// How a text that reached nobody ended; stored as `fate` while it is unresolved (the
/// sparse index of such texts is keyed by `unresolved_day`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unreached {
    /// No tier took it: every number refused, or Twilio could not be used.
    Undeliverable,
    /// Twilio took the request and never answered: it may or may not be out.
    OutcomeUnknown,
    /// Past the last tier (and round), nobody acknowledged it.
    Unacknowledged,
}

impl Unreached {
    pub const ALL: [Unreached; 3] = [
        Unreached::Undeliverable,
        Unreached::OutcomeUnknown,
        Unreached::Unacknowledged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Unreached::Undeliverable => "undeliverable",
            Unreached::OutcomeUnknown => "outcome_unknown",
            Unreached::Unacknowledged => "unacknowledged",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|fate| fate.as_str() == raw)
    }

    /// The state the inbound claim is left in when its first try ends so: an
    /// undeliverable text is given back (a retry of the webhook may send it), one
    /// that may be out is not (only an operator's redelivery takes it over).
    pub fn claim_state(self) -> RecordState {
        match self {
            Unreached::Undeliverable | Unreached::Unacknowledged => RecordState::Undelivered,
            Unreached::OutcomeUnknown => RecordState::OutcomeUnknown,
        }
    }
}

impl fmt::Display for Unreached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

/// What became of a driver's text, as far as the log knows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Being handled right now (or its handler died and its claim has not lapsed).
    InProgress,
    /// Out to a dispatcher; no delivery report yet.
    Sent,
    /// Twilio reported it delivered (acknowledgement off).
    Delivered,
    /// Out, awaiting the dispatcher's ACK.
    AwaitingAck,
    Acknowledged,
    /// A dispatcher answered the driver.
    Answered,
    /// It reached nobody.
    Unreached(Unreached),
}

impl Fate {
    /// Whether someone got the text: a redelivery would double it.
    pub fn someone_got_it(self) -> bool {
        matches!(self, Fate::Delivered | Fate::Acknowledged | Fate::Answered)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Fate::InProgress => "in_progress",
            Fate::Sent => "sent",
            Fate::Delivered => "delivered",
            Fate::AwaitingAck => "awaiting_ack",
            Fate::Acknowledged => "acknowledged",
            Fate::Answered => "answered",
            Fate::Unreached(unreached) => unreached.as_str(),
        }
    }
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

/// One driver's text as its inbound item tells it, for listings and redelivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    pub sid: MessageSid,
    pub state: RecordState,
    pub received_at: i64,
    /// The driver's number as Twilio sent it (mask it to show it).
    pub from: Option<String>,
    /// The QDN number it was sent to.
    pub to: Option<String>,
    /// Where the text is now (the tier of its last try).
    pub tier: Option<Tier>,
    /// The primary its cascade started from.
    pub dispatcher_id: Option<DispatcherId>,
    /// The text out now.
    pub forwarded_sid: Option<MessageSid>,
    pub delivery_status: Option<DeliveryStatus>,
    pub fate: Fate,
    /// It went on to another tier (or round) because nobody acknowledged it.
    pub escalated: bool,
    /// How often an operator redelivered it.
    pub redeliveries: u32,
    /// Why it reached nobody, in words (never a body).
    pub failure: Option<String>,
    pub expires_at: Option<i64>,
}

/// Why a text is not sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No inbound text of that SID is in the log (or it has expired).
    Unknown,
    /// The SID is a dispatcher's own text (a command or an answer), not a driver's.
    NotADriversText,
    /// Someone got it: a redelivery would double it.
    SomeoneGotIt(Fate),
    /// It is still on its way (out, or being handled).
    OnItsWay(Fate),
    /// Another redelivery (or the webhook's retry) holds it right now.
    BeingRedelivered,
    /// Its words are no longer kept (its log expired, or it was written before
    /// texts that reached nobody kept them).
    TextGone,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unknown => f.write_str("no driver's text with that SID is in the message log"),
            Refusal::NotADriversText => f.write_str(
                "it is a dispatcher's own text (a command or an answer), not a driver's",
            ),
            Refusal::SomeoneGotIt(fate) => write!(
                f,
                "someone got it ({fate}): sending it again would double it"
            ),
            Refusal::OnItsWay(fate) => write!(
                f,
                "it is still on its way ({fate}); if it reaches nobody, it is listed by `qdn messages --undelivered`"
            ),
            Refusal::BeingRedelivered => f.write_str("someone else is sending it again right now"),
            Refusal::TextGone => f.write_str(
                "its words are no longer kept (its log expired), so it cannot be sent again",
            ),
        }
    }
}

impl MessageSummary {
    /// Whether an operator may send it again: only a text that reached nobody.
    pub fn redeliverable(&self) -> Result<Unreached, Refusal> {
        match self.state {
            RecordState::Command | RecordState::Answered => {
                return Err(Refusal::NotADriversText);
            }
            _ => {}
        }
        match self.fate {
            Fate::Unreached(unreached) => Ok(unreached),
            fate if fate.someone_got_it() => Err(Refusal::SomeoneGotIt(fate)),
            fate => Err(Refusal::OnItsWay(fate)),
        }
    }

    /// A driver's text (not a dispatcher's command or answer, which are logged too).
    pub fn is_drivers_text(&self) -> bool {
        !matches!(self.state, RecordState::Command | RecordState::Answered)
    }
}

/// The day bucket of the time-ordered index (`msg_day`, `unresolved_day`): the UTC
/// date, `2026-12-02`. A day per partition keeps each query to one key and a range.
pub fn day_bucket(unix: i64) -> String {
    let at = Timestamp::from_second(unix.clamp(0, crate::stored::MAX_UNIX_TIME))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    at.to_zoned_datetime(TimeZone::UTC).date().to_string()
}

/// The day buckets from `since` to `now`, newest first: what a listing queries.
pub fn day_buckets(since: i64, now: i64) -> Vec<String> {
    let since = since.max(0);
    let mut days = Vec::new();
    let mut day_start = now - now.rem_euclid(86_400);
    let since_day = since - since.rem_euclid(86_400);
    while day_start >= since_day {
        days.push(day_bucket(day_start));
        day_start -= 86_400;
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_bucket(1_795_478_400), "2026-11-24");
        assert_eq!(day_bucket(0), "1970-01-01");
        assert_eq!(day_bucket(-5), "1970-01-01");
    }

    #[test]
    fn buckets_run_newest_first_from_now_back_to_the_day_of_since() {
        let now = 1_795_478_400 + 3600; // 2026-11-24T01:00Z
        assert_eq!(day_buckets(now - 7200, now), ["2026-11-24", "2026-11-23"]);
        assert_eq!(day_buckets(now - 60, now), ["2026-11-24"]);
    }

    #[test]
    fn only_a_text_that_reached_nobody_may_be_sent_again() {
        let summary = |state, fate| MessageSummary {
            sid: MessageSid::parse("SM0123456789abcdef0123456789abcdef").unwrap(),
            state,
            received_at: 1,
            from: None,
            to: None,
            tier: None,
            dispatcher_id: None,
            forwarded_sid: None,
            delivery_status: None,
            fate,
            escalated: false,
            redeliveries: 0,
            failure: None,
            expires_at: None,
        };
        for unreached in Unreached::ALL {
            assert_eq!(
                summary(RecordState::Forwarded, Fate::Unreached(unreached)).redeliverable(),
                Ok(unreached)
            );
        }
        for fate in [Fate::Delivered, Fate::Acknowledged, Fate::Answered] {
            assert_eq!(
                summary(RecordState::Forwarded, fate).redeliverable(),
                Err(Refusal::SomeoneGotIt(fate))
            );
        }
        for fate in [Fate::Sent, Fate::AwaitingAck, Fate::InProgress] {
            assert_eq!(
                summary(RecordState::Forwarded, fate).redeliverable(),
                Err(Refusal::OnItsWay(fate))
            );
        }
        assert_eq!(
            summary(RecordState::Command, Fate::Sent).redeliverable(),
            Err(Refusal::NotADriversText)
        );
    }

    proptest! {
        #[test]
        fn every_instant_falls_in_one_of_the_buckets_queried_for_it(
            now in 0i64..4_000_000_000, back in 0i64..40_000_000, into in 0i64..40_000_000
        ) {
            let since = now - back;
            let at = since + into.min(back);
            let days = day_buckets(since, now);
            prop_assert!(days.contains(&day_bucket(at)) || at < 0);
            // Newest first, no repeats.
            let mut sorted = days.clone();
            sorted.sort();
            sorted.reverse();
            sorted.dedup();
            prop_assert_eq!(sorted, days);
        }

        #[test]
        fn a_fate_name_reads_back(index in 0usize..3) {
            let fate = Unreached::ALL[index];
            prop_assert_eq!(Unreached::parse(fate.as_str()), Some(fate));
        }
    }
}
