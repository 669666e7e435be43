//! Configuration problems of the dispatcher table, as data: what the heartbeat alerts
//! once and `qdn dispatchers check` prints.

use std::fmt;

use crate::dispatcher::{AttributeProblem, DispatcherAttribute, UnreadableDispatcher};
use crate::ids::DispatcherId;
use crate::rota::{ROTA_ATTRIBUTE, ROTA_KEY, RotaProblem};
use crate::stored::{Damage, Named};

/// One problem of the dispatcher table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigProblem {
    /// An attribute of an item that can still be used.
    Attribute {
        dispatcher_id: DispatcherId,
        problem: AttributeProblem,
    },
    /// An item without a usable `dispatcher_id`: the relay cannot use it at all.
    Unreadable(UnreadableDispatcher),
    /// There is no item for the dispatcher at the head of the cascade.
    PrimaryMissing { dispatcher_id: DispatcherId },
    /// The rota item (`#rota`) cannot be used, or leaves or names what it should not.
    Rota(RotaProblem),
}

/// A problem's identity: the dispatcher, the attribute and the kind of damage, never
/// its wording, so a problem is alerted once however its sentence changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProblemKey(String);

impl ProblemKey {
    /// A key as stored; any string is one (an unknown one is simply never produced
    /// again, so it ages out of the known set).
    pub fn from_stored(raw: impl Into<String>) -> Self {
        ProblemKey(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProblemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ConfigProblem {
    pub fn attribute(
        dispatcher_id: &DispatcherId,
        attribute: DispatcherAttribute,
        damage: Damage,
    ) -> Self {
        ConfigProblem::Attribute {
            dispatcher_id: dispatcher_id.clone(),
            problem: AttributeProblem { attribute, damage },
        }
    }

    /// The dispatcher the problem is about, as it may be shown (`?` for an item whose
    /// key is not a string).
    pub fn dispatcher(&self) -> &str {
        match self {
            ConfigProblem::Attribute { dispatcher_id, .. }
            | ConfigProblem::PrimaryMissing { dispatcher_id } => dispatcher_id.as_str(),
            ConfigProblem::Unreadable(item) => item.key.as_deref().unwrap_or("?"),
            ConfigProblem::Rota(RotaProblem::MissingDispatcher(id)) => id.as_str(),
            ConfigProblem::Rota(_) => ROTA_KEY,
        }
    }

    /// The attribute the problem names, when it is about one.
    pub fn attribute_name(&self) -> Option<&'static str> {
        match self {
            ConfigProblem::Attribute { problem, .. } => Some(problem.attribute.as_str()),
            ConfigProblem::Unreadable(_) => Some(DispatcherAttribute::DispatcherId.as_str()),
            ConfigProblem::PrimaryMissing { .. } => None,
            ConfigProblem::Rota(RotaProblem::Unreadable(_)) => Some(ROTA_ATTRIBUTE),
            ConfigProblem::Rota(_) => None,
        }
    }

    /// A stable name of the kind of problem.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigProblem::Attribute { problem, .. } => problem.damage.kind(),
            ConfigProblem::Unreadable(item) => item.damage.kind(),
            ConfigProblem::PrimaryMissing { .. } => "primary_missing",
            ConfigProblem::Rota(problem) => problem.kind(),
        }
    }

    pub fn key(&self) -> ProblemKey {
        if let ConfigProblem::Rota(problem) = self {
            return ProblemKey(format!("{ROTA_KEY}/{}", problem.key_part()));
        }
        let attribute = self.attribute_name().unwrap_or("item");
        ProblemKey(format!("{}/{attribute}/{}", self.dispatcher(), self.kind()))
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigProblem::Attribute {
                dispatcher_id,
                problem,
            } => write!(f, "{dispatcher_id}: {problem}"),
            ConfigProblem::Unreadable(item) => write!(
                f,
                "{}: {}; the item is not used",
                self.dispatcher(),
                Named(DispatcherAttribute::DispatcherId.as_str(), &item.damage)
            ),
            ConfigProblem::PrimaryMissing { dispatcher_id } => {
                write!(f, "{dispatcher_id}: the primary dispatcher item is missing")
            }
            ConfigProblem::Rota(problem) => write!(f, "{ROTA_KEY}: {problem}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::{Expected, StoredType};

    #[test]
    fn a_key_is_dispatcher_attribute_and_kind() {
        let id = DispatcherId::parse("sergio-main").unwrap();
        let problem = ConfigProblem::attribute(
            &id,
            DispatcherAttribute::Available,
            Damage::WrongType {
                expected: Expected::Boolean,
                found: StoredType::String,
            },
        );
        assert_eq!(problem.key().as_str(), "sergio-main/available/wrong_type");
        assert_eq!(
            problem.to_string(),
            "sergio-main: available: expected a boolean, found a string"
        );
        let missing = ConfigProblem::PrimaryMissing { dispatcher_id: id };
        assert_eq!(missing.key().as_str(), "sergio-main/item/primary_missing");
        let unreadable = ConfigProblem::Unreadable(UnreadableDispatcher {
            key: None,
            damage: Damage::Missing,
        });
        assert_eq!(unreadable.key().as_str(), "?/dispatcher_id/missing");
    }
}
