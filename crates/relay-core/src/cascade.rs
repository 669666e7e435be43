//! The cascade decision: which numbers a message goes to, in which order, and why.
//!
//! Pure: plain data in, a plan out, no I/O. [`crate::walk`] walks a plan, falling
//! through to the next target only when Twilio rejects a number for good.

use std::fmt;

use serde::Serialize;

use crate::dispatcher::{DispatcherAttribute, DispatcherRecord, Flag};
use crate::ids::DispatcherId;
use crate::phone::{CountryCode, PhoneError, PhoneNumber};
use crate::roster::Roster;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Primary,
    Backup,
    Tertiary,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Primary => "primary",
            Tier::Backup => "backup",
            Tier::Tertiary => "tertiary",
        }
    }

    pub fn parse(raw: &str) -> Option<Tier> {
        [Tier::Primary, Tier::Backup, Tier::Tertiary]
            .into_iter()
            .find(|tier| tier.as_str() == raw)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the primary does not count as available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailability {
    MarkedUnavailable,
    OffDuty,
    NoHeartbeat,
    HeartbeatStale {
        age_secs: i64,
        max_age_secs: i64,
    },
    /// A `last_heartbeat` further ahead than a heartbeat's lifetime: not a time the
    /// heartbeat wrote (a timestamp in milliseconds, say), so not fresh.
    HeartbeatInFuture,
    /// The attribute that says so is damaged (not a boolean, not a time): its safe
    /// value is "not available".
    Damaged(DispatcherAttribute),
}

impl Unavailability {
    /// The reason, said of `who` (`primary`, or a dispatcher's ID).
    pub fn said_of(&self, who: &str) -> String {
        match self {
            Unavailability::MarkedUnavailable => format!("{who} marked unavailable"),
            Unavailability::OffDuty => format!("{who} off duty"),
            Unavailability::NoHeartbeat => format!("{who} has no heartbeat"),
            Unavailability::HeartbeatStale {
                age_secs,
                max_age_secs,
            } => format!("{who} heartbeat stale ({age_secs}s old, limit {max_age_secs}s)"),
            Unavailability::HeartbeatInFuture => format!("{who} heartbeat is in the future"),
            Unavailability::Damaged(attribute) => {
                format!("{who}'s {attribute} attribute is damaged")
            }
        }
    }
}

impl fmt::Display for Unavailability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.said_of("primary"))
    }
}

