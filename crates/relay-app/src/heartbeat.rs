//! `dispatcher-heartbeat`: every five minutes, every dispatcher item is re-evaluated.
//!
//! Healthy = on duty, and no delivery failure to their phone newer than their last
//! successful delivery. Healthy: `available = true, last_heartbeat = now`; not healthy:
//! `available = false`. Writes are conditional on what was read, so a concurrent
//! `ON`/`OFF` or inbound flip is never overwritten; each change of `available` is one
//! alert. Configuration problems (damaged attributes, numbers that do not normalise, a
//! missing primary, unreadable items) are alerted once each, when they appear.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use relay_core::alert::{Alert, AlertKind};

use crate::alerting::publish_or_log;
use crate::metric;
use relay_core::cascade::names_dispatcher;
use relay_core::dispatcher::{DispatcherAttribute, DispatcherRecord, Flag};
use relay_core::ids::DispatcherId;
use relay_core::phone::{CountryCode, PhoneNumber};
use relay_core::ports::{
    AlertPublisher, DeliveryHealth, DeliveryLog, DispatcherStore, Observed, ProblemLog, StoreError,
};
use relay_core::problem::{ConfigProblem, ProblemKey};
use relay_core::roster::{Roster, RotaItem};
use relay_core::rota::{RotaProblem, check_rota};

use crate::handover::Handovers;
use relay_core::stored::Damage;

/// Why the heartbeat finds a dispatcher not healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhealthy {
    OffDuty,
    /// `on_duty` is not a boolean: its safe value is "not available".
    OnDutyDamaged,
    NoUsablePhone,
    DeliveryFailed,
}

impl fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unhealthy::OffDuty => "off duty",
            Unhealthy::OnDutyDamaged => "on_duty is not a boolean",
            Unhealthy::NoUsablePhone => "no usable phone number",
            Unhealthy::DeliveryFailed => {
                "a delivery to their phone failed after its last successful delivery"
            }
        })
    }
}

/// The heartbeat's verdict on one dispatcher item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub healthy: bool,
    /// Why not, when not healthy.
    pub reason: Option<Unhealthy>,
    /// Configuration problems of the item: what the decoder found damaged, and the
    /// numbers that cannot be used.
    pub problems: Vec<ConfigProblem>,
}

/// Judges one item, given what the relay has seen of deliveries to its phone (`None`
/// when it has no usable phone). Pure.
pub fn assess(
    record: &DispatcherRecord,
    phone: Option<&PhoneNumber>,
    deliveries: DeliveryHealth,
    default_country: CountryCode,
) -> Assessment {
    let id = &record.dispatcher_id;
    let mut problems: Vec<ConfigProblem> = record
        .problems
        .iter()
        .map(|problem| ConfigProblem::Attribute {
            dispatcher_id: id.clone(),
            problem: problem.clone(),
        })
        .collect();
    for (attribute, raw) in [
        (DispatcherAttribute::Phone, &record.phone),
        (
            DispatcherAttribute::BackupDispatcher,
            &record.backup_dispatcher,
        ),
        (
            DispatcherAttribute::TertiaryContact,
            &record.tertiary_contact,
        ),
    ] {
        match raw.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            // A damaged attribute is already a problem; only the phone is needed.
            None if attribute == DispatcherAttribute::Phone
                && record.damage(attribute).is_none() =>
            {
                problems.push(ConfigProblem::attribute(id, attribute, Damage::Missing));
            }
            None => {}
            // A tier naming another dispatcher: checked against the table
            // ([`roster_problems`]).
            Some(raw)
                if attribute != DispatcherAttribute::Phone && names_dispatcher(raw).is_some() => {}
            Some(raw) => {
                if let Err(e) = PhoneNumber::parse(raw, default_country) {
                    let damage = Damage::DoesNotNormalise { reason: e.reason() };
                    problems.push(ConfigProblem::attribute(id, attribute, damage));
                }
            }
        }
    }
    let reason = if record.on_duty == Flag::Damaged {
        Some(Unhealthy::OnDutyDamaged)
    } else if !record.is_on_duty() {
        Some(Unhealthy::OffDuty)
    } else if phone.is_none() {
        Some(Unhealthy::NoUsablePhone)
    } else if !deliveries.is_healthy() {
        Some(Unhealthy::DeliveryFailed)
    } else {
        None
    };
    Assessment {
        healthy: reason.is_none(),
        reason,
        problems,
    }
}

