//! The inbound relay's logic over the in-memory adapters: fast, and able to drive the
//! failure paths (unknown outcomes, refusals at every tier) deterministically.

use relay_app::config::InboundSettings;
use relay_app::memory::{
    MemoryAcks, MemoryDispatcherStore, MemoryMessageLog, RecordingAlerts, ScriptedSender,
};
use relay_app::relay::replies::Replies;
use relay_app::relay::status::{StatusCallbacks, StatusHandled};
use relay_app::relay::{Handled, Relay, RelayError, RelayPorts};
use relay_core::alert::AlertKind;
use relay_core::cascade::Tier;
use relay_core::claim::{
    ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, RecordKind, RecordState,
};
use relay_core::delivery::DeliveryStatus;
use relay_core::delivery::StatusUpdate;
use relay_core::dispatcher::{DispatcherRecord, Flag};
use relay_core::fate::Unreached;
use relay_core::ids::{DispatcherId, MessageSid};
use relay_core::phone::{CountryCode, PhoneNumber};
use relay_core::ports::{ClaimStore, DeliveryLog, SendError};
use relay_core::sms::InboundSms;

const NOW: i64 = 1_800_000_000;
const SID: &str = "SM0123456789abcdef0123456789abcdef";

fn settings() -> InboundSettings {
    InboundSettings::from_lookup(|name| match name {
        "ALERT_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:alerts".into()),
        "TWILIO_SECRET_ID" => Some("qdn/twilio".into()),
        _ => None,
    })
    .unwrap()
}

fn seed() -> DispatcherRecord {
    DispatcherRecord {
        dispatcher_id: DispatcherId::parse("sergio-main").unwrap(),
        phone: Some("+18585550100".into()),
        available: Flag::Set(true),
        last_heartbeat: Some(NOW - 10),
        backup_dispatcher: Some("858-335-4807".into()),
        tertiary_contact: Some("+1-619-555-0199".into()),
        message_log_ttl: Some(600),
        on_duty: Flag::Set(true),
        problems: Vec::new(),
    }
}

fn sms(from: &str, body: &str) -> InboundSms {
    InboundSms {
        sid: MessageSid::parse(SID).unwrap(),
        from: from.into(),
        to: "+15005550006".into(),
        body: body.into(),
        media_urls: vec![],
    }
}

struct World {
    settings: InboundSettings,
    dispatchers: MemoryDispatcherStore,
    log: MemoryMessageLog,
    alerts: RecordingAlerts,
    sender: ScriptedSender,
    conversations: MemoryAcks,
}

impl World {
    fn new(record: DispatcherRecord, sender: ScriptedSender) -> Self {
        World {
            settings: settings(),
            dispatchers: MemoryDispatcherStore::with([record]),
            log: MemoryMessageLog::default(),
            alerts: RecordingAlerts::default(),
            sender,
            conversations: MemoryAcks::default(),
        }
    }

    fn ports(&self) -> RelayPorts<'_> {
        RelayPorts {
            dispatchers: &self.dispatchers,
            claims: &self.log,
            log: &self.log,
            deliveries: &self.log,
            alerts: &self.alerts,
            sender: &self.sender,
            replies: Replies {
                store: &self.conversations,
                window_secs: self.settings.reply_window_secs,
            },
            acks: None,
        }
    }

    async fn relay(&self, sms: &InboundSms) -> Result<Handled, RelayError> {
        self.relay_at(sms, NOW).await
    }

    async fn relay_at(&self, sms: &InboundSms, now: i64) -> Result<Handled, RelayError> {
        let relay = Relay {
            settings: &self.settings,
            ports: self.ports(),
            outbound_log: &self.log,
        };
        relay.relay(sms, None, now).await
    }

    async fn status(
        &self,
        sid: &MessageSid,
        status: DeliveryStatus,
        error_code: Option<u32>,
    ) -> Result<StatusHandled, RelayError> {
        let callbacks = StatusCallbacks {
            settings: &self.settings,
            ports: self.ports(),
        };
        let update = StatusUpdate {
            sid: sid.clone(),
            status,
            error_code,
        };
        callbacks.handle(&update, NOW + 5).await
    }

    /// Relays a driver's text and returns the forwarded message's SID.
    async fn forwarded(&self) -> MessageSid {
        match self.relay(&sms("+16195550123", "hi")).await.unwrap() {
            Handled::Forwarded { forwarded_sid, .. } => forwarded_sid,
            other => panic!("{other:?}"),
        }
    }

    fn alert_kinds(&self) -> Vec<AlertKind> {
        self.alerts.alerts().iter().map(|a| a.kind).collect()
    }
}