/// Why a tier was left out of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Unavailable(Unavailability),
    NotConfigured,
    InvalidNumber {
        raw: String,
        error: PhoneError,
    },
    /// The tier's attribute is not a phone number at all (a list, a boolean...).
    Damaged(DispatcherAttribute),
    /// The tier names a dispatcher that has no item.
    UnknownDispatcher(DispatcherId),
    /// The tier names a dispatcher who is not available (the primary's rule).
    DispatcherUnavailable {
        dispatcher: DispatcherId,
        why: Unavailability,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Unavailable(why) => why.fmt(f),
            SkipReason::NotConfigured => f.write_str("not configured"),
            SkipReason::Damaged(attribute) => write!(f, "{attribute} is damaged"),
            SkipReason::UnknownDispatcher(id) => write!(f, "names {id}, who has no item"),
            SkipReason::DispatcherUnavailable { dispatcher, why } => {
                f.write_str(&why.said_of(dispatcher.as_str()))
            }
            // The raw value stays out: this text is logged, and it may hold a number.
            SkipReason::InvalidNumber { error, .. } => {
                write!(f, "invalid number ({})", error.reason())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTier {
    pub tier: Tier,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub tier: Tier,
    pub number: PhoneNumber,
    /// The dispatcher item the number is the `phone` of: the primary's, or the one a
    /// tier names by ID (`None` for a tier holding a bare number).
    pub dispatcher: Option<DispatcherId>,
}

/// The outcome of [`plan_cascade`]: targets to try in order, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CascadePlan {
    pub targets: Vec<Target>,
    pub skipped: Vec<SkippedTier>,
    /// Set when the primary was passed over for being unavailable: the caller marks it
    /// `available = false` (conditionally) so the next message skips it straight away.
    pub primary_unavailable: Option<Unavailability>,
}

#[derive(Debug, Clone, Copy)]
pub struct CascadePolicy {
    pub heartbeat_max_age_secs: i64,
    pub default_country: CountryCode,
}

/// Why the primary is not available at `now`, or `None` when it is.
pub fn primary_unavailability(
    record: &DispatcherRecord,
    now: i64,
    max_age_secs: i64,
) -> Option<Unavailability> {
    match record.on_duty {
        Flag::Damaged => return Some(Unavailability::Damaged(DispatcherAttribute::OnDuty)),
        Flag::Set(false) => return Some(Unavailability::OffDuty),
        Flag::Absent | Flag::Set(true) => {}
    }
    match record.available {
        Flag::Damaged => return Some(Unavailability::Damaged(DispatcherAttribute::Available)),
        Flag::Absent | Flag::Set(false) => return Some(Unavailability::MarkedUnavailable),
        Flag::Set(true) => {}
    }
    let Some(last) = record.last_heartbeat else {
        let attribute = DispatcherAttribute::LastHeartbeat;
        return Some(match record.damage(attribute) {
            Some(_) => Unavailability::Damaged(attribute),
            None => Unavailability::NoHeartbeat,
        });
    };
    let age_secs = now.saturating_sub(last);
    if age_secs <= -max_age_secs {
        return Some(Unavailability::HeartbeatInFuture);
    }
    if age_secs >= max_age_secs {
        return Some(Unavailability::HeartbeatStale {
            age_secs,
            max_age_secs,
        });
    }
    None
}

/// Decides the order of tiers for one message.
///
/// An available primary is tried first, with backup and tertiary behind it in case
/// Twilio rejects the primary's number for good; an unavailable primary is left out.
/// A tier naming another dispatcher (`roster` holds the items) uses that item's
/// phone, and is left out while that dispatcher is not available.
pub fn plan_cascade(
    record: &DispatcherRecord,
    roster: &Roster,
    now: i64,
    policy: &CascadePolicy,
) -> CascadePlan {
    let mut plan = CascadePlan::default();
    let tiers = Tiers {
        record,
        roster,
        now,
        policy,
    };
    match primary_unavailability(record, now, policy.heartbeat_max_age_secs) {
        None => tiers.consider(&mut plan, Tier::Primary),
        Some(why) => {
            plan.skipped.push(SkippedTier {
                tier: Tier::Primary,
                reason: SkipReason::Unavailable(why.clone()),
            });
            plan.primary_unavailable = Some(why);
        }
    }
    tiers.consider(&mut plan, Tier::Backup);
    tiers.consider(&mut plan, Tier::Tertiary);
    plan
}

/// The tiers after `failed` for a message whose delivery there failed: the rest of
/// the cascade, whatever the primary's availability (it is behind us).
pub fn plan_after(
    record: &DispatcherRecord,
    failed: Tier,
    roster: &Roster,
    now: i64,
    policy: &CascadePolicy,
) -> CascadePlan {
    let mut plan = CascadePlan::default();
    let tiers = Tiers {
        record,
        roster,
        now,
        policy,
    };
    for tier in [Tier::Backup, Tier::Tertiary] {
        if failed < tier {
            tiers.consider(&mut plan, tier);
        }
    }
    plan
}

/// What a tier's value is: a number, or another dispatcher's ID (an ID starts with a
/// letter; a number never does).
pub fn names_dispatcher(raw: &str) -> Option<DispatcherId> {
    let raw = raw.trim();
    raw.starts_with(|c: char| c.is_ascii_alphabetic())
        .then(|| DispatcherId::parse(raw).ok())
        .flatten()
}

struct Tiers<'a> {
    record: &'a DispatcherRecord,
    roster: &'a Roster,
    now: i64,
    policy: &'a CascadePolicy,
}