/// Every configuration problem of a whole table, as the heartbeat reports them: each
/// item's [`assess`] problems, one per unreadable item, and [`roster_problems`].
/// Pure; `qdn dispatchers check` prints these.
pub fn configuration_problems(
    roster: &Roster,
    fallback_primary: &DispatcherId,
    default_country: CountryCode,
    now: i64,
) -> Vec<ConfigProblem> {
    let mut problems = Problems::default();
    for item in &roster.items {
        match item {
            Ok(record) => {
                let phone = usable_phone(record, default_country);
                let verdict = assess(
                    record,
                    phone.as_ref(),
                    DeliveryHealth::default(),
                    default_country,
                );
                problems.extend(verdict.problems);
            }
            Err(unreadable) => problems.extend([ConfigProblem::Unreadable(unreadable.clone())]),
        }
    }
    problems.extend(roster_problems(roster, fallback_primary, now));
    problems.0.into_values().collect()
}

/// The problems of the table as a whole: tiers naming a dispatcher with no item, the
/// rota's (unusable, naming a missing dispatcher, overlapping shifts, gaps), and the
/// fallback primary's item missing while the rota leaves it any time to cover.
pub fn roster_problems(
    roster: &Roster,
    fallback_primary: &DispatcherId,
    now: i64,
) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    for record in roster.records() {
        for (attribute, raw) in [
            (
                DispatcherAttribute::BackupDispatcher,
                &record.backup_dispatcher,
            ),
            (
                DispatcherAttribute::TertiaryContact,
                &record.tertiary_contact,
            ),
        ] {
            if let Some(named) = raw.as_deref().and_then(names_dispatcher)
                && roster.record(&named).is_none()
            {
                let damage = Damage::UnknownDispatcher {
                    dispatcher: named.to_string(),
                };
                problems.push(ConfigProblem::attribute(
                    &record.dispatcher_id,
                    attribute,
                    damage,
                ));
            }
        }
    }
    let fallback_needed = match &roster.rota {
        RotaItem::Absent => true,
        RotaItem::Unreadable(why) => {
            problems.push(ConfigProblem::Rota(RotaProblem::Unreadable(why.clone())));
            true
        }
        RotaItem::Stored(stored) => {
            let exists = |id: &DispatcherId| roster.record(id).is_some();
            let found = check_rota(&stored.rota, &exists, now);
            let gap = found.iter().any(|p| matches!(p, RotaProblem::Gap { .. }));
            problems.extend(found.into_iter().map(ConfigProblem::Rota));
            gap || stored.rota.shifts.is_empty()
        }
    };
    if fallback_needed && roster.record(fallback_primary).is_none() {
        problems.push(ConfigProblem::PrimaryMissing {
            dispatcher_id: fallback_primary.clone(),
        });
    }
    problems
}

/// The phone a text to this dispatcher would go to, if it has a usable one.
fn usable_phone(record: &DispatcherRecord, default_country: CountryCode) -> Option<PhoneNumber> {
    record
        .phone
        .as_deref()
        .and_then(|raw| PhoneNumber::parse(raw, default_country).ok())
}

/// Problems by their stable key: one entry per problem, in key order.
#[derive(Debug, Default)]
struct Problems(BTreeMap<ProblemKey, ConfigProblem>);

impl Problems {
    fn extend(&mut self, problems: impl IntoIterator<Item = ConfigProblem>) {
        for problem in problems {
            self.0.entry(problem.key()).or_insert(problem);
        }
    }
}

