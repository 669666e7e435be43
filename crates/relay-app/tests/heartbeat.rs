//! The heartbeat over the in-memory adapters: verdicts, one alert per change, one
//! alert per new configuration problem, and concurrent changes left alone.

use async_trait::async_trait;
use relay_app::heartbeat::Heartbeat;
use relay_app::memory::{MemoryDispatcherStore, MemoryMessageLog, RecordingAlerts};
use relay_core::alert::AlertKind;
use relay_core::dispatcher::{DispatcherRecord, Flag};
use relay_core::ids::DispatcherId;
use relay_core::phone::{CountryCode, PhoneNumber};
use relay_core::ports::{DeliveryHealth, DeliveryLog, StoreError};

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
}

impl World {
    fn new(records: Vec<DispatcherRecord>) -> Self {
        World {
            primary: DispatcherId::parse("sergio-main").unwrap(),
            dispatchers: MemoryDispatcherStore::with(records),
            log: MemoryMessageLog::default(),
            alerts: RecordingAlerts::default(),
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