impl Tiers<'_> {
    fn consider(&self, plan: &mut CascadePlan, tier: Tier) {
        let record = self.record;
        let (attribute, raw) = match tier {
            Tier::Primary => (DispatcherAttribute::Phone, &record.phone),
            Tier::Backup => (
                DispatcherAttribute::BackupDispatcher,
                &record.backup_dispatcher,
            ),
            Tier::Tertiary => (
                DispatcherAttribute::TertiaryContact,
                &record.tertiary_contact,
            ),
        };
        let raw = raw.as_deref().map(str::trim).filter(|raw| !raw.is_empty());
        let Some(raw) = raw else {
            let reason = match record.damage(attribute) {
                Some(_) => SkipReason::Damaged(attribute),
                None => SkipReason::NotConfigured,
            };
            plan.skipped.push(SkippedTier { tier, reason });
            return;
        };
        let named = (tier != Tier::Primary)
            .then(|| names_dispatcher(raw))
            .flatten();
        if let Some(id) = named {
            self.consider_named(plan, tier, id);
            return;
        }
        let owner = (tier == Tier::Primary).then(|| record.dispatcher_id.clone());
        plan.push_number(tier, raw, owner, self.policy);
    }

    /// A tier naming a dispatcher: that item's phone, while they are available.
    fn consider_named(&self, plan: &mut CascadePlan, tier: Tier, id: DispatcherId) {
        let Some(named) = self.roster.record(&id) else {
            plan.skipped.push(SkippedTier {
                tier,
                reason: SkipReason::UnknownDispatcher(id),
            });
            return;
        };
        if let Some(why) =
            primary_unavailability(named, self.now, self.policy.heartbeat_max_age_secs)
        {
            plan.skipped.push(SkippedTier {
                tier,
                reason: SkipReason::DispatcherUnavailable {
                    dispatcher: id,
                    why,
                },
            });
            return;
        }
        match named
            .phone
            .as_deref()
            .map(str::trim)
            .filter(|raw| !raw.is_empty())
        {
            Some(raw) => plan.push_number(tier, raw, Some(id), self.policy),
            None => plan.skipped.push(SkippedTier {
                tier,
                reason: SkipReason::NotConfigured,
            }),
        }
    }
}

impl CascadePlan {
    fn push_number(
        &mut self,
        tier: Tier,
        raw: &str,
        dispatcher: Option<DispatcherId>,
        policy: &CascadePolicy,
    ) {
        match PhoneNumber::parse(raw, policy.default_country) {
            Ok(number) => self.targets.push(Target {
                tier,
                number,
                dispatcher,
            }),
            Err(error) => self.skipped.push(SkippedTier {
                tier,
                reason: SkipReason::InvalidNumber {
                    raw: raw.to_string(),
                    error,
                },
            }),
        }
    }

    /// Skipped tiers that are configuration errors (numbers that do not normalise).
    pub fn invalid_numbers(&self) -> impl Iterator<Item = &SkippedTier> {
        self.skipped
            .iter()
            .filter(|s| matches!(s.reason, SkipReason::InvalidNumber { .. }))
    }
}

/// How one try at one tier ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Twilio accepted it.
    Sent,
    /// Twilio refused the number for good; the cascade moved on.
    Refused,
    /// Twilio accepted it, then reported it `undelivered` or `failed`; the cascade
    /// moved on.
    DeliveryFailed,
    /// Nobody acknowledged it in time; the cascade moved on.
    NotAcknowledged,
}

/// One try at one tier: the one record of what the cascade did with a message, kept on
/// its message-log item and read back for the cascade's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub tier: Tier,
    /// Masked: the full number is on the item's `forwarded_to` when it worked.
    pub to: String,
    pub outcome: AttemptOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    /// Twilio's words for a refusal (numbers masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One readable sentence of why the message went where it went: every tier passed
