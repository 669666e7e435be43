//! The walk down the tiers: one piece that every sender of a driver's text reuses
//! (the inbound webhook, the status callback that moves a failed delivery on, and the
//! acknowledgement timer to come). It tries each target of a plan in order and falls
//! through only when Twilio refuses a number for good, recording every try.

use crate::cascade::{Attempt, AttemptOutcome, Target};
use crate::ids::MessageSid;
use crate::ports::{OutgoingSms, SendError, SentSms, SmsSender};

/// The text a dispatcher receives, the same at every tier.
#[derive(Debug, Clone, Copy)]
pub struct Relayed<'a> {
    /// The driver's message this text relays (for the log lines).
    pub inbound_sid: &'a MessageSid,
    pub body: &'a str,
    pub media_urls: &'a [String],
    pub status_callback: Option<&'a str>,
}

/// How a walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkEnd {
    /// Twilio accepted the text for `target`.
    Sent { target: Target, sent: SentSms },
    /// Every target refused the number for good, or there was none.
    Exhausted,
    /// A failure no other tier would fix (credentials, sender, Twilio down), or a send
    /// whose outcome is unknown: the walk stops there.
    Stopped(SendError),
}

/// Every try, in order, and how the walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    pub attempts: Vec<Attempt>,
    pub end: WalkEnd,
}

/// Sends `text` to the first of `targets` that Twilio accepts.
pub async fn walk_tiers(sender: &dyn SmsSender, targets: &[Target], text: Relayed<'_>) -> Walk {
    let mut attempts = Vec::new();
    for target in targets {
        let outgoing = OutgoingSms {
            to: target.number.clone(),
            body: text.body.to_string(),
            media_urls: text.media_urls.to_vec(),
            status_callback: text.status_callback.map(str::to_string),
        };
        match sender.send(&outgoing).await {
            Ok(sent) => {
                attempts.push(attempt(target, AttemptOutcome::Sent, None, None));
                let end = WalkEnd::Sent {
                    target: target.clone(),
                    sent,
                };
                return Walk { attempts, end };
            }
            Err(SendError::RecipientRefused { code, message }) => {
                tracing::warn!(message_sid = %text.inbound_sid, tier = %target.tier, to = %target.number.masked(), code, "Twilio refused the number for good; trying the next tier");
                attempts.push(attempt(
                    target,
                    AttemptOutcome::Refused,
                    Some(code),
                    Some(message),
                ));
            }
            Err(error) => {
                return Walk {
                    attempts,
                    end: WalkEnd::Stopped(error),
                };
            }
        }
    }
    Walk {
        attempts,
        end: WalkEnd::Exhausted,
    }
}

fn attempt(
    target: &Target,
    outcome: AttemptOutcome,
    error_code: Option<u32>,
    message: Option<String>,
) -> Attempt {
    Attempt {
        tier: target.tier,
        to: target.number.masked(),
        outcome,
        error_code,
        message,
    }
}
