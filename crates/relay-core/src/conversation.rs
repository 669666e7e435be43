//! Replies by text: a dispatcher answers a driver by texting the QDN number back.
//!
//! Every relayed text opens a [`Conversation`] on the phone it went to, under the text's
//! reference. A text from a dispatcher's phone is a keyword command or an [`Answer`]:
//! `K7Q on my way` answers the conversation `K7Q` of that phone, a bare `on my way` the
//! one driver waiting on it. [`address`] decides who an answer is for, and
//! [`AnswerOutcome::reply`] is what the dispatcher reads back (TwiML).

use std::fmt;

use crate::cascade::Tier;
use crate::dispatcher::DispatcherRecord;
use crate::ids::{DispatcherId, MessageSid};
use crate::phone::{CountryCode, PhoneNumber};
use crate::reference::TextRef;
use crate::sms::Command;

/// How much of a driver's text a waiting list shows.
pub const FIRST_WORDS_CHARS: usize = 30;

/// How many waiting drivers a TwiML answer lists before "and N more".
pub const MAX_LISTED: usize = 5;

/// The driver of a relayed text, as a conversation needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Driver {
    pub number: PhoneNumber,
    /// The start of their text, for a dispatcher choosing whom to answer.
    pub first_words: String,
}

/// The start of a driver's text, cut at a word where it can be: `Load ready at 5th…`.
pub fn first_words(body: &str) -> String {
    let words = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.chars().count() <= FIRST_WORDS_CHARS {
        return words;
    }
    let cut: String = words.chars().take(FIRST_WORDS_CHARS).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > FIRST_WORDS_CHARS / 2 => cut[..space].to_string(),
        _ => cut,
    };
    format!("{cut}…")
}

/// A relayed text a phone may answer: one per reference, on the phone it went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub reference: TextRef,
    pub inbound_sid: MessageSid,
    pub driver: PhoneNumber,
    pub first_words: String,
    /// When the text went to this phone (Unix seconds).
    pub sent_at: i64,
}

impl Conversation {
    /// Answerable for `window_secs` after its text was sent, acknowledged or not.
    pub fn is_live(&self, now: i64, window_secs: u64) -> bool {
        now < self.sent_at.saturating_add(window_secs as i64)
    }
}

/// Who signs an answer: the dispatcher item whose phone sent it, else the tier a
/// backup or tertiary number (with no item of its own) stands in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    Dispatcher(DispatcherId),
    Contact { of: DispatcherId, tier: Tier },
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Dispatcher(id) => write!(f, "{id}"),
            Signer::Contact { of, tier } => write!(f, "{of} {tier}"),
        }
    }
}

/// Who `from` is among the dispatcher items, if anyone: an item whose own `phone` it
/// is, else an item that names it as its backup or tertiary number. `None` means a
/// driver (the text is relayed). Items are taken in ID order, so the answer is stable.
pub fn signer_of(
    from: &PhoneNumber,
    dispatchers: &[DispatcherRecord],
    country: CountryCode,
) -> Option<Signer> {
    let is_from = |raw: &Option<String>| {
        raw.as_deref()
            .and_then(|raw| PhoneNumber::parse(raw, country).ok())
            .is_some_and(|number| number == *from)
    };
    let mut sorted: Vec<&DispatcherRecord> = dispatchers.iter().collect();
    sorted.sort_by(|a, b| a.dispatcher_id.as_str().cmp(b.dispatcher_id.as_str()));
    if let Some(record) = sorted.iter().find(|r| is_from(&r.phone)) {
        return Some(Signer::Dispatcher(record.dispatcher_id.clone()));
    }
    sorted.iter().find_map(|r| {
        let tier = if is_from(&r.backup_dispatcher) {
            Tier::Backup
        } else if is_from(&r.tertiary_contact) {
            Tier::Tertiary
        } else {
            return None;
        };
        Some(Signer::Contact {
            of: r.dispatcher_id.clone(),
            tier,
        })
    })
}

/// A text from a dispatcher's phone, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatcherText {
    Command(Command),
    Answer(Answer),
}

/// A dispatcher's answer to a driver: `K7Q on my way` (any case; `[K7Q]`, `K7Q:` and
/// `K7Q,` too) or a bare `on my way`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub reference: Option<TextRef>,
    /// The words to send, spaces at either end trimmed; may be empty.
    pub words: String,
}

