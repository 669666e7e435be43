//! The acknowledgement service over the in-memory adapters: references, timers, and
//! what each kind of ACK does.

use relay_app::config::AckSettings;
use relay_app::memory::{MemoryAcks, RecordingTimers};
use relay_app::relay::acks::{AckOutcome, Acks};
use relay_app::relay::replies::Replies;
use relay_core::ack::AckState;
use relay_core::ids::MessageSid;
use relay_core::phone::{CountryCode, PhoneNumber};

const NOW: i64 = 1_800_000_000;

fn sid(n: u8) -> MessageSid {
    MessageSid::parse(&format!("SM{:032x}", n)).unwrap()
}

fn phone(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw, CountryCode::NANP).unwrap()
}

struct World {
    settings: AckSettings,
    store: MemoryAcks,
    timers: RecordingTimers,
}

impl World {
    fn new() -> Self {
        World {
            settings: AckSettings {
                queue_url: "https://sqs.example/q".into(),
                timeout_secs: 30,
            },
            store: MemoryAcks::default(),
            timers: RecordingTimers::default(),
        }
    }

    fn replies(&self) -> Replies<'_> {
        Replies {
            store: &self.store,
            window_secs: 600,
        }
    }

    fn acks(&self) -> Acks<'_> {
        Acks {
            settings: &self.settings,
            store: &self.store,
            timers: &self.timers,
        }
    }
}

#[tokio::test]
async fn a_sent_text_awaits_its_ack_and_starts_its_timer() {
    let world = World::new();
    let acks = world.acks();
    let reference = world.replies().reserve(&sid(1), NOW).await.unwrap();
    acks.sent(&sid(1), &reference, &sid(101), &phone("+18585550100"), NOW)
        .await
        .unwrap();
    assert_eq!(world.store.state(sid(1).as_str()), Some(AckState::Awaiting));
    let timers = world.timers.timers();
    assert_eq!(timers.len(), 1);
    assert_eq!(timers[0].1, 30, "delayed by the window");
    assert_eq!(timers[0].0.forwarded_sid, sid(101));
    assert_eq!(timers[0].0.ack_ref, reference);
}

#[tokio::test]
async fn each_ack_gets_its_answer() {
    let world = World::new();
    let acks = world.acks();
    let primary = phone("+18585550100");
    let backup = phone("+18583354807");
    let first = world.replies().reserve(&sid(1), NOW).await.unwrap();
    acks.sent(&sid(1), &first, &sid(101), &primary, NOW)
        .await
        .unwrap();
    let second = world.replies().reserve(&sid(2), NOW).await.unwrap();
    assert_ne!(first, second, "references are unique among open messages");
    acks.sent(&sid(2), &second, &sid(102), &primary, NOW + 1)
        .await
        .unwrap();

    // Another phone, a word that is no reference, a reference never issued.
    let other = acks
        .acknowledge(&backup, Some(first.as_str()), NOW)
        .await
        .unwrap();
    assert_eq!(other, AckOutcome::NotYours(first.clone()));
    let job = acks
        .acknowledge(&primary, Some("JOB-1042"), NOW)
        .await
        .unwrap();
    assert_eq!(job, AckOutcome::UnknownReference("JOB-1042".into()));
    assert_eq!(
        acks.acknowledge(&backup, None, NOW).await.unwrap(),
        AckOutcome::NothingOpen
    );

    // A bare ACK takes the oldest; then the other by name.
    let bare = acks.acknowledge(&primary, None, NOW).await.unwrap();
    assert!(bare.reply().contains("acknowledged"));
    assert_eq!(
        world.store.state(sid(1).as_str()),
        Some(AckState::Acknowledged)
    );
    assert_eq!(world.store.state(sid(2).as_str()), Some(AckState::Awaiting));
    let named = acks
        .acknowledge(&primary, Some(&second.as_str().to_lowercase()), NOW)
        .await
        .unwrap();
    assert_eq!(
        named,
        AckOutcome::Acknowledged {
            reference: second.clone(),
            message_sid: sid(2)
        }
    );
    // Twice: the text no longer awaits an ACK (its reference lives on for answers).
    let again = acks
        .acknowledge(&primary, Some(second.as_str()), NOW)
        .await
        .unwrap();
    assert_eq!(again, AckOutcome::NotYours(second.clone()));
}

#[tokio::test]
async fn an_ack_and_a_timer_racing_end_in_one_of_them() {
    use relay_core::ports::AckStore;
    let world = World::new();
    let acks = world.acks();
    let primary = phone("+18585550100");
    let reference = world.replies().reserve(&sid(1), NOW).await.unwrap();
    acks.sent(&sid(1), &reference, &sid(101), &primary, NOW)
        .await
        .unwrap();
    world.store.set_current(&sid(1), &sid(101));
    assert!(
        world
            .store
            .begin_escalation(&sid(1), &sid(101), NOW + 30)
            .await
            .unwrap()
    );
    // The ACK came second: nothing changes.
    let late = acks
        .acknowledge(&primary, Some(reference.as_str()), NOW + 31)
        .await
        .unwrap();
    assert_eq!(late, AckOutcome::NotYours(reference));
    // A timer for another text of the message does nothing.
    assert!(
        !world
            .store
            .begin_escalation(&sid(1), &sid(99), NOW + 32)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_reference_outlives_any_ack_window_however_short_the_reply_window() {
    use relay_core::ports::AckStore;
    let world = World::new();
    let replies = Replies {
        store: &world.store,
        window_secs: 1,
    };
    let reference = replies.reserve(&sid(1), NOW).await.unwrap();
    // ACK_TIMEOUT_SECS is at most 900: an ACK at its end still finds the text.
    assert_eq!(
        world.store.find_ref(&reference, NOW + 900).await.unwrap(),
        Some(sid(1))
    );
    assert_eq!(
        world.store.find_ref(&reference, NOW + 961).await.unwrap(),
        None
    );
}
