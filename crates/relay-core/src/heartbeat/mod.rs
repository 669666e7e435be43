//! `dispatcher-heartbeat`: every five minutes, every dispatcher item is re-evaluated.
//!
//! Healthy = on duty, and no delivery failure to their phone newer than their last
//! successful delivery. Healthy: `available = true, last_heartbeat = now`; not healthy:
//! `available = false`. Writes are conditional on what was read, so a concurrent
//! `ON`/`OFF` or inbound flip is never overwritten; each change of `available` is one
//! alert. Configuration problems (numbers that do not normalise, a missing primary, a
//! TTL that makes no sense, unreadable items) are alerted once each, when they appear.

pub mod http;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::alert::{Alert, AlertKind, publish_or_log};
use crate::dispatcher::DispatcherRecord;
use crate::ids::DispatcherId;
use crate::metric;
use crate::phone::{CountryCode, PhoneNumber};
use crate::ports::{
    AlertPublisher, DeliveryHealth, DeliveryLog, DispatcherStore, Observed, ProblemLog, StoreError,
};

/// A `message_log_ttl` longer than this is a typo, not a policy (a year).
pub const MAX_SANE_TTL_SECS: u64 = 366 * 86_400;

/// The heartbeat's verdict on one dispatcher item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub healthy: bool,
    /// Why not, when not healthy.
    pub reason: Option<String>,
    /// Configuration problems of the item, one sentence each (no raw numbers).
    pub problems: Vec<String>,
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
    let mut problems = Vec::new();
    match record
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => problems.push(format!("{id}: phone is not set")),
        Some(raw) => {
            if let Err(e) = PhoneNumber::parse(raw, default_country) {
                problems.push(format!("{id}: phone does not normalise ({})", e.reason()));
            }
        }
    }
    for (field, raw) in [
        ("backup_dispatcher", &record.backup_dispatcher),
        ("tertiary_contact", &record.tertiary_contact),
    ] {
        if let Some(raw) = raw.as_deref().map(str::trim).filter(|r| !r.is_empty())
            && let Err(e) = PhoneNumber::parse(raw, default_country)
        {
            problems.push(format!("{id}: {field} does not normalise ({})", e.reason()));
        }
    }
    if let Some(ttl) = record.message_log_ttl
        && (ttl == 0 || ttl > MAX_SANE_TTL_SECS)
    {
        problems.push(format!(
            "{id}: message_log_ttl {ttl} is not between 1 second and a year"
        ));
    }
    let reason = if !record.is_on_duty() {
        Some("off duty".to_string())
    } else if phone.is_none() {
        Some("no usable phone number".to_string())
    } else if !deliveries.is_healthy() {
        Some("a delivery to their phone failed after its last successful delivery".to_string())
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
/// item's [`assess`] problems, one per unreadable item, and the primary item missing.
/// Pure; `qdn dispatchers check` prints these.
pub fn configuration_problems(
    items: &[Result<DispatcherRecord, StoreError>],
    primary_dispatcher_id: &DispatcherId,
    default_country: CountryCode,
) -> BTreeSet<String> {
    let mut problems = BTreeSet::new();
    let mut primary_seen = false;
    for item in items {
        match item {
            Ok(record) => {
                primary_seen |= record.dispatcher_id == *primary_dispatcher_id;
                let phone = record
                    .phone
                    .as_deref()
                    .and_then(|raw| PhoneNumber::parse(raw, default_country).ok());
                let verdict = assess(
                    record,
                    phone.as_ref(),
                    DeliveryHealth::default(),
                    default_country,
                );
                problems.extend(verdict.problems);
            }
            Err(e) => {
                problems.insert(unreadable_problem(e));
            }
        }
    }
    if !primary_seen {
        problems.insert(missing_primary_problem(primary_dispatcher_id));
    }
    problems
}

/// The sentence for a missing primary item.
fn missing_primary_problem(primary_dispatcher_id: &DispatcherId) -> String {
    format!("{primary_dispatcher_id}: the primary dispatcher item is missing")
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
}

impl Heartbeat<'_> {
    pub async fn run(&self, now: i64) -> Result<RunSummary, RunError> {
        let mut summary = RunSummary::default();
        let mut failures: Vec<StoreError> = Vec::new();
        let mut problems: BTreeSet<String> = BTreeSet::new();
        let items = match self.dispatchers.all().await {
            Ok(items) => items,
            Err(e) => {
                summary.failed = 1;
                return Err(RunError {
                    failed: 1,
                    first: e,
                    summary,
                });
            }
        };
        summary.seen = items.len();
        let mut primary_seen = false;
        for item in items {
            let record = match item {
                Ok(record) => record,
                Err(e) => {
                    // Reported (once) and skipped: one bad item never stops the run.
                    tracing::warn!(error = %e, "unreadable dispatcher item skipped");
                    summary.unreadable += 1;
                    problems.insert(unreadable_problem(&e));
                    continue;
                }
            };
            let is_primary = record.dispatcher_id == *self.primary_dispatcher_id;
            primary_seen |= is_primary;
            match self.check(&record, now, &mut problems).await {
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
        if !primary_seen {
            problems.insert(missing_primary_problem(self.primary_dispatcher_id));
        }
        summary.problems = problems.len();
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
        problems: &mut BTreeSet<String>,
    ) -> Result<Checked, StoreError> {
        let phone = record
            .phone
            .as_deref()
            .and_then(|raw| PhoneNumber::parse(raw, self.default_country).ok());
        let deliveries = match &phone {
            Some(phone) => self.deliveries.health(phone).await?,
            None => DeliveryHealth::default(),
        };
        let verdict = assess(record, phone.as_ref(), deliveries, self.default_country);
        problems.extend(verdict.problems.iter().cloned());
        let seen = Observed {
            available: record.available,
            on_duty: record.on_duty,
        };
        // An unhealthy dispatcher already marked unavailable needs no write.
        if !verdict.healthy && !record.available {
            return Ok(Checked::unchanged(false));
        }
        let id = &record.dispatcher_id;
        if !self
            .dispatchers
            .set_health(id, &seen, verdict.healthy, now)
            .await?
        {
            tracing::info!(dispatcher_id = %id, "dispatcher item changed during the run; left for the next run");
            return Ok(Checked {
                available: record.available,
                changed: false,
                concurrent: true,
            });
        }
        if verdict.healthy == record.available {
            return Ok(Checked::unchanged(verdict.healthy));
        }
        let (kind, reason) = if verdict.healthy {
            (
                AlertKind::DispatcherAvailable,
                "healthy: on duty, and deliveries to their phone succeed".to_string(),
            )
        } else {
            (
                AlertKind::DispatcherUnavailable,
                verdict.reason.unwrap_or_default(),
            )
        };
        tracing::info!(dispatcher_id = %id, available = verdict.healthy, reason = %reason, "dispatcher availability changed");
        publish_or_log(self.alerts, &Alert::new(kind, id.as_str(), reason, now)).await;
        Ok(Checked {
            available: verdict.healthy,
            changed: true,
            concurrent: false,
        })
    }

    /// One alert per problem not alerted before; the known set becomes this run's, so
    /// a problem that is fixed and comes back is alerted again.
    async fn alert_new_problems(
        &self,
        problems: &BTreeSet<String>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let known = self.problems.known_problems().await?;
        let new: Vec<&String> = problems.difference(&known).collect();
        for problem in &new {
            let dispatcher = problem.split(':').next().unwrap_or_default();
            let alert = Alert::new(AlertKind::ConfigurationProblem, dispatcher, *problem, now);
            publish_or_log(self.alerts, &alert).await;
        }
        if *problems != known {
            self.problems.set_known_problems(problems).await?;
        }
        Ok(new.len())
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

/// A stable sentence for an unreadable item (its key, not its content).
fn unreadable_problem(error: &StoreError) -> String {
    match error {
        StoreError::Malformed { key, .. } => format!("{key}: the dispatcher item is unreadable"),
        // The AWS error's text is logged where it happened, never put in an alert.
        _ => "?: a dispatcher item is unreadable".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DispatcherRecord {
        DispatcherRecord {
            dispatcher_id: DispatcherId::parse("sergio-main").unwrap(),
            phone: Some("+18585550100".into()),
            available: false,
            last_heartbeat: None,
            backup_dispatcher: Some("858-335-4807".into()),
            tertiary_contact: None,
            message_log_ttl: None,
            on_duty: None,
        }
    }

    fn judge(record: &DispatcherRecord, deliveries: DeliveryHealth) -> Assessment {
        let phone = record
            .phone
            .as_deref()
            .and_then(|p| PhoneNumber::parse(p, CountryCode::NANP).ok());
        assess(record, phone.as_ref(), deliveries, CountryCode::NANP)
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
        off.on_duty = Some(false);
        assert_eq!(
            judge(&off, DeliveryHealth::default()).reason.as_deref(),
            Some("off duty")
        );
        let failing = DeliveryHealth {
            last_failure_at: Some(30),
            last_success_at: Some(20),
        };
        let verdict = judge(&record(), failing);
        assert!(!verdict.healthy);
        assert!(verdict.reason.unwrap().contains("failed"));
    }

    #[test]
    fn configuration_problems_of_a_table_are_what_the_heartbeat_reports() {
        let primary = DispatcherId::parse("sergio-main").unwrap();
        let mut bad = record();
        bad.dispatcher_id = DispatcherId::parse("maria-backup").unwrap();
        bad.backup_dispatcher = Some("555-01".into());
        let unreadable = StoreError::Malformed {
            table: "state".into(),
            key: "garbled".into(),
            detail: "available: invalid type".into(),
        };
        let problems = configuration_problems(
            &[Ok(bad.clone()), Err(unreadable)],
            &primary,
            CountryCode::NANP,
        );
        assert_eq!(
            problems.into_iter().collect::<Vec<_>>(),
            vec![
                "garbled: the dispatcher item is unreadable",
                "maria-backup: backup_dispatcher does not normalise (wrong number of digits)",
                "sergio-main: the primary dispatcher item is missing",
            ]
        );
        let clean = configuration_problems(&[Ok(record())], &primary, CountryCode::NANP);
        assert!(clean.is_empty(), "{clean:?}");
    }

    #[test]
    fn configuration_problems_are_named_without_the_numbers() {
        let mut bad = record();
        bad.phone = Some("555-01".into());
        bad.tertiary_contact = Some("call me".into());
        bad.message_log_ttl = Some(0);
        let verdict = judge(&bad, DeliveryHealth::default());
        assert!(!verdict.healthy);
        assert_eq!(verdict.reason.as_deref(), Some("no usable phone number"));
        assert_eq!(verdict.problems.len(), 3, "{:?}", verdict.problems);
        assert!(
            verdict
                .problems
                .iter()
                .all(|p| p.starts_with("sergio-main: "))
        );
        assert!(verdict.problems.iter().all(|p| !p.contains("555-01")));
        let mut none = record();
        none.phone = None;
        assert_eq!(
            judge(&none, DeliveryHealth::default()).problems,
            vec!["sergio-main: phone is not set"]
        );
    }
}