/// What one run did: the JSON summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// Dispatcher items read (unreadable ones included).
    pub seen: usize,
    /// Items available after the run.
    pub available: usize,
    /// Items whose `available` this run changed (each with an alert).
    pub changed: usize,
    /// Configuration problems found (each alerted once, when it first appears).
    pub problems: usize,
    pub new_problems: usize,
    pub unreadable: usize,
    /// Items changed by someone else while the run looked at them: left for the next.
    pub skipped_concurrent: usize,
    /// Items whose update failed (DynamoDB errors): the run reports a failure.
    pub failed: usize,
    /// Whether the primary dispatcher's item is available after the run (false when
    /// it is missing or could not be checked).
    pub primary_available: bool,
    /// Who is primary now (the rota's, else `PRIMARY_DISPATCHER_ID`), and why.
    pub primary: String,
    pub primary_by: &'static str,
    /// What became of the handover text this run.
    pub handover: &'static str,
}

/// Why a run failed part-way; what it touched is consistent, the next run retries.
#[derive(Debug, thiserror::Error)]
#[error("the heartbeat run failed for {failed} item(s): {first}")]
pub struct RunError {
    pub failed: usize,
    pub first: StoreError,
    pub summary: RunSummary,
}

/// The heartbeat's dependencies, borrowed for one run.
pub struct Heartbeat<'a> {
    pub primary_dispatcher_id: &'a DispatcherId,
    pub default_country: CountryCode,
    pub dispatchers: &'a dyn DispatcherStore,
    pub deliveries: &'a dyn DeliveryLog,
    pub problems: &'a dyn ProblemLog,
    pub alerts: &'a dyn AlertPublisher,
    /// The incoming primary's handover text, once per stint.
    pub handovers: Handovers<'a>,
}

