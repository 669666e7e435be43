//! A dispatcher's answer by text reaches the driver: `K7Q on my way` (or a bare answer
//! with one driver waiting) from a phone the text went to, sent through the same path
//! as `sms-outbound`'s replies, once per dispatcher `MessageSid` (the inbound claim the
//! webhook already holds).
//!
//! The order matters: the text is acknowledged first (the same transition as
//! `ACK <REF>`, so a timer firing meanwhile finds it acknowledged and does nothing),
//! then the answer goes out. A timer that won the race has already sent the text on:
//! the answer still goes, and the dispatcher is told.

use relay_core::claim::{RecordState, StoredResponse};
use relay_core::conversation::{Addressee, Answer, AnswerOutcome, Conversation, Signer, address};
use relay_core::ids::{DispatcherId, MessageSid};
use relay_core::phone::PhoneNumber;
use relay_core::ports::{Answered, Finish, OutboundLog, OutboundRecord, SendError};
use relay_core::reference::TextRef;
use relay_core::reply::stamp_answer;
use relay_core::sms::{InboundSms, MAX_SMS_CHARS};

use super::acks::AckOutcome;
use super::forwarding::Held;
use super::{RelayError, RelayPorts};
use crate::metric;
use crate::outbound::DriverTexts;

/// One dispatcher's answer, as the relay read it.
pub struct AnswerText<'a> {
    pub sms: &'a InboundSms,
    pub from: &'a PhoneNumber,
    pub signer: Signer,
    /// The dispatcher items whose own phone sent it: each checks in when it is sent.
    pub check_ins: Vec<DispatcherId>,
    pub answer: Answer,
    /// How long the claim's record (and the answer's log item) are kept.
    pub log_ttl_secs: i64,
}