impl DispatcherText {
    /// Keywords first (`ON`, `OFF`, `ACK [word]`); anything else is an answer, whose
    /// first word is its reference when it has the shape of one.
    pub fn parse(body: &str) -> DispatcherText {
        if let Some(command) = Command::parse(body) {
            return DispatcherText::Command(command);
        }
        let trimmed = body.trim();
        let (first, rest) = match trimmed.find(char::is_whitespace) {
            Some(at) => (&trimmed[..at], &trimmed[at..]),
            None => (trimmed, ""),
        };
        let bare = first
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or_else(|| first.trim_end_matches([':', ',']));
        match TextRef::parse(bare) {
            Some(reference) => DispatcherText::Answer(Answer {
                reference: Some(reference),
                words: rest.trim().to_string(),
            }),
            None => DispatcherText::Answer(Answer {
                reference: None,
                words: trimmed.to_string(),
            }),
        }
    }
}

/// A driver waiting on a phone, as a list of them shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Their latest text's reference.
    pub reference: TextRef,
    pub driver: PhoneNumber,
    pub first_words: String,
    pub age_secs: i64,
}

/// Whom an answer is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressee {
    /// `texts` are the conversations it answers (all of the driver's on this phone for a
    /// bare answer; the one named otherwise), newest first; `reference` is the first's.
    Driver {
        driver: PhoneNumber,
        reference: TextRef,
        texts: Vec<Conversation>,
    },
    /// A bare answer with several drivers waiting, newest first.
    Several(Vec<Waiting>),
    /// A bare answer with no driver waiting.
    NobodyWaiting,
    /// The named reference is no live conversation of this phone.
    NotLive(TextRef),
}

/// Whom `reference` (or no reference) addresses among a phone's `live` conversations.
pub fn address(reference: Option<&TextRef>, live: &[Conversation], now: i64) -> Addressee {
    let mut newest_first: Vec<&Conversation> = live.iter().collect();
    newest_first.sort_by(|a, b| {
        b.sent_at
            .cmp(&a.sent_at)
            .then_with(|| a.reference.cmp(&b.reference))
    });
    if let Some(reference) = reference {
        return match newest_first.iter().find(|c| c.reference == *reference) {
            Some(text) => Addressee::Driver {
                driver: text.driver.clone(),
                reference: reference.clone(),
                texts: vec![(*text).clone()],
            },
            None => Addressee::NotLive(reference.clone()),
        };
    }
    let mut drivers: Vec<&Conversation> = Vec::new();
    for text in &newest_first {
        if !drivers.iter().any(|d| d.driver == text.driver) {
            drivers.push(text);
        }
    }
    match drivers.as_slice() {
        [] => Addressee::NobodyWaiting,
        [latest] => Addressee::Driver {
            driver: latest.driver.clone(),
            reference: latest.reference.clone(),
            texts: newest_first
                .iter()
                .filter(|c| c.driver == latest.driver)
                .map(|c| (*c).clone())
                .collect(),
        },
        several => Addressee::Several(
            several
                .iter()
                .map(|c| Waiting {
                    reference: c.reference.clone(),
                    driver: c.driver.clone(),
                    first_words: c.first_words.clone(),
                    age_secs: now - c.sent_at,
                })
                .collect(),
        ),
    }
}

/// What became of a dispatcher's answer: the TwiML reply they read, the metric and
/// the decision log's `outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerOutcome {
    Sent {
        driver: PhoneNumber,
        reference: TextRef,
        sid: MessageSid,
        /// The text had already gone on to the next tier (nobody acknowledged it in
        /// time): the dispatcher is told, the answer still went.
        escalated: bool,
    },
    Several(Vec<Waiting>),
    NobodyWaiting {
        window_secs: u64,
    },
    NotLive {
        reference: TextRef,
        window_secs: u64,
    },
    /// A reference and nothing after it.
    Empty {
        reference: Option<TextRef>,
    },
    TooLong {
        chars: usize,
        room: usize,
    },
    /// Twilio refused the driver's number (unsubscribed, not a mobile, …).
    TwilioRefused {
        driver: PhoneNumber,
        reference: TextRef,
        code: u32,
        message: String,
    },
    /// Nothing went out: Twilio was unreachable or refused the request itself.
    NotSent {
        driver: PhoneNumber,
        reference: TextRef,
        why: String,
        /// Twilio may take it later (it was unreachable), so the dispatcher's text may
        /// be tried again.
        retry: bool,
    },
    /// Twilio took the request and never answered: it may be out.
    MaybeSent {
        driver: PhoneNumber,
        reference: TextRef,
    },
}