/// over before `chosen` (skipped in the plan or rejected by Twilio), in cascade order.
/// With no `chosen` tier it explains why nothing could be reached.
pub fn cascade_reason(plan: &CascadePlan, attempts: &[Attempt], chosen: Option<Tier>) -> String {
    let skipped = plan
        .skipped
        .iter()
        .map(|s| (s.tier, format!("{}: {}", s.tier, s.reason)));
    let refused = attempts.iter().filter_map(|a| {
        let code = a.error_code.map(|c| c.to_string()).unwrap_or_default();
        let text = match a.outcome {
            AttemptOutcome::Sent => return None,
            AttemptOutcome::Refused => match &a.message {
                Some(message) => {
                    format!("{}: Twilio refused the number ({code} {message})", a.tier)
                }
                None => format!("{}: Twilio refused the number ({code})", a.tier),
            },
            AttemptOutcome::DeliveryFailed => {
                format!("{}: delivery failed (Twilio error {code})", a.tier)
            }
            AttemptOutcome::NotAcknowledged => format!(
                "{}: {}",
                a.tier,
                a.message.as_deref().unwrap_or("not acknowledged")
            ),
        };
        Some((a.tier, text))
    });
    let mut passed_over: Vec<(Tier, String)> = skipped
        .chain(refused)
        .filter(|(tier, _)| chosen.is_none_or(|chosen| *tier < chosen))
        .collect();
    passed_over.sort_by_key(|(tier, _)| *tier);
    if passed_over.is_empty() {
        return "primary available".to_string();
    }
    passed_over
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why the cascade passed over its first tier, in a few fixed values: the dimension of
/// the `CascadesByReason` metric (the full sentence is [`cascade_reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CascadeCause {
    MarkedUnavailable,
    OffDuty,
    NoHeartbeat,
    HeartbeatStale,
    NotConfigured,
    InvalidNumber,
    /// An attribute of the item is damaged (see the item's problems).
    DamagedItem,
    /// A tier names a dispatcher with no item.
    DispatcherMissing,
    Refused,
    DeliveryFailed,
    NotAcknowledged,
}

impl CascadeCause {
    pub fn as_str(self) -> &'static str {
        match self {
            CascadeCause::MarkedUnavailable => "marked_unavailable",
            CascadeCause::OffDuty => "off_duty",
            CascadeCause::NoHeartbeat => "no_heartbeat",
            CascadeCause::HeartbeatStale => "heartbeat_stale",
            CascadeCause::NotConfigured => "not_configured",
            CascadeCause::InvalidNumber => "invalid_number",
            CascadeCause::DamagedItem => "damaged_item",
            CascadeCause::DispatcherMissing => "dispatcher_missing",
            CascadeCause::Refused => "refused",
            CascadeCause::DeliveryFailed => "delivery_failed",
            CascadeCause::NotAcknowledged => "not_acknowledged",
        }
    }

    fn of_skip(reason: &SkipReason) -> CascadeCause {
        match reason {
            SkipReason::Unavailable(why) | SkipReason::DispatcherUnavailable { why, .. } => {
                Self::of_unavailability(why)
            }
            SkipReason::Damaged(_) => CascadeCause::DamagedItem,
            SkipReason::NotConfigured => CascadeCause::NotConfigured,
            SkipReason::InvalidNumber { .. } => CascadeCause::InvalidNumber,
            SkipReason::UnknownDispatcher(_) => CascadeCause::DispatcherMissing,
        }
    }

    fn of_unavailability(why: &Unavailability) -> CascadeCause {
        match why {
            Unavailability::MarkedUnavailable => CascadeCause::MarkedUnavailable,
            Unavailability::OffDuty => CascadeCause::OffDuty,
            Unavailability::NoHeartbeat => CascadeCause::NoHeartbeat,
            Unavailability::HeartbeatStale { .. } | Unavailability::HeartbeatInFuture => {
                CascadeCause::HeartbeatStale
            }
            Unavailability::Damaged(_) => CascadeCause::DamagedItem,
        }
    }

    fn of_attempt(outcome: AttemptOutcome) -> Option<CascadeCause> {
        match outcome {
            AttemptOutcome::Sent => None,
            AttemptOutcome::Refused => Some(CascadeCause::Refused),
            AttemptOutcome::DeliveryFailed => Some(CascadeCause::DeliveryFailed),
            AttemptOutcome::NotAcknowledged => Some(CascadeCause::NotAcknowledged),
        }
    }
}

