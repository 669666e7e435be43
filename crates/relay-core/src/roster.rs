//! Everything the state table holds, read at once: the dispatcher items and the rota.
//! The cascade, the heartbeat and `qdn` work from one [`Roster`], so who is primary
//! and which item a tier names are answered from the same read.

use crate::dispatcher::{DispatcherRecord, UnreadableDispatcher};
use crate::ids::DispatcherId;
use crate::rota::{Duty, Rota, RotaUnreadable, Stint, StoredRota, duty_at, stint_at};

/// The rota item, as found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RotaItem {
    /// No rota: `PRIMARY_DISPATCHER_ID` is primary.
    #[default]
    Absent,
    Stored(StoredRota),
    /// There, and unusable: `PRIMARY_DISPATCHER_ID` is primary until it is mended.
    Unreadable(RotaUnreadable),
}

/// The state table's items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// Every dispatcher item; one without a usable `dispatcher_id` in its place.
    pub items: Vec<Result<DispatcherRecord, UnreadableDispatcher>>,
    pub rota: RotaItem,
}

impl Roster {
    /// Dispatcher items only, no rota.
    pub fn of(records: impl IntoIterator<Item = DispatcherRecord>) -> Roster {
        Roster {
            items: records.into_iter().map(Ok).collect(),
            rota: RotaItem::Absent,
        }
    }

    pub fn with_rota(mut self, rota: RotaItem) -> Roster {
        self.rota = rota;
        self
    }

    /// The usable dispatcher items.
    pub fn records(&self) -> impl Iterator<Item = &DispatcherRecord> {
        self.items.iter().filter_map(|item| item.as_ref().ok())
    }

    pub fn record(&self, id: &DispatcherId) -> Option<&DispatcherRecord> {
        self.records().find(|record| record.dispatcher_id == *id)
    }

    /// The rota in force, if there is a usable one.
    pub fn rota(&self) -> Option<&Rota> {
        match &self.rota {
            RotaItem::Stored(stored) => Some(&stored.rota),
            RotaItem::Absent | RotaItem::Unreadable(_) => None,
        }
    }

    /// Who is primary at `at` ([`duty_at`] over this roster's rota).
    pub fn duty_at(&self, fallback: &DispatcherId, at: i64) -> Duty {
        duty_at(self.rota(), fallback, at)
    }

    pub fn stint_at(&self, fallback: &DispatcherId, at: i64) -> Stint {
        stint_at(self.rota(), fallback, at)
    }
}