fn refused(code: u32) -> SendError {
    SendError::RecipientRefused {
        code,
        message: "refused".into(),
    }
}

#[tokio::test]
async fn primary_gets_it_and_the_log_expires_after_the_dispatchers_ttl() {
    let world = World::new(seed(), ScriptedSender::default());
    let handled = world.relay(&sms("+16195550123", "hi")).await.unwrap();
    assert!(matches!(
        handled,
        Handled::Forwarded {
            tier: Tier::Primary,
            ..
        }
    ));
    let entry = world.log.entry(SID).unwrap();
    assert_eq!(entry.state, RecordState::Forwarded);
    assert_eq!(entry.forward.unwrap().expires_at, NOW + 600);
    assert!(world.alerts.alerts().is_empty());
}

#[tokio::test]
async fn refusals_at_every_tier_give_the_claim_back_keeping_the_text_and_alert() {
    let sender = ScriptedSender::failing_with([refused(21211), refused(21610), refused(21614)]);
    let world = World::new(seed(), sender);
    let error = world.relay(&sms("+16195550123", "hi")).await.unwrap_err();
    assert!(matches!(error, RelayError::NoTierReachable(_)), "{error}");
    assert!(error.to_string().contains("21614"), "{error}");
    assert_eq!(world.sender.tried().len(), 3);
    assert_eq!(
        world.log.entry(SID).map(|entry| entry.state),
        Some(RecordState::Undelivered),
        "the claim is given back as a record of the text, for a redelivery"
    );
    let (fate, why) = world.log.unreached(SID).expect("listed as reached nobody");
    assert_eq!(fate, Unreached::Undeliverable);
    assert!(why.contains("21614"), "{why}");
    assert_eq!(world.alert_kinds(), vec![AlertKind::Undeliverable]);

    // The redelivery, once the number is fixed, forwards it.
    let handled = world.relay(&sms("+16195550123", "hi")).await.unwrap();
    assert!(matches!(handled, Handled::Forwarded { .. }));
}

#[tokio::test]
async fn a_refusal_no_other_tier_can_fix_stops_the_cascade() {
    let rejected = SendError::Rejected {
        status: 401,
        code: 20003,
        message: "Authenticate".into(),
    };
    let world = World::new(seed(), ScriptedSender::failing_with([rejected]));
    let error = world.relay(&sms("+16195550123", "hi")).await.unwrap_err();
    assert!(matches!(
        error,
        RelayError::Twilio(SendError::Rejected { .. })
    ));
    assert_eq!(world.sender.tried().len(), 1, "the backup was not tried");
    assert_eq!(
        world.log.entry(SID).map(|entry| entry.state),
        Some(RecordState::Undelivered)
    );
    assert_eq!(
        world.log.unreached(SID).map(|(fate, _)| fate),
        Some(Unreached::Undeliverable)
    );
}

#[tokio::test]
async fn an_unknown_outcome_keeps_the_claim_so_nothing_is_sent_twice() {
    let unknown = SendError::OutcomeUnknown {
        detail: "timed out".into(),
    };
    let world = World::new(seed(), ScriptedSender::failing_with([unknown]));
    let error = world.relay(&sms("+16195550123", "hi")).await.unwrap_err();
    assert!(matches!(
        error,
        RelayError::Twilio(SendError::OutcomeUnknown { .. })
    ));
    assert_eq!(
        world.log.entry(SID).unwrap().state,
        RecordState::OutcomeUnknown
    );
    assert_eq!(
        world.log.unreached(SID).map(|(fate, _)| fate),
        Some(Unreached::OutcomeUnknown),
        "listed as reached nobody, for an operator to judge"
    );
    assert_eq!(world.alert_kinds(), vec![AlertKind::Undeliverable]);

    let again = world.relay(&sms("+16195550123", "hi")).await.unwrap();
    assert_eq!(
        again,
        Handled::Duplicate {
            state: RecordState::OutcomeUnknown,
            reply: None,
        }
    );
    assert_eq!(world.sender.tried().len(), 1);
}