impl RelayPorts<'_> {
    /// Answers the driver `text` is for, or says why not; the claim `claim` is finished
    /// with the dispatcher's reply (a redelivery replays it), or given back when
    /// nothing went out and a retry may send.
    pub(crate) async fn answer(
        &self,
        text: AnswerText<'_>,
        claim: &Held,
        log: &dyn OutboundLog,
        now: i64,
    ) -> Result<AnswerOutcome, RelayError> {
        let outcome = self.decide_and_send(&text, log, now).await?;
        let reply = StoredResponse {
            status: 200,
            body: outcome.reply(),
        };
        let finish = Finish {
            state: match outcome {
                AnswerOutcome::MaybeSent { .. } => RecordState::OutcomeUnknown,
                _ => RecordState::Answered,
            },
            response: Some(&reply),
            // Why nothing (or maybe something) went out, for the trail; a sent answer
            // is on the driver's trail instead.
            detail: match outcome {
                AnswerOutcome::Sent { .. } => None,
                _ => Some(outcome.name()),
            },
            expires_at: now + text.log_ttl_secs,
        };
        match outcome {
            // Nothing went out and Twilio may take it later: the same text may retry.
            AnswerOutcome::NotSent { retry: true, .. } => self.release(claim).await,
            _ => self.finish(claim, &finish).await,
        }
        match &outcome {
            AnswerOutcome::Sent { .. } => metric::answer_sent(),
            refused => metric::answer_refused(refused.name()),
        }
        let (driver, answered_sid) = match &outcome {
            AnswerOutcome::Sent { driver, sid, .. } => (Some(driver.masked()), Some(sid.as_str())),
            AnswerOutcome::TwilioRefused { driver, .. }
            | AnswerOutcome::NotSent { driver, .. }
            | AnswerOutcome::MaybeSent { driver, .. } => (Some(driver.masked()), None),
            _ => (None, None),
        };
        tracing::info!(
            answer_outcome = outcome.name(),
            dispatcher = %text.signer,
            reference = outcome.reference().map(TextRef::as_str),
            message_sid = %text.sms.sid,
            from = %text.from.masked(),
            driver,
            answered_sid,
            "dispatcher answer"
        );
        Ok(outcome)
    }

    async fn decide_and_send(
        &self,
        text: &AnswerText<'_>,
        log: &dyn OutboundLog,
        now: i64,
    ) -> Result<AnswerOutcome, RelayError> {
        let window_secs = self.replies.window_secs;
        let live = self.replies.live(text.from, now).await?;
        let (driver, reference, texts) = match address(text.answer.reference.as_ref(), &live, now) {
            Addressee::Driver {
                driver,
                reference,
                texts,
            } => (driver, reference, texts),
            Addressee::Several(waiting) => return Ok(AnswerOutcome::Several(waiting)),
            Addressee::NobodyWaiting => {
                return Ok(AnswerOutcome::NobodyWaiting { window_secs });
            }
            Addressee::NotLive(reference) => {
                return Ok(AnswerOutcome::NotLive {
                    reference,
                    window_secs,
                });
            }
        };
        let words = text.answer.words.as_str();
        if words.is_empty() {
            return Ok(AnswerOutcome::Empty {
                reference: Some(reference),
            });
        }
        let stamped = stamp_answer(words, &text.signer, now);
        let length = stamped.chars().count();
        if length > MAX_SMS_CHARS {
            let stamp = length - words.chars().count();
            return Ok(AnswerOutcome::TooLong {
                chars: words.chars().count(),
                room: MAX_SMS_CHARS.saturating_sub(stamp),
            });
        }
        let escalated = self.acknowledge_answered(text.from, &texts, now).await?;
        let driver_texts = DriverTexts {
            sender: self.sender,
            dispatchers: self.dispatchers,
            log,
        };
        let sent = match driver_texts.send(&driver, &stamped).await {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(message_sid = %text.sms.sid, driver = %driver.masked(), %error, "answer not sent");
                return Ok(match error {
                    SendError::RecipientRefused { code, message } => AnswerOutcome::TwilioRefused {
                        driver,
                        reference,
                        code,
                        message,
                    },
                    SendError::Rejected { code, message, .. } => AnswerOutcome::NotSent {
                        driver,
                        reference,
                        why: format!("Twilio refused the request ({code}: {message})"),
                        retry: false,
                    },
                    SendError::Unavailable { .. } => AnswerOutcome::NotSent {
                        driver,
                        reference,
                        why: "Twilio could not be reached".to_string(),
                        retry: true,
                    },
                    SendError::OutcomeUnknown { .. } => {
                        AnswerOutcome::MaybeSent { driver, reference }
                    }
                });
            }
        };
        let record = OutboundRecord {
            sid: sent.sid.clone(),
            dispatcher_id: match &text.signer {
                Signer::Dispatcher(id) | Signer::Contact { of: id, .. } => id.clone(),
            },
            to: driver.clone(),
            job_ref: None,
            answers: Some(Answered {
                signer: text.signer.clone(),
                reference: reference.clone(),
                inbound_sids: texts.iter().map(|c| c.inbound_sid.clone()).collect(),
            }),
            delivery_status: sent.status,
            sent_at: now,
            expires_at: now + text.log_ttl_secs,
        };
        driver_texts
            .record_sent(&record, &text.check_ins, now, async {})
            .await;
        Ok(AnswerOutcome::Sent {
            driver,
            reference,
            sid: sent.sid,
            escalated,
        })
    }

    /// With acknowledgement on, acknowledges each text the answer answers, as `ACK`
    /// would. Whether any of them had already been sent on to the next tier.
    async fn acknowledge_answered(
        &self,
        from: &PhoneNumber,
        texts: &[Conversation],
        now: i64,
    ) -> Result<bool, RelayError> {
        let Some(acks) = &self.acks else {
            return Ok(false);
        };
        let mut escalated = false;
        for text in texts {
            match acks
                .acknowledge(from, Some(text.reference.as_str()), now)
                .await?
            {
                AckOutcome::Acknowledged { message_sid, .. } => {
                    self.forget_kept_text(&message_sid).await;
                }
                // Not awaiting this phone's ACK: acknowledged before, or its timer won
                // (read after the failed acknowledgement, so a won race shows).
                _ => {
                    let current = acks.store.current_ack(&text.inbound_sid).await?;
                    escalated |= current.moved_past(&text.reference);
                }
            }
        }
        Ok(escalated)
    }

    /// An acknowledged text is never sent again: its kept copy can go.
    pub(crate) async fn forget_kept_text(&self, sid: &MessageSid) {
        if let Err(e) = self.log.resolved(sid).await {
            tracing::error!(message_sid = %sid, error = %e, "could not drop the kept text; it expires with the message");
        }
    }
}