/// Why the first tier passed over before `chosen` (every tier when there is no
/// `chosen`) was passed over; `None` when nothing was.
pub fn cascade_cause(
    plan: &CascadePlan,
    attempts: &[Attempt],
    chosen: Option<Tier>,
) -> Option<CascadeCause> {
    let skipped = plan
        .skipped
        .iter()
        .map(|s| (s.tier, CascadeCause::of_skip(&s.reason)));
    let failed = attempts
        .iter()
        .filter_map(|a| CascadeCause::of_attempt(a.outcome).map(|cause| (a.tier, cause)));
    skipped
        .chain(failed)
        .filter(|(tier, _)| chosen.is_none_or(|chosen| *tier < chosen))
        .min_by_key(|(tier, _)| *tier)
        .map(|(_, cause)| cause)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatcher::AttributeProblem;
    use crate::stored::{Damage, Expected, StoredType};

    const NOW: i64 = 1_712_345_678;
    const POLICY: CascadePolicy = CascadePolicy {
        heartbeat_max_age_secs: 300,
        default_country: CountryCode::NANP,
    };

    fn seed() -> DispatcherRecord {
        DispatcherRecord {
            dispatcher_id: DispatcherId::parse("sergio-main").unwrap(),
            phone: Some("+18585550100".into()),
            available: Flag::Set(true),
            last_heartbeat: Some(NOW - 10),
            backup_dispatcher: Some("858-335-4807".into()),
            tertiary_contact: Some("+1-619-555-0199".into()),
            message_log_ttl: Some(86_400),
            on_duty: Flag::Set(true),
            problems: Vec::new(),
        }
    }

    fn tiers(plan: &CascadePlan) -> Vec<(Tier, &str)> {
        plan.targets
            .iter()
            .map(|t| (t.tier, t.number.as_str()))
            .collect()
    }

    fn named(id: &str, phone: &str) -> DispatcherRecord {
        DispatcherRecord {
            dispatcher_id: DispatcherId::parse(id).unwrap(),
            phone: Some(phone.into()),
            backup_dispatcher: None,
            tertiary_contact: None,
            ..seed()
        }
    }

    #[test]
    fn a_tier_naming_a_dispatcher_uses_that_items_phone_while_they_are_available() {
        let mut record = seed();
        record.backup_dispatcher = Some("ana".into());
        record.tertiary_contact = Some(" bo ".into());
        let roster = Roster::of([named("ana", "858-555-0111"), named("bo", "+16195550122")]);
        let plan = plan_cascade(&record, &roster, NOW, &POLICY);
        assert_eq!(
            tiers(&plan),
            vec![
                (Tier::Primary, "+18585550100"),
                (Tier::Backup, "+18585550111"),
                (Tier::Tertiary, "+16195550122"),
            ]
        );
        assert_eq!(plan.targets[1].dispatcher.as_ref().unwrap().as_str(), "ana");
        assert_eq!(
            plan.targets[0].dispatcher.as_ref().unwrap().as_str(),
            "sergio-main"
        );

        // Off duty, stale, or missing: skipped, saying why; a bare number is not.
        let mut off = named("ana", "858-555-0111");
        off.on_duty = Flag::Set(false);
        let mut stale = named("bo", "+16195550122");
        stale.last_heartbeat = Some(NOW - 301);
        for (roster, reason) in [
            (
                Roster::of([off, named("bo", "+16195550122")]),
                "ana off duty",
            ),
            (
                Roster::of([named("bo", "+16195550122")]),
                "names ana, who has no item",
            ),
        ] {
            let plan = plan_cascade(&record, &roster, NOW, &POLICY);
            assert_eq!(
                tiers(&plan),
                vec![
                    (Tier::Primary, "+18585550100"),
                    (Tier::Tertiary, "+16195550122")
                ]
            );
            assert_eq!(plan.skipped[0].reason.to_string(), reason);
        }
        let roster = Roster::of([named("ana", "858-555-0111"), stale]);
        let plan = plan_after(&record, Tier::Primary, &roster, NOW, &POLICY);
        assert_eq!(tiers(&plan), vec![(Tier::Backup, "+18585550111")]);
        assert_eq!(
            plan.skipped[0].reason.to_string(),
            "bo heartbeat stale (301s old, limit 300s)"
        );
        assert_eq!(
            cascade_cause(&plan, &[], None),
            Some(CascadeCause::HeartbeatStale)
        );
    }

    #[test]
    fn only_a_value_starting_with_a_letter_names_a_dispatcher() {
        assert_eq!(names_dispatcher("ana").unwrap().as_str(), "ana");
        assert_eq!(
            names_dispatcher(" night-desk ").unwrap().as_str(),
            "night-desk"
        );
        for number in [
            "858-335-4807",
            "+1-619-555-0199",
            "(858) 335-4807",
            "ana smith",
            "",
        ] {
            assert_eq!(names_dispatcher(number), None, "{number}");
        }
    }

    #[test]
    fn available_primary_comes_first_with_the_rest_behind_it() {
        let plan = plan_cascade(&seed(), &Roster::default(), NOW, &POLICY);
        assert_eq!(
            tiers(&plan),
            vec![
                (Tier::Primary, "+18585550100"),
                (Tier::Backup, "+18583354807"),
                (Tier::Tertiary, "+16195550199"),
            ]
        );
        assert_eq!(plan.primary_unavailable, None);
        assert_eq!(
            cascade_reason(&plan, &[], Some(Tier::Primary)),
            "primary available"
        );
    }

    #[test]
    fn each_unavailability_moves_to_backup_and_marks_primary() {
        type Change = Box<dyn Fn(&mut DispatcherRecord)>;
        let cases: Vec<(Change, Unavailability)> = vec![
            (
                Box::new(|r| r.available = Flag::Set(false)),
                Unavailability::MarkedUnavailable,
            ),
            (
                Box::new(|r| r.on_duty = Flag::Set(false)),
                Unavailability::OffDuty,
            ),
            (
                Box::new(|r| r.last_heartbeat = None),
                Unavailability::NoHeartbeat,
            ),
            (
                Box::new(|r| r.last_heartbeat = Some(NOW - 300)),
                Unavailability::HeartbeatStale {
                    age_secs: 300,
                    max_age_secs: 300,
                },
            ),
            (
                Box::new(|r| r.last_heartbeat = Some(NOW + 300)),
                Unavailability::HeartbeatInFuture,
            ),
            (
                Box::new(|r| r.on_duty = Flag::Damaged),
                Unavailability::Damaged(DispatcherAttribute::OnDuty),
            ),
            (
                Box::new(|r| r.available = Flag::Damaged),
                Unavailability::Damaged(DispatcherAttribute::Available),
            ),
            (
                Box::new(|r| {
                    r.last_heartbeat = None;
                    r.problems.push(AttributeProblem {
                        attribute: DispatcherAttribute::LastHeartbeat,
                        damage: Damage::NotWhole {
                            expected: Expected::UnixTime,
                        },
                    });
                }),
                Unavailability::Damaged(DispatcherAttribute::LastHeartbeat),
            ),
        ];
        for (change, expected) in cases {
            let mut record = seed();
            change(&mut record);
            let plan = plan_cascade(&record, &Roster::default(), NOW, &POLICY);
            assert_eq!(plan.targets[0].tier, Tier::Backup, "{expected}");
            assert_eq!(plan.primary_unavailable, Some(expected.clone()));
            assert_eq!(
                cascade_reason(&plan, &[], Some(Tier::Backup)),
                format!("primary: {expected}")
            );
        }
    }

    #[test]
    fn a_tier_whose_attribute_is_damaged_is_skipped_naming_it() {
        let mut record = seed();
        record.available = Flag::Set(false);
        record.backup_dispatcher = None;
        record.problems.push(AttributeProblem {
            attribute: DispatcherAttribute::BackupDispatcher,
            damage: Damage::WrongType {
                expected: Expected::PhoneNumber,
                found: StoredType::List,
            },
        });
        let plan = plan_cascade(&record, &Roster::default(), NOW, &POLICY);
        assert_eq!(tiers(&plan), vec![(Tier::Tertiary, "+16195550199")]);
        assert_eq!(
            cascade_reason(&plan, &[], Some(Tier::Tertiary)),
            "primary: primary marked unavailable; backup: backup_dispatcher is damaged"
        );
        assert_eq!(
            cascade_cause(&plan, &[], Some(Tier::Tertiary)),
            Some(CascadeCause::MarkedUnavailable)
        );
        record.available = Flag::Set(true);
        record.on_duty = Flag::Damaged;
        let plan = plan_cascade(&record, &Roster::default(), NOW, &POLICY);
        assert_eq!(
            cascade_cause(&plan, &[], Some(Tier::Tertiary)),
            Some(CascadeCause::DamagedItem)
        );
    }

    #[test]
    fn heartbeat_just_inside_the_limit_counts() {
        let mut record = seed();
        record.last_heartbeat = Some(NOW - 299);
        assert_eq!(
            plan_cascade(&record, &Roster::default(), NOW, &POLICY).targets[0].tier,
            Tier::Primary
        );
    }

    #[test]
    fn absent_on_duty_means_on_duty() {
        let mut record = seed();
        record.on_duty = Flag::Absent;
        assert_eq!(
            plan_cascade(&record, &Roster::default(), NOW, &POLICY).targets[0].tier,
            Tier::Primary
        );
    }

    #[test]
    fn no_backup_goes_to_tertiary() {
        let mut record = seed();
        record.available = Flag::Set(false);
        record.backup_dispatcher = None;
        let plan = plan_cascade(&record, &Roster::default(), NOW, &POLICY);
        assert_eq!(tiers(&plan), vec![(Tier::Tertiary, "+16195550199")]);
        assert_eq!(
            cascade_reason(&plan, &[], Some(Tier::Tertiary)),
            "primary: primary marked unavailable; backup: not configured"
        );
    }

    #[test]
    fn invalid_numbers_are_skipped_and_reported() {
        let mut record = seed();
        record.phone = Some("not a phone".into());
        record.backup_dispatcher = Some("555-0100".into());
        let plan = plan_cascade(&record, &Roster::default(), NOW, &POLICY);
        assert_eq!(tiers(&plan), vec![(Tier::Tertiary, "+16195550199")]);
        let invalid: Vec<Tier> = plan.invalid_numbers().map(|s| s.tier).collect();
        assert_eq!(invalid, vec![Tier::Primary, Tier::Backup]);
        // An unusable primary number is a configuration error, not unavailability:
        // the primary is not marked unavailable for it.
        assert_eq!(plan.primary_unavailable, None);
    }

    #[test]
    fn nothing_reachable_gives_an_empty_plan_and_a_full_reason() {
        let mut record = seed();
        record.available = Flag::Set(false);
        record.backup_dispatcher = Some("".into());
        record.tertiary_contact = None;
        let plan = plan_cascade(&record, &Roster::default(), NOW, &POLICY);
        assert!(plan.targets.is_empty());
        assert_eq!(
            cascade_reason(&plan, &[], None),
            "primary: primary marked unavailable; backup: not configured; tertiary: not configured"
        );
        assert_eq!(
            cascade_cause(&plan, &[], None),
            Some(CascadeCause::MarkedUnavailable)
        );
    }

    #[test]
    fn twilio_refusals_are_part_of_the_reason() {
        let plan = plan_cascade(&seed(), &Roster::default(), NOW, &POLICY);
        let attempts = [
            Attempt {
                tier: Tier::Primary,
                to: "***0100".into(),
                outcome: AttemptOutcome::Refused,
                error_code: Some(21610),
                message: Some("unsubscribed".into()),
            },
            Attempt {
                tier: Tier::Backup,
                to: "***4807".into(),
                outcome: AttemptOutcome::Sent,
                error_code: None,
                message: None,
            },
        ];
        assert_eq!(
            cascade_reason(&plan, &attempts, Some(Tier::Backup)),
            "primary: Twilio refused the number (21610 unsubscribed)"
        );
        assert_eq!(
            cascade_cause(&plan, &attempts, Some(Tier::Backup)),
            Some(CascadeCause::Refused)
        );
        // The tier that got it and the tiers after it are no cause.
        assert_eq!(cascade_cause(&plan, &attempts, Some(Tier::Primary)), None);
    }

    #[test]
    fn failed_deliveries_are_part_of_the_reason() {
        let plan = plan_after(&seed(), Tier::Primary, &Roster::default(), NOW, &POLICY);
        let failed = Attempt {
            tier: Tier::Primary,
            to: "***0100".into(),
            outcome: AttemptOutcome::DeliveryFailed,
            error_code: Some(30003),
            message: None,
        };
        assert_eq!(
            cascade_reason(&plan, std::slice::from_ref(&failed), Some(Tier::Backup)),
            "primary: delivery failed (Twilio error 30003)"
        );
        assert_eq!(
            cascade_cause(&plan, &[failed], Some(Tier::Backup)),
            Some(CascadeCause::DeliveryFailed)
        );
    }

    #[test]
    fn the_cascade_cause_is_the_first_tier_passed_over() {
        let mut record = seed();
        record.on_duty = Flag::Set(false);
        let plan = plan_cascade(&record, &Roster::default(), NOW, &POLICY);
        let refused_backup = Attempt {
            tier: Tier::Backup,
            to: "***4807".into(),
            outcome: AttemptOutcome::Refused,
            error_code: Some(21610),
            message: None,
        };
        assert_eq!(
            cascade_cause(&plan, &[refused_backup], Some(Tier::Tertiary)),
            Some(CascadeCause::OffDuty)
        );
        record.on_duty = Flag::Absent;
        record.last_heartbeat = Some(NOW - 10_000);
        let plan = plan_cascade(&record, &Roster::default(), NOW, &POLICY);
        assert_eq!(
            cascade_cause(&plan, &[], Some(Tier::Backup)),
            Some(CascadeCause::HeartbeatStale)
        );
        let plan = plan_cascade(&seed(), &Roster::default(), NOW, &POLICY);
        assert_eq!(cascade_cause(&plan, &[], Some(Tier::Primary)), None);
    }

    #[test]
    fn the_tiers_after_one_are_the_rest_of_the_cascade() {
        let plan = plan_after(&seed(), Tier::Primary, &Roster::default(), NOW, &POLICY);
        assert_eq!(
            tiers(&plan),
            vec![
                (Tier::Backup, "+18583354807"),
                (Tier::Tertiary, "+16195550199")
            ]
        );
        assert!(plan.skipped.is_empty());
        let after_backup = plan_after(&seed(), Tier::Backup, &Roster::default(), NOW, &POLICY);
        assert_eq!(tiers(&after_backup), vec![(Tier::Tertiary, "+16195550199")]);
        assert!(
            plan_after(&seed(), Tier::Tertiary, &Roster::default(), NOW, &POLICY)
                .targets
                .is_empty()
        );
        let mut no_backup = seed();
        no_backup.backup_dispatcher = None;
        let plan = plan_after(&no_backup, Tier::Primary, &Roster::default(), NOW, &POLICY);
        assert_eq!(tiers(&plan), vec![(Tier::Tertiary, "+16195550199")]);
        assert_eq!(plan.skipped[0].reason, SkipReason::NotConfigured);
    }
}