/// Another invocation's claim on [`SID`], taken at `at` with a 60 s lock.
fn earlier_claim(at: i64) -> ClaimRequest<'static> {
    static KEY: std::sync::LazyLock<ClaimKey> =
        std::sync::LazyLock::new(|| ClaimKey::inbound(&MessageSid::parse(SID).unwrap()));
    static OWNER: std::sync::LazyLock<ClaimOwner> = std::sync::LazyLock::new(ClaimOwner::random);
    ClaimRequest {
        key: &KEY,
        kind: RecordKind::Inbound,
        owner: &OWNER,
        fingerprint: None,
        now: at,
        lock_secs: 60,
        reclaims: None,
    }
}

#[tokio::test]
async fn a_claim_in_progress_is_not_forwarded_again_until_its_lock_expires() {
    let world = World::new(seed(), ScriptedSender::default());
    world.log.claim(&earlier_claim(NOW - 10)).await.unwrap();
    let handled = world.relay(&sms("+16195550123", "hi")).await.unwrap();
    assert_eq!(
        handled,
        Handled::Duplicate {
            state: RecordState::InProgress,
            reply: None,
        }
    );
    assert!(world.sender.sent().is_empty());

    // An abandoned claim (its invocation died) is taken over.
    let world = World::new(seed(), ScriptedSender::default());
    world.log.claim(&earlier_claim(NOW - 61)).await.unwrap();
    let handled = world.relay(&sms("+16195550123", "hi")).await.unwrap();
    assert!(matches!(handled, Handled::Forwarded { .. }));
}

#[tokio::test]
async fn unavailable_primary_is_flipped_once_and_alerted_once() {
    let mut record = seed();
    record.last_heartbeat = Some(NOW - 1_000);
    let world = World::new(record, ScriptedSender::default());
    world.relay(&sms("+16195550123", "hi")).await.unwrap();
    assert!(
        !world
            .dispatchers
            .record("sergio-main")
            .unwrap()
            .is_marked_available()
    );
    assert_eq!(
        world.alert_kinds(),
        vec![AlertKind::DispatcherUnavailable, AlertKind::Cascade]
    );
}

#[tokio::test]
async fn off_then_on_from_the_backup_phone_changes_only_items_with_that_phone() {
    let mut backup = seed();
    backup.dispatcher_id = DispatcherId::parse("maria-backup").unwrap();
    backup.phone = Some("(858) 335-4807".into());
    let world = World::new(seed(), ScriptedSender::default());
    world.dispatchers.put(backup);

    let handled = world.relay(&sms("+18583354807", "OFF")).await.unwrap();
    assert!(matches!(handled, Handled::Command { reply: Some(_) }));
    assert_eq!(
        world.dispatchers.record("maria-backup").unwrap().on_duty,
        Flag::Set(false)
    );
    assert_eq!(
        world.dispatchers.record("sergio-main").unwrap().on_duty,
        Flag::Set(true)
    );
    assert!(world.sender.tried().is_empty());
}

#[tokio::test]
async fn only_the_holder_of_a_claim_can_finish_or_release_it() {
    use relay_core::ports::{Finish, StoreError};
    let log = MemoryMessageLog::default();
    let first = earlier_claim(NOW - 61);
    assert_eq!(log.claim(&first).await.unwrap(), ClaimOutcome::Acquired);
    // The first holder stalled past its lock; a redelivery takes the message over.
    let owner = ClaimOwner::random();
    let second = ClaimRequest {
        owner: &owner,
        now: NOW,
        ..first.clone()
    };
    assert_eq!(log.claim(&second).await.unwrap(), ClaimOutcome::Acquired);
    let finish = Finish {
        state: RecordState::OutcomeUnknown,
        response: None,
        detail: None,
        expires_at: NOW + 600,
    };
    let late = log.finish(first.key, first.owner, &finish).await;
    assert!(
        matches!(late, Err(StoreError::ClaimLost { .. })),
        "{late:?}"
    );
    log.release(first.key, first.owner).await.unwrap();
    let entry = log.entry(SID).expect("the second holder's claim survives");
    assert_eq!(entry.owner.as_ref(), Some(&owner));
    // A third delivery sees the live claim and what it holds.
    let third_owner = ClaimOwner::random();
    let third = ClaimRequest {
        owner: &third_owner,
        ..second.clone()
    };
    match log.claim(&third).await.unwrap() {
        ClaimOutcome::Taken(existing) => assert_eq!(existing.state, RecordState::InProgress),
        other => panic!("{other:?}"),
    }
}