impl AnswerOutcome {
    /// The stable name for logs and the refused-answers metric.
    pub fn name(&self) -> &'static str {
        match self {
            AnswerOutcome::Sent { .. } => "sent",
            AnswerOutcome::Several(_) => "ambiguous",
            AnswerOutcome::NobodyWaiting { .. } => "nobody_waiting",
            AnswerOutcome::NotLive { .. } => "unknown_reference",
            AnswerOutcome::Empty { .. } => "empty",
            AnswerOutcome::TooLong { .. } => "too_long",
            AnswerOutcome::TwilioRefused { .. } => "twilio_refused",
            AnswerOutcome::NotSent { .. } => "not_sent",
            AnswerOutcome::MaybeSent { .. } => "outcome_unknown",
        }
    }

    /// The reference the answer went (or would have gone) under.
    pub fn reference(&self) -> Option<&TextRef> {
        match self {
            AnswerOutcome::Sent { reference, .. }
            | AnswerOutcome::NotLive { reference, .. }
            | AnswerOutcome::TwilioRefused { reference, .. }
            | AnswerOutcome::NotSent { reference, .. }
            | AnswerOutcome::MaybeSent { reference, .. } => Some(reference),
            AnswerOutcome::Empty { reference } => reference.as_ref(),
            _ => None,
        }
    }

    /// The text the dispatcher reads back on their phone.
    pub fn reply(&self) -> String {
        format!("QDN relay: {}", self.message())
    }

    fn message(&self) -> String {
        match self {
            AnswerOutcome::Sent {
                driver,
                reference,
                escalated,
                ..
            } => {
                let mut reply = format!("Sent to {} ({reference}).", driver.masked());
                if *escalated {
                    reply.push_str(
                        " Nobody acknowledged the text in time, so it was also sent on to the next tier.",
                    );
                }
                reply
            }
            AnswerOutcome::Several(waiting) => {
                let mut reply = format!(
                    "Not sent: {} drivers are waiting on this phone. Start with the reference:",
                    waiting.len()
                );
                for w in waiting.iter().take(MAX_LISTED) {
                    reply.push_str(&format!(
                        "\n{} {} \"{}\" {} ago",
                        w.reference,
                        w.driver.masked(),
                        w.first_words,
                        age(w.age_secs)
                    ));
                }
                if waiting.len() > MAX_LISTED {
                    reply.push_str(&format!("\n...and {} more", waiting.len() - MAX_LISTED));
                }
                let example = waiting.first().map_or("K7Q", |w| w.reference.as_str());
                reply.push_str(&format!("\ne.g. \"{example} On my way\""));
                reply
            }
            AnswerOutcome::NobodyWaiting { window_secs } => format!(
                "Not sent: no driver's text came to this phone in the last {}. To answer one, start with the reference in [brackets] at the end of their text, e.g. \"K7Q On my way\".",
                age(*window_secs as i64)
            ),
            AnswerOutcome::NotLive {
                reference,
                window_secs,
            } => format!(
                "Not sent: {reference} is not a text sent to this phone in the last {} (unknown, expired, or another phone's).",
                age(*window_secs as i64)
            ),
            AnswerOutcome::Empty { reference } => {
                let reference = reference.as_ref().map_or("K7Q", TextRef::as_str);
                format!(
                    "Not sent: nothing to send. Write the answer after the reference, e.g. \"{reference} On my way\"."
                )
            }
            AnswerOutcome::TooLong { chars, room } => format!(
                "Not sent: the answer is {chars} characters; at most {room} fit in one text."
            ),
            AnswerOutcome::TwilioRefused {
                driver,
                reference,
                code,
                message,
            } => format!(
                "Not sent to {} ({reference}): {} (Twilio {code}). Call the driver instead.",
                driver.masked(),
                refusal_words(*code, message)
            ),
            AnswerOutcome::NotSent {
                driver,
                reference,
                why,
                ..
            } => format!(
                "Not sent to {} ({reference}): {why}. Please send it again.",
                driver.masked()
            ),
            AnswerOutcome::MaybeSent { driver, reference } => format!(
                "Twilio did not answer: your answer to {} ({reference}) may or may not have gone out. Check with the driver before sending it again.",
                driver.masked()
            ),
        }
    }
}

