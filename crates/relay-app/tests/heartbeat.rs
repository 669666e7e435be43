//! The heartbeat over the in-memory adapters: verdicts, one alert per change, one
//! alert per new configuration problem, and concurrent changes left alone.

use async_trait::async_trait;
use relay_app::handover::Handovers;
use relay_app::heartbeat::Heartbeat;
use relay_app::memory::{MemoryDispatcherStore, MemoryMessageLog, RecordingAlerts, ScriptedSender};
use relay_core::alert::AlertKind;
use relay_core::dispatcher::{DispatcherRecord, Flag};
use relay_core::ids::DispatcherId;
use relay_core::phone::{CountryCode, PhoneNumber};
use relay_core::ports::SendError;
use relay_core::ports::{DeliveryHealth, DeliveryLog, StoreError};
use relay_core::roster::RotaItem;
use relay_core::rota::{Rota, StoredRota};

const NOW: i64 = 1_800_000_000;

fn dispatcher(id: &str, phone: &str) -> DispatcherRecord {
    DispatcherRecord {
        dispatcher_id: DispatcherId::parse(id).unwrap(),
        phone: Some(phone.into()),
        available: Flag::Set(true),
        last_heartbeat: Some(NOW - 600),
        backup_dispatcher: None,
        tertiary_contact: None,
        message_log_ttl: None,
        on_duty: Flag::Set(true),
        problems: Vec::new(),
    }
}

fn number(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw, CountryCode::NANP).unwrap()
}

struct World {
    primary: DispatcherId,
    dispatchers: MemoryDispatcherStore,
    log: MemoryMessageLog,
    alerts: RecordingAlerts,
    texts: ScriptedSender,
}

impl World {
    fn new(records: Vec<DispatcherRecord>) -> Self {
        World {
            primary: DispatcherId::parse("sergio-main").unwrap(),
            dispatchers: MemoryDispatcherStore::with(records),
            log: MemoryMessageLog::default(),
            alerts: RecordingAlerts::default(),
            texts: ScriptedSender::default(),
        }
    }

    fn handovers(&self) -> Handovers<'_> {
        Handovers {
            claims: &self.log,
            texts: &self.texts,
            default_country: CountryCode::NANP,
        }
    }

    async fn run_with(
        &self,
        deliveries: &dyn DeliveryLog,
        now: i64,
    ) -> relay_app::heartbeat::RunSummary {
        let heartbeat = Heartbeat {
            primary_dispatcher_id: &self.primary,
            default_country: CountryCode::NANP,
            dispatchers: &self.dispatchers,
            deliveries,
            problems: &self.log,
            alerts: &self.alerts,
            handovers: self.handovers(),
        };
        heartbeat.run(now).await.unwrap()
    }

    async fn run(&self, now: i64) -> relay_app::heartbeat::RunSummary {
        self.run_with(&self.log, now).await
    }

    fn take_alerts(&self) -> Vec<(AlertKind, String)> {
        let alerts = self.alerts.alerts();
        alerts
            .iter()
            .map(|a| (a.kind, a.dispatcher_id.to_string()))
            .collect()
    }
}

#[tokio::test]
async fn a_healthy_dispatcher_is_checked_in_without_an_alert() {
    let world = World::new(vec![dispatcher("sergio-main", "+18585550100")]);
    let summary = world.run(NOW).await;
    assert_eq!(
        (summary.seen, summary.available, summary.changed),
        (1, 1, 0)
    );
    let record = world.dispatchers.record("sergio-main").unwrap();
    assert!(record.is_marked_available());
    assert_eq!(record.last_heartbeat, Some(NOW));
    assert!(world.take_alerts().is_empty());
}

#[tokio::test]
async fn off_duty_and_back_each_alert_once() {
    let mut off = dispatcher("sergio-main", "+18585550100");
    off.on_duty = Flag::Set(false);
    let world = World::new(vec![off]);
    assert_eq!(world.run(NOW).await.changed, 1);
    let record = world.dispatchers.record("sergio-main").unwrap();
    assert!(!record.is_marked_available());
    assert_eq!(
        record.last_heartbeat,
        Some(NOW - 600),
        "untouched when unhealthy"
    );
    assert_eq!(
        world.run(NOW + 300).await.changed,
        0,
        "nothing changed: no alert"
    );
    let mut back = world.dispatchers.record("sergio-main").unwrap();
    back.on_duty = Flag::Set(true);
    world.dispatchers.put(back);
    assert_eq!(world.run(NOW + 600).await.changed, 1);
    assert_eq!(
        world.take_alerts(),
        vec![
            (AlertKind::DispatcherUnavailable, "sergio-main".into()),
            (AlertKind::DispatcherAvailable, "sergio-main".into())
        ]
    );
}