// ---- status callbacks --------------------------------------------------------------

fn number(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw, CountryCode::NANP).unwrap()
}

#[tokio::test]
async fn a_failed_delivery_moves_on_to_the_next_tier_once() {
    let world = World::new(seed(), ScriptedSender::default());
    let first = world.forwarded().await;
    assert_eq!(world.sender.sent()[0].to.as_str(), "+18585550100");

    let handled = world
        .status(&first, DeliveryStatus::Undelivered, Some(30003))
        .await
        .unwrap();
    let StatusHandled::MovedOn {
        tier,
        forwarded_sid,
    } = handled
    else {
        panic!("{handled:?}");
    };
    assert_eq!(tier, Tier::Backup);
    let sent = world.sender.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].to.as_str(), "+18583354807");
    let without_reference = |body: &str| body.lines().next().unwrap().to_string();
    assert_eq!(
        without_reference(&sent[1].body),
        without_reference(&sent[0].body),
        "the same text goes on, with a reference of its own"
    );
    let alert = world.alerts.alerts().pop().unwrap();
    assert_eq!(alert.kind, AlertKind::Cascade);
    assert_eq!(
        alert.reason,
        "primary: delivery failed (Twilio error 30003)"
    );
    assert_eq!(
        alert.message_sid.as_ref().map(MessageSid::as_str),
        Some(SID)
    );
    assert_eq!(alert.routing_decision, Some(Tier::Backup));
    // The failure is recorded against the number it went to.
    let health = world.log.health(&number("+18585550100")).await.unwrap();
    assert_eq!(health.last_failure_at, Some(NOW + 5));
    assert!(!health.is_healthy());
    let moved = world.log.moves();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].forwarded_sid, forwarded_sid);

    // Redelivered, and the other failure status: never sent on twice.
    for status in [DeliveryStatus::Undelivered, DeliveryStatus::Failed] {
        let again = world.status(&first, status, Some(30003)).await.unwrap();
        assert!(
            matches!(again, StatusHandled::AlreadyMovedOn | StatusHandled::Stale),
            "{again:?}"
        );
    }
    assert_eq!(world.sender.sent().len(), 2);
}

#[tokio::test]
async fn statuses_never_move_backwards() {
    let world = World::new(seed(), ScriptedSender::default());
    let sid = world.forwarded().await;
    use DeliveryStatus::*;
    assert_eq!(
        world.status(&sid, Sent, None).await.unwrap(),
        StatusHandled::Recorded
    );
    assert_eq!(
        world.status(&sid, Delivered, None).await.unwrap(),
        StatusHandled::Recorded
    );
    assert_eq!(
        world.status(&sid, Sent, None).await.unwrap(),
        StatusHandled::Stale
    );
    assert_eq!(
        world.status(&sid, Queued, None).await.unwrap(),
        StatusHandled::Stale
    );
    // A failure after delivery (out of order) is not the final word: nothing moves on.
    assert_eq!(
        world.status(&sid, Failed, Some(30008)).await.unwrap(),
        StatusHandled::Stale
    );
    assert_eq!(world.log.delivery_status(sid.as_str()), Some(Delivered));
    assert_eq!(world.sender.sent().len(), 1);
    let health = world.log.health(&number("+18585550100")).await.unwrap();
    assert_eq!(health.last_success_at, Some(NOW + 5));
    assert!(health.is_healthy());
}