impl Heartbeat<'_> {
    pub async fn run(&self, now: i64) -> Result<RunSummary, RunError> {
        let mut summary = RunSummary::default();
        let mut failures: Vec<StoreError> = Vec::new();
        let mut problems = Problems::default();
        let roster = match self.dispatchers.roster().await {
            Ok(roster) => roster,
            Err(e) => {
                summary.failed = 1;
                return Err(RunError {
                    failed: 1,
                    first: e,
                    summary,
                });
            }
        };
        summary.seen = roster.items.len();
        let duty = roster.duty_at(self.primary_dispatcher_id, now);
        summary.primary = duty.dispatcher.to_string();
        summary.primary_by = duty.source.name();
        for item in &roster.items {
            let record = match item {
                Ok(record) => record,
                Err(unreadable) => {
                    // Reported (once) and skipped: one bad item never stops the run.
                    summary.unreadable += 1;
                    problems.extend([ConfigProblem::Unreadable(unreadable.clone())]);
                    continue;
                }
            };
            let is_primary = record.dispatcher_id == duty.dispatcher;
            match self.check(record, now, &mut problems).await {
                Ok(Checked {
                    available,
                    changed,
                    concurrent,
                }) => {
                    summary.primary_available |= is_primary && available;
                    summary.available += usize::from(available);
                    summary.changed += usize::from(changed);
                    summary.skipped_concurrent += usize::from(concurrent);
                }
                Err(e) => {
                    tracing::error!(dispatcher_id = %record.dispatcher_id, error = %e, "heartbeat update failed");
                    failures.push(e);
                }
            }
        }
        problems.extend(roster_problems(&roster, self.primary_dispatcher_id, now));
        summary.handover = self
            .handovers
            .hand_over(&roster, self.primary_dispatcher_id, now)
            .await
            .name();
        summary.problems = problems.0.len();
        match self.alert_new_problems(&problems, now).await {
            Ok(new) => summary.new_problems = new,
            Err(e) => failures.push(e),
        }
        summary.failed = failures.len();
        tracing::info!(
            seen = summary.seen,
            available = summary.available,
            changed = summary.changed,
            problems = summary.problems,
            new_problems = summary.new_problems,
            unreadable = summary.unreadable,
            skipped_concurrent = summary.skipped_concurrent,
            failed = summary.failed,
            primary_available = summary.primary_available,
            primary = %summary.primary,
            primary_by = summary.primary_by,
            handover = summary.handover,
            "heartbeat run"
        );
        metric::dispatchers_available(summary.available, summary.primary_available);
        match failures.into_iter().next() {
            None => Ok(summary),
            Some(first) => Err(RunError {
                failed: summary.failed,
                first,
                summary,
            }),
        }
    }

    async fn check(
        &self,
        record: &DispatcherRecord,
        now: i64,
        problems: &mut Problems,
    ) -> Result<Checked, StoreError> {
        let phone = usable_phone(record, self.default_country);
        let deliveries = match &phone {
            Some(phone) => self.deliveries.health(phone).await?,
            None => DeliveryHealth::default(),
        };
        let verdict = assess(record, phone.as_ref(), deliveries, self.default_country);
        problems.extend(verdict.problems);
        let was_available = record.is_marked_available();
        // An unhealthy dispatcher already stored as unavailable needs no write. Any
        // other state is written, which also mends a damaged `available`: it is the
        // heartbeat's own attribute.
        if !verdict.healthy && record.available == Flag::Set(false) {
            return Ok(Checked::unchanged(false));
        }
        let id = &record.dispatcher_id;
        if !self
            .dispatchers
            .set_health(id, &Observed::of(record), verdict.healthy, now)
            .await?
        {
            tracing::info!(dispatcher_id = %id, "dispatcher item changed during the run; left for the next run");
            return Ok(Checked {
                available: was_available,
                changed: false,
                concurrent: true,
            });
        }
        if verdict.healthy == was_available {
            return Ok(Checked::unchanged(verdict.healthy));
        }
        let (kind, reason) = match verdict.reason {
            None => (
                AlertKind::DispatcherAvailable,
                "healthy: on duty, and deliveries to their phone succeed".to_string(),
            ),
            Some(why) => (AlertKind::DispatcherUnavailable, why.to_string()),
        };
        tracing::info!(dispatcher_id = %id, available = verdict.healthy, reason = %reason, "dispatcher availability changed");
        publish_or_log(self.alerts, &Alert::new(kind, id, reason, now)).await;
        Ok(Checked {
            available: verdict.healthy,
            changed: true,
            concurrent: false,
        })
    }

    /// One alert per problem not alerted before; the known set becomes this run's, so
    /// a problem that is mended and comes back is alerted again.
    async fn alert_new_problems(&self, problems: &Problems, now: i64) -> Result<usize, StoreError> {
        let known = self.problems.known_problems().await?;
        let mut new = 0;
        for (key, problem) in &problems.0 {
            if known.contains(key) {
                continue;
            }
            new += 1;
            let alert = Alert::configuration_problem(problem, now);
            publish_or_log(self.alerts, &alert).await;
        }
        let current: BTreeSet<ProblemKey> = problems.0.keys().cloned().collect();
        if current != known {
            self.problems.set_known_problems(&current).await?;
        }
        Ok(new)
    }
}

struct Checked {
    available: bool,
    changed: bool,
    concurrent: bool,
}