#[tokio::test]
async fn a_failed_delivery_makes_a_dispatcher_unavailable_until_one_succeeds() {
    let world = World::new(vec![dispatcher("sergio-main", "+18585550100")]);
    let phone = number("+18585550100");
    world
        .log
        .record_delivery(&phone, false, Some(30003), NOW - 60)
        .await
        .unwrap();
    world.run(NOW).await;
    assert!(
        !world
            .dispatchers
            .record("sergio-main")
            .unwrap()
            .is_marked_available()
    );
    world
        .log
        .record_delivery(&phone, true, None, NOW + 100)
        .await
        .unwrap();
    world.run(NOW + 300).await;
    assert!(
        world
            .dispatchers
            .record("sergio-main")
            .unwrap()
            .is_marked_available()
    );
    assert_eq!(world.take_alerts().len(), 2);
}

#[tokio::test]
async fn configuration_problems_are_alerted_once_each() {
    let mut bad = dispatcher("maria-backup", "555-01");
    bad.tertiary_contact = Some("not a number".into());
    // No sergio-main item: the primary is missing.
    let world = World::new(vec![bad]);
    let first = world.run(NOW).await;
    assert_eq!((first.problems, first.new_problems), (3, 3));
    let second = world.run(NOW + 300).await;
    assert_eq!((second.problems, second.new_problems), (3, 0));
    let problems: Vec<(AlertKind, String)> = world
        .take_alerts()
        .into_iter()
        .filter(|(kind, _)| *kind == AlertKind::ConfigurationProblem)
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.contains(&(AlertKind::ConfigurationProblem, "sergio-main".into())));
}

/// A delivery log that, while the heartbeat looks at a dispatcher, has them text OFF.
struct OffDuringTheRun<'a> {
    world: &'a World,
}

#[async_trait]
impl DeliveryLog for OffDuringTheRun<'_> {
    async fn record_delivery(
        &self,
        _: &PhoneNumber,
        _: bool,
        _: Option<u32>,
        _: i64,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn health(&self, _: &PhoneNumber) -> Result<DeliveryHealth, StoreError> {
        let mut record = self.world.dispatchers.record("sergio-main").unwrap();
        record.on_duty = Flag::Set(false);
        self.world.dispatchers.put(record);
        Ok(DeliveryHealth::default())
    }
}

#[tokio::test]
async fn a_concurrent_off_is_not_overwritten() {
    let mut stale = dispatcher("sergio-main", "+18585550100");
    stale.available = Flag::Set(false);
    let world = World::new(vec![stale]);
    let summary = world
        .run_with(&OffDuringTheRun { world: &world }, NOW)
        .await;
    assert_eq!(summary.skipped_concurrent, 1);
    let record = world.dispatchers.record("sergio-main").unwrap();
    assert_eq!(record.on_duty, Flag::Set(false));
    assert!(
        !record.is_marked_available(),
        "the stale healthy verdict was not written"
    );
    assert!(world.take_alerts().is_empty());
}