#[tokio::test]
async fn the_last_tier_failing_gives_up_with_an_undeliverable_alert() {
    let mut record = seed();
    record.available = Flag::Set(false);
    record.backup_dispatcher = None;
    let world = World::new(record, ScriptedSender::default());
    let sid = world.forwarded().await;
    assert_eq!(world.sender.sent()[0].to.as_str(), "+16195550199");
    let handled = world
        .status(&sid, DeliveryStatus::Failed, Some(30008))
        .await
        .unwrap();
    assert_eq!(handled, StatusHandled::GaveUp);
    let alert = world.alerts.alerts().pop().unwrap();
    assert_eq!(alert.kind, AlertKind::Undeliverable);
    assert!(
        alert
            .reason
            .contains("tertiary: delivery failed (Twilio error 30008)"),
        "{}",
        alert.reason
    );
    assert_eq!(world.sender.sent().len(), 1);
}

#[tokio::test]
async fn a_callback_for_a_message_we_did_not_forward_does_nothing() {
    let world = World::new(seed(), ScriptedSender::default());
    let unknown = MessageSid::parse("SMffffffffffffffffffffffffffffffff").unwrap();
    let handled = world
        .status(&unknown, DeliveryStatus::Failed, Some(30003))
        .await
        .unwrap();
    assert_eq!(handled, StatusHandled::UnknownMessage);
    assert!(world.sender.tried().is_empty());
    assert!(world.alerts.alerts().is_empty());
}

#[tokio::test]
async fn moving_on_falls_through_refusals_like_the_first_walk() {
    let world = World::new(seed(), ScriptedSender::default());
    let sid = world.forwarded().await;
    // The backup's number is refused for good: the tertiary gets it.
    let world = World {
        sender: ScriptedSender::failing_with([refused(21610)]),
        ..world
    };
    let handled = world
        .status(&sid, DeliveryStatus::Undelivered, Some(30003))
        .await
        .unwrap();
    assert!(
        matches!(
            handled,
            StatusHandled::MovedOn {
                tier: Tier::Tertiary,
                ..
            }
        ),
        "{handled:?}"
    );
    let alert = world.alerts.alerts().pop().unwrap();
    assert_eq!(
        alert.reason,
        "primary: delivery failed (Twilio error 30003); backup: Twilio refused the number (21610 refused)"
    );
}

#[tokio::test]
async fn on_from_a_dispatchers_phone_counts_as_a_delivery_that_worked() {
    let world = World::new(seed(), ScriptedSender::default());
    let phone = number("+18585550100");
    world
        .log
        .record_delivery(&phone, false, Some(30003), NOW - 60)
        .await
        .unwrap();
    let handled = world.relay(&sms("+18585550100", "on")).await.unwrap();
    assert!(matches!(handled, Handled::Command { .. }));
    let health = world.log.health(&phone).await.unwrap();
    assert!(health.is_healthy(), "{health:?}");
}