impl Checked {
    fn unchanged(available: bool) -> Self {
        Checked {
            available,
            changed: false,
            concurrent: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_core::dispatcher::{AttributeProblem, UnreadableDispatcher};
    use relay_core::stored::{Expected, StoredType};

    fn record() -> DispatcherRecord {
        DispatcherRecord {
            phone: Some("+18585550100".into()),
            available: Flag::Set(false),
            backup_dispatcher: Some("858-335-4807".into()),
            ..DispatcherRecord::new(DispatcherId::parse("sergio-main").unwrap())
        }
    }

    fn judge(record: &DispatcherRecord, deliveries: DeliveryHealth) -> Assessment {
        let phone = usable_phone(record, CountryCode::NANP);
        assess(record, phone.as_ref(), deliveries, CountryCode::NANP)
    }

    fn keys(problems: &[ConfigProblem]) -> Vec<String> {
        problems.iter().map(|p| p.key().to_string()).collect()
    }

    #[test]
    fn on_duty_with_good_deliveries_is_healthy() {
        let verdict = judge(&record(), DeliveryHealth::default());
        assert!(
            verdict.healthy && verdict.problems.is_empty(),
            "{verdict:?}"
        );
        let recovered = DeliveryHealth {
            last_failure_at: Some(10),
            last_success_at: Some(20),
        };
        assert!(judge(&record(), recovered).healthy);
    }

    #[test]
    fn off_duty_or_a_newer_failure_is_not() {
        let mut off = record();
        off.on_duty = Flag::Set(false);
        assert_eq!(
            judge(&off, DeliveryHealth::default()).reason,
            Some(Unhealthy::OffDuty)
        );
        let failing = DeliveryHealth {
            last_failure_at: Some(30),
            last_success_at: Some(20),
        };
        let verdict = judge(&record(), failing);
        assert_eq!(verdict.reason, Some(Unhealthy::DeliveryFailed));
    }

    #[test]
    fn a_damaged_on_duty_is_not_healthy_and_is_a_problem() {
        let mut damaged = record();
        damaged.on_duty = Flag::Damaged;
        damaged.problems.push(AttributeProblem {
            attribute: DispatcherAttribute::OnDuty,
            damage: Damage::WrongType {
                expected: Expected::Boolean,
                found: StoredType::String,
            },
        });
        let verdict = judge(&damaged, DeliveryHealth::default());
        assert_eq!(verdict.reason, Some(Unhealthy::OnDutyDamaged));
        assert_eq!(
            keys(&verdict.problems),
            vec!["sergio-main/on_duty/wrong_type"]
        );
        assert_eq!(
            verdict.problems[0].to_string(),
            "sergio-main: on_duty: expected a boolean, found a string"
        );
    }

    #[test]
    fn configuration_problems_of_a_table_are_what_the_heartbeat_reports() {
        let primary = DispatcherId::parse("sergio-main").unwrap();
        let mut bad = record();
        bad.dispatcher_id = DispatcherId::parse("maria-backup").unwrap();
        bad.backup_dispatcher = Some("555-01".into());
        let unreadable = UnreadableDispatcher {
            key: Some("garbled key".into()),
            damage: Damage::Unrecognised {
                expected: Expected::DispatcherId,
            },
        };
        let roster = Roster {
            items: vec![Ok(bad.clone()), Err(unreadable)],
            rota: RotaItem::Absent,
        };
        let problems = configuration_problems(&roster, &primary, CountryCode::NANP, 0);
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "garbled key: dispatcher_id: expected a dispatcher ID, found another string; the item is not used",
                "maria-backup: backup_dispatcher does not normalise (wrong number of digits)",
                "sergio-main: the primary dispatcher item is missing",
            ]
        );
        let clean = configuration_problems(&Roster::of([record()]), &primary, CountryCode::NANP, 0);
        assert!(clean.is_empty(), "{clean:?}");
    }

    #[test]
    fn configuration_problems_are_named_without_the_numbers() {
        let mut bad = record();
        bad.phone = Some("555-01".into());
        bad.tertiary_contact = Some("call me".into());
        let verdict = judge(&bad, DeliveryHealth::default());
        assert!(!verdict.healthy);
        assert_eq!(verdict.reason, Some(Unhealthy::NoUsablePhone));
        assert_eq!(
            keys(&verdict.problems),
            vec![
                "sergio-main/phone/does_not_normalise",
                "sergio-main/tertiary_contact/does_not_normalise"
            ]
        );
        assert!(
            verdict
                .problems
                .iter()
                .all(|p| !p.to_string().contains("555-01"))
        );
        let mut none = record();
        none.phone = None;
        assert_eq!(
            keys(&judge(&none, DeliveryHealth::default()).problems),
            vec!["sergio-main/phone/missing"]
        );
    }
}