/// A delivery log that DynamoDB throttles for one number.
struct ThrottledFor(&'static str);

#[async_trait]
impl DeliveryLog for ThrottledFor {
    async fn record_delivery(
        &self,
        _: &PhoneNumber,
        _: bool,
        _: Option<u32>,
        _: i64,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn health(&self, to: &PhoneNumber) -> Result<DeliveryHealth, StoreError> {
        if to.as_str() == self.0 {
            return Err(StoreError::Unavailable {
                table: "messages".into(),
                operation: "GetItem",
                detail: "ProvisionedThroughputExceededException".into(),
            });
        }
        Ok(DeliveryHealth::default())
    }
}

#[tokio::test]
async fn a_run_that_fails_part_way_checks_the_rest_and_reports_the_failure() {
    let mut off = dispatcher("d-off", "+18585550111");
    off.on_duty = Flag::Set(false);
    let world = World::new(vec![
        dispatcher("sergio-main", "+18585550100"),
        off,
        dispatcher("d-throttled", "+18585550122"),
    ]);
    let heartbeat = Heartbeat {
        primary_dispatcher_id: &world.primary,
        default_country: CountryCode::NANP,
        dispatchers: &world.dispatchers,
        deliveries: &ThrottledFor("+18585550122"),
        problems: &world.log,
        alerts: &world.alerts,
        handovers: world.handovers(),
    };
    let error = heartbeat.run(NOW).await.unwrap_err();
    assert_eq!(error.failed, 1);
    assert_eq!(error.summary.seen, 3);
    assert_eq!(error.summary.changed, 1, "the others were still checked");
    // The throttled item was not touched; the others are consistent.
    let throttled = world.dispatchers.record("d-throttled").unwrap();
    assert_eq!(throttled.last_heartbeat, Some(NOW - 600));
    assert!(
        !world
            .dispatchers
            .record("d-off")
            .unwrap()
            .is_marked_available()
    );
    assert_eq!(world.dispatchers.last_heartbeat("sergio-main"), Some(NOW));
}

/// `HH:MM` of a minute of the day (UTC), wrapping round midnight.
fn clock(minute: i64) -> String {
    let minute = minute.rem_euclid(1_440);
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// A UTC rota whose `ana` shift began a minute before `NOW` and lasts 8 hours, with
/// `bo` on the rest of the day.
fn rota_starting_a_minute_ago(extra: &str) -> RotaItem {
    let start = NOW.rem_euclid(86_400) / 60 - 1;
    let text = format!(
        "zone UTC\ndaily {}-{} ana\ndaily {}-{} bo\n{extra}",
        clock(start),
        clock(start + 480),
        clock(start + 480),
        clock(start)
    );
    RotaItem::Stored(StoredRota {
        rota: Rota::parse(&text).unwrap(),
        text,
        updated_at: None,
    })
}

fn rota_world() -> World {
    let world = World::new(vec![
        dispatcher("sergio-main", "+18585550100"),
        dispatcher("ana", "+18585550111"),
        dispatcher("bo", "+18585550122"),
    ]);
    world.dispatchers.set_rota(rota_starting_a_minute_ago(""));
    world
}

#[tokio::test]
async fn the_rota_decides_who_is_primary_and_the_incoming_one_is_texted_once_per_shift() {
    let world = rota_world();
    let first = world.run(NOW).await;
    assert_eq!((first.primary.as_str(), first.primary_by), ("ana", "shift"));
    assert_eq!(first.handover, "sent");
    let sent = world.texts.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to.as_str(), "+18585550111");
    let until = clock(NOW.rem_euclid(86_400) / 60 - 1 + 480);
    assert_eq!(
        sent[0].body,
        format!("You are on QDN dispatch until {until} UTC. Reply OFF to hand over.")
    );
    // Later runs of the same shift, one after another and two at once: no more texts.
    assert_eq!(world.run(NOW + 300).await.handover, "already_sent");
    let (a, b) = tokio::join!(world.run(NOW + 600), world.run(NOW + 600));
    assert_eq!((a.handover, b.handover), ("already_sent", "already_sent"));
    assert_eq!(world.texts.sent().len(), 1);
    // The next shift is bo's, and bo gets one text when it starts.
    let bo = world.run(NOW - 60 + 8 * 3_600 + 30).await;
    assert_eq!((bo.primary.as_str(), bo.handover), ("bo", "sent"));
    assert_eq!(world.texts.sent()[1].to.as_str(), "+18585550122");
}

#[tokio::test]
async fn concurrent_first_runs_of_a_shift_send_one_handover() {
    let world = rota_world();
    let (a, b, c) = tokio::join!(world.run(NOW), world.run(NOW), world.run(NOW + 1));
    let mut outcomes = [a.handover, b.handover, c.handover];
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["already_sent", "already_sent", "sent"]);
    assert_eq!(world.texts.sent().len(), 1);
}

#[tokio::test]
async fn a_handover_twilio_refused_is_tried_again_by_the_next_run() {
    let world = rota_world();
    world.texts.script([SendError::Unavailable {
        detail: "503".into(),
    }]);
    assert_eq!(world.run(NOW).await.handover, "failed");
    assert!(world.texts.sent().is_empty());
    assert_eq!(world.run(NOW + 300).await.handover, "sent");
    assert_eq!(world.texts.sent().len(), 1);
}

#[tokio::test]
async fn without_a_rota_nobody_is_handed_over_and_the_fallback_is_primary() {
    let world = World::new(vec![dispatcher("sergio-main", "+18585550100")]);
    let summary = world.run(NOW).await;
    assert_eq!(
        (
            summary.primary.as_str(),
            summary.primary_by,
            summary.handover
        ),
        ("sergio-main", "fallback", "none")
    );
    assert!(world.texts.tried().is_empty());
}

#[tokio::test]
async fn a_rota_naming_a_missing_dispatcher_is_alerted_once() {
    let world = rota_world();
    let override_line = format!(
        "override {} {} ghost\n",
        jiff::Timestamp::from_second(NOW + 3_600).unwrap(),
        jiff::Timestamp::from_second(NOW + 7_200).unwrap()
    );
    world
        .dispatchers
        .set_rota(rota_starting_a_minute_ago(&override_line));
    world.run(NOW).await;
    world.run(NOW + 300).await;
    let alerts: Vec<_> = world
        .alerts
        .alerts()
        .into_iter()
        .filter(|a| a.kind == AlertKind::ConfigurationProblem)
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].dispatcher_id.to_string(), "ghost");
    assert_eq!(
        alerts[0].reason,
        "#rota: the rota names dispatcher ghost, which has no item"
    );
}