#[tokio::test]
async fn a_move_whose_claim_was_never_finished_is_not_sent_again() {
    use relay_core::ports::{MessageLog, MovedOn};
    let world = World::new(seed(), ScriptedSender::default());
    let first = world.forwarded().await;
    // An earlier invocation moved the text on to the backup, then died before it could
    // finish its claim: the claim is abandoned, the log points past the failed text.
    let key = ClaimKey::move_on(&first);
    let dead = ClaimOwner::random();
    let abandoned = ClaimRequest {
        key: &key,
        kind: RecordKind::MoveOn,
        owner: &dead,
        fingerprint: None,
        now: NOW - 600,
        lock_secs: 60,
        reclaims: None,
    };
    world.log.claim(&abandoned).await.unwrap();
    let backup_sid = MessageSid::parse("SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
    world
        .log
        .record_moved_on(&MovedOn {
            inbound_sid: MessageSid::parse(SID).unwrap(),
            failed_sid: first.clone(),
            tier: Tier::Backup,
            dispatcher_id: DispatcherId::parse("sergio-main").unwrap(),
            cascade_reason: "primary: delivery failed".into(),
            forwarded_sid: backup_sid,
            forwarded_to: number("+18583354807"),
            status: DeliveryStatus::Queued,
            attempts: vec![],
            at: NOW,
            expires_at: NOW + 600,
            round: 0,
            redelivered: false,
        })
        .await
        .unwrap();
    // Twilio redelivers the failure callback after the lock lapsed.
    let handled = world
        .status(&first, DeliveryStatus::Undelivered, Some(30003))
        .await
        .unwrap();
    assert_eq!(handled, StatusHandled::AlreadyMovedOn);
    assert_eq!(world.sender.sent().len(), 1, "only the first text went out");
}

// ---- answers by text ------------------------------------------------------------------

const DRIVER: &str = "+16195550123";
const OTHER_DRIVER: &str = "+16195550456";
const PRIMARY: &str = "+18585550100";

fn text_with_sid(n: u32, from: &str, body: &str) -> InboundSms {
    InboundSms {
        // Apart from the sender's SIDs (`SM000…1`, …), which share the log.
        sid: MessageSid::parse(&format!("SMaa{n:030x}")).unwrap(),
        ..sms(from, body)
    }
}

/// The reference at the end of a relayed text: `[K7Q] Reply ...`.
fn reference_of(body: &str) -> String {
    let line = body
        .lines()
        .rev()
        .find(|l| l.starts_with('['))
        .expect("a reference line");
    line[1..line.find(']').unwrap()].to_string()
}

impl World {
    /// A driver's text relayed to the primary; its reference.
    async fn driver_texts(&self, n: u32, driver: &str, body: &str) -> String {
        let handled = self.relay(&text_with_sid(n, driver, body)).await.unwrap();
        assert!(matches!(
            handled,
            Handled::Forwarded {
                tier: Tier::Primary,
                ..
            }
        ));
        reference_of(&self.sender.sent().last().unwrap().body)
    }

    async fn answer(&self, n: u32, from: &str, body: &str) -> Handled {
        self.relay(&text_with_sid(n, from, body)).await.unwrap()
    }
}

fn reply(handled: &Handled) -> String {
    handled.reply().expect("a TwiML answer")
}

#[tokio::test]
async fn every_relayed_text_ends_with_its_reference_and_how_to_answer() {
    let world = World::new(seed(), ScriptedSender::default());
    let reference = world.driver_texts(1, DRIVER, "Load ready").await;
    let body = world.sender.sent()[0].body.clone();
    assert!(
        body.ends_with(&format!(
            "\n[{reference}] Reply \"{reference} <answer>\" to answer the driver"
        )),
        "{body}"
    );
    assert!(reference.bytes().any(|b| b.is_ascii_digit()), "{reference}");
    assert!(
        reference.bytes().any(|b| b.is_ascii_uppercase()),
        "{reference}"
    );
}

#[tokio::test]
async fn an_answer_with_its_reference_reaches_the_driver_stamped_once() {
    let world = World::new(seed(), ScriptedSender::default());
    let reference = world.driver_texts(1, DRIVER, "Load ready").await;
    let handled = world
        .answer(
            2,
            PRIMARY,
            &format!("{} On my way", reference.to_lowercase()),
        )
        .await;
    assert_eq!(
        reply(&handled),
        format!("QDN relay: Sent to ***0123 ({reference}).")
    );
    let sent = world.sender.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].to.as_str(), DRIVER);
    assert!(
        sent[1].body.starts_with("On my way\n-- sergio-main / 20"),
        "{}",
        sent[1].body
    );
    assert!(sent[1].body.ends_with('Z'));
    // Twilio's redelivery: the same answer back, nothing sent again.
    let again = world
        .answer(2, PRIMARY, &format!("{reference} On my way"))
        .await;
    assert!(matches!(again, Handled::Duplicate { .. }));
    assert_eq!(reply(&again), reply(&handled));
    assert_eq!(world.sender.sent().len(), 2);
    // The answer is the dispatcher's check-in.
    assert_eq!(world.dispatchers.last_heartbeat("sergio-main"), Some(NOW));
}

#[tokio::test]
async fn a_bare_answer_goes_to_the_one_driver_waiting() {
    let world = World::new(seed(), ScriptedSender::default());
    world.driver_texts(1, DRIVER, "Load ready").await;
    world
        .relay_at(&text_with_sid(2, DRIVER, "At the gate"), NOW + 1)
        .await
        .unwrap();
    let newest = reference_of(&world.sender.sent()[1].body);
    let handled = world
        .relay_at(&text_with_sid(3, PRIMARY, "On my way"), NOW + 2)
        .await
        .unwrap();
    assert_eq!(
        reply(&handled),
        format!("QDN relay: Sent to ***0123 ({newest}).")
    );
    assert_eq!(world.sender.sent().len(), 3, "one answer for two texts");
}