/// Twilio's refusal of a recipient, in words a dispatcher understands.
pub fn refusal_words(code: u32, message: &str) -> String {
    match code {
        21610 => "the driver has unsubscribed (replied STOP) from this number".to_string(),
        21211 | 21217 => "the driver's number is not a valid phone number".to_string(),
        21612 | 21408 => "Twilio cannot text the driver's number from here".to_string(),
        21614 => "the driver's number cannot receive texts".to_string(),
        _ => format!("Twilio refused the driver's number ({message})"),
    }
}

/// `45s`, `12m`, `2h`, `3h 20m`, `2d`.
fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 if secs % 3600 / 60 == 0 => format!("{}h", secs / 3600),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_795_478_400;

    fn reference(raw: &str) -> TextRef {
        TextRef::parse(raw).unwrap()
    }

    fn number(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw, CountryCode::NANP).unwrap()
    }

    fn conversation(raw_ref: &str, driver: &str, sent_at: i64) -> Conversation {
        Conversation {
            reference: reference(raw_ref),
            inbound_sid: MessageSid::parse(&format!(
                "SM{:0>32}",
                raw_ref
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ))
            .unwrap(),
            driver: number(driver),
            first_words: "Load ready at 5th".into(),
            sent_at,
        }
    }

    fn answer(body: &str) -> Answer {
        match DispatcherText::parse(body) {
            DispatcherText::Answer(answer) => answer,
            other => panic!("{body:?} read as {other:?}"),
        }
    }

    #[test]
    fn a_reference_first_names_the_text_in_any_case_and_common_punctuation() {
        for body in [
            "K7Q On my way",
            "k7q On my way",
            "  K7Q   On my way ",
            "[K7Q] On my way",
            "K7Q: On my way",
            "k7q, On my way",
        ] {
            let read = answer(body);
            assert_eq!(read.reference, Some(reference("K7Q")), "{body:?}");
            assert_eq!(read.words, "On my way", "{body:?}");
        }
    }

    #[test]
    fn words_that_are_not_references_are_the_answer() {
        for body in [
            "YES",
            "On my way",
            "OK 10 min",
            "Running 10 min late",
            "ONE",
            "ACK JOB 1042",
        ] {
            let read = answer(body);
            assert_eq!(read.reference, None, "{body:?}");
            assert_eq!(read.words, body.trim());
        }
        assert_eq!(answer("K7Q").words, "");
    }

    #[test]
    fn keywords_are_commands() {
        for body in ["ON", " off ", "ACK", "ack k7q", "ACK JOB-1042"] {
            assert!(
                matches!(DispatcherText::parse(body), DispatcherText::Command(_)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_bare_answer_goes_to_the_one_driver_waiting_however_many_texts_they_sent() {
        let live = [
            conversation("K7Q", "+16195550123", NOW - 60),
            conversation("P3X", "+16195550123", NOW - 30),
        ];
        match address(None, &live, NOW) {
            Addressee::Driver {
                driver,
                reference: r,
                texts,
            } => {
                assert_eq!(driver, number("+16195550123"));
                assert_eq!(r, reference("P3X"), "the newest text's reference");
                assert_eq!(texts.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bare_answer_with_two_drivers_waiting_lists_both() {
        let live = [
            conversation("K7Q", "+16195550123", NOW - 600),
            conversation("P3X", "+16195550456", NOW - 30),
        ];
        let Addressee::Several(waiting) = address(None, &live, NOW) else {
            panic!("not a list");
        };
        let reply = AnswerOutcome::Several(waiting).reply();
        assert!(reply.contains("2 drivers"), "{reply}");
        assert!(
            reply.contains("P3X ***0456 \"Load ready at 5th\" 30s ago"),
            "{reply}"
        );
        assert!(
            reply.contains("K7Q ***0123 \"Load ready at 5th\" 10m ago"),
            "{reply}"
        );
        assert!(reply.ends_with("e.g. \"P3X On my way\""), "{reply}");
    }

    #[test]
    fn a_named_reference_must_be_one_of_this_phones_live_texts() {
        let live = [conversation("K7Q", "+16195550123", NOW - 60)];
        assert!(matches!(
            address(Some(&reference("K7Q")), &live, NOW),
            Addressee::Driver { .. }
        ));
        assert_eq!(
            address(Some(&reference("P3X")), &live, NOW),
            Addressee::NotLive(reference("P3X"))
        );
        assert_eq!(address(None, &[], NOW), Addressee::NobodyWaiting);
        assert!(conversation("K7Q", "+16195550123", NOW - 7199).is_live(NOW, 7200));
        assert!(!conversation("K7Q", "+16195550123", NOW - 7200).is_live(NOW, 7200));
    }

    #[test]
    fn replies_name_the_masked_driver_and_the_reference() {
        let sent = AnswerOutcome::Sent {
            driver: number("+16195550123"),
            reference: reference("K7Q"),
            sid: MessageSid::parse("SM0123456789abcdef0123456789abcdef").unwrap(),
            escalated: false,
        };
        assert_eq!(sent.reply(), "QDN relay: Sent to ***0123 (K7Q).");
        let refused = AnswerOutcome::TwilioRefused {
            driver: number("+16195550123"),
            reference: reference("K7Q"),
            code: 21610,
            message: "Attempt to send to unsubscribed recipient".into(),
        };
        assert_eq!(
            refused.reply(),
            "QDN relay: Not sent to ***0123 (K7Q): the driver has unsubscribed (replied STOP) from this number (Twilio 21610). Call the driver instead."
        );
        let expired = AnswerOutcome::NotLive {
            reference: reference("K7Q"),
            window_secs: 7200,
        };
        assert!(expired.reply().contains("last 2h"), "{}", expired.reply());
    }

    #[test]
    fn signers_are_the_phones_item_else_the_tier_it_stands_in() {
        let mut primary = DispatcherRecord::new(DispatcherId::parse("sergio-main").unwrap());
        primary.phone = Some("+18585550100".into());
        primary.backup_dispatcher = Some("858-335-4807".into());
        primary.tertiary_contact = Some("dana-night".into());
        let dispatchers = [primary];
        let country = CountryCode::NANP;
        assert_eq!(
            signer_of(&number("+18585550100"), &dispatchers, country).map(|s| s.to_string()),
            Some("sergio-main".into())
        );
        assert_eq!(
            signer_of(&number("+18583354807"), &dispatchers, country).map(|s| s.to_string()),
            Some("sergio-main backup".into())
        );
        assert_eq!(
            signer_of(&number("+16195550123"), &dispatchers, country),
            None
        );
    }

    #[test]
    fn first_words_are_cut_at_a_word() {
        assert_eq!(first_words("  Load  ready\n at 5th "), "Load ready at 5th");
        let cut = first_words("Load ready at 5th and Main, the blue gate by the dock");
        assert_eq!(cut, "Load ready at 5th and Main,…");
    }

    proptest! {
        #[test]
        fn any_body_reads_as_a_command_or_an_answer_that_keeps_its_words(body in "\\PC{0,80}") {
            match DispatcherText::parse(&body) {
                DispatcherText::Command(command) => prop_assert_eq!(Command::parse(&body), Some(command)),
                DispatcherText::Answer(answer) => {
                    prop_assert!(body.contains(answer.words.as_str()));
                    prop_assert_eq!(answer.words.trim(), answer.words.as_str());
                    if answer.reference.is_none() {
                        prop_assert_eq!(answer.words.as_str(), body.trim());
                    }
                }
            }
        }

        #[test]
        fn a_reference_in_any_case_and_spacing_is_read_with_its_answer(
            raw in "[A-HJ-NP-Z][2-9][A-HJ-NP-Z2-9]",
            before in "[ \t]{0,3}",
            gap in "[ \t]{1,3}",
            words in "[a-zA-Z][a-zA-Z ]{0,30}[a-zA-Z]",
            lower in any::<bool>(),
        ) {
            let typed = if lower { raw.to_ascii_lowercase() } else { raw.clone() };
            let read = answer(&format!("{before}{typed}{gap}{words}"));
            prop_assert_eq!(read.reference, Some(reference(&raw)));
            prop_assert_eq!(read.words, words.trim().to_string());
        }

        #[test]
        fn a_first_word_of_letters_only_or_digits_only_is_never_a_reference(
            first in "[A-Za-z]{1,8}|[0-9]{1,8}",
            rest in "( [a-z]{1,6}){0,4}",
        ) {
            let body = format!("{first}{rest}");
            if let DispatcherText::Answer(read) = DispatcherText::parse(&body) {
                prop_assert_eq!(read.reference, None);
            }
        }
    }
}