#[tokio::test]
async fn a_bare_answer_with_two_drivers_waiting_lists_them_and_sends_nothing() {
    let world = World::new(seed(), ScriptedSender::default());
    let first = world.driver_texts(1, DRIVER, "Load ready").await;
    let second = world.driver_texts(2, OTHER_DRIVER, "Where do I dump").await;
    let handled = world.answer(3, PRIMARY, "On my way").await;
    let listing = reply(&handled);
    assert!(
        listing.contains(&format!("{first} ***0123 \"Load ready\"")),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("{second} ***0456 \"Where do I dump\"")),
        "{listing}"
    );
    assert_eq!(world.sender.sent().len(), 2);
}

#[tokio::test]
async fn only_the_phone_a_text_went_to_may_answer_it_and_only_within_the_window() {
    let world = World::new(seed(), ScriptedSender::default());
    let reference = world.driver_texts(1, DRIVER, "Load ready").await;
    // The backup's phone never got it.
    let handled = world
        .answer(2, "+18583354807", &format!("{reference} On my way"))
        .await;
    assert!(reply(&handled).starts_with(&format!("QDN relay: Not sent: {reference} is not")));
    // Past the window, the primary cannot either.
    let late = world
        .relay_at(
            &text_with_sid(3, PRIMARY, &format!("{reference} On my way")),
            NOW + world.settings.reply_window_secs as i64,
        )
        .await
        .unwrap();
    assert!(
        reply(&late).contains("is not a text sent to this phone"),
        "{}",
        reply(&late)
    );
    assert_eq!(world.sender.sent().len(), 1);
}

#[tokio::test]
async fn a_backups_running_late_reaches_nobody() {
    let world = World::new(seed(), ScriptedSender::default());
    let handled = world.answer(1, "+18583354807", "Running 10 min late").await;
    assert!(reply(&handled).contains("Not sent: no driver's text came to this phone"));
    assert!(
        world.sender.tried().is_empty(),
        "never relayed down the cascade"
    );
}

#[tokio::test]
async fn twilio_refusing_the_drivers_number_is_told_and_not_retried() {
    let world = World::new(seed(), ScriptedSender::default());
    let reference = world.driver_texts(1, DRIVER, "Load ready").await;
    world.sender.script([refused(21610)]);
    let handled = world
        .answer(2, PRIMARY, &format!("{reference} On my way"))
        .await;
    assert_eq!(
        reply(&handled),
        format!(
            "QDN relay: Not sent to ***0123 ({reference}): the driver has unsubscribed (replied STOP) from this number (Twilio 21610). Call the driver instead."
        )
    );
    assert_eq!(world.sender.tried().len(), 2, "one try, no other number");
}

#[tokio::test]
async fn an_answer_too_long_to_stamp_is_refused() {
    let world = World::new(seed(), ScriptedSender::default());
    let reference = world.driver_texts(1, DRIVER, "Load ready").await;
    let long = "x".repeat(1590);
    let handled = world
        .answer(2, PRIMARY, &format!("{reference} {long}"))
        .await;
    assert!(reply(&handled).starts_with("QDN relay: Not sent: the answer is 1590 characters"));
    assert_eq!(world.sender.sent().len(), 1);
}

#[tokio::test]
async fn a_long_text_is_cut_never_its_reference_and_fits_one_twilio_message() {
    let world = World::new(seed(), ScriptedSender::default());
    let long = "word ".repeat(400);
    let reference = world.driver_texts(1, DRIVER, &long).await;
    let body = world.sender.sent()[0].body.clone();
    assert!(body.chars().count() <= 1600, "{}", body.chars().count());
    assert!(body.contains(" [cut]\n["), "{body}");
    assert!(body.ends_with(&format!(
        "Reply \"{reference} <answer>\" to answer the driver"
    )));
}
