//! `--demo` without a back door.
//!
//! Demo users have published passwords. So `--demo` is accepted only on a loopback `--listen`
//! address and only on a store that is new or already a demo store; a new store is then marked
//! as a demo store (a `demo_store_marked` event in the `system` stream, so every node and every
//! later start knows it). A demo store keeps its demo users after the flag is gone, so it is
//! served on loopback only, flag or not, and every start of one logs a loud warning.

use std::net::SocketAddr;

use events::domain::system::{self, DemoStoreMarked, SystemEvent};
use events::domain::DomainEvent;
use events::{
    EventData, EventEnvelope, EventStore, ExpectedVersion, Metadata, StoreError, Timestamp,
};

/// What the store is, as far as demo data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// No event at all.
    New,
    /// Marked as a demo store.
    Demo,
    /// Anything else: a store with real data, or at least a real first admin.
    Real,
}

/// What the start does about demo data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoPlan {
    /// Not a demo store; nothing to do.
    None,
    /// `--demo` on a new store: mark it, then add the demo users and cases.
    MarkAndFill,
    /// `--demo` on a demo store: add what is missing.
    Fill,
    /// A demo store started without `--demo`: its demo users are still there.
    DemoWithoutFlag,
}

impl DemoPlan {
    /// Whether the store served is a demo store (and the loud warning is due).
    pub fn is_demo(self) -> bool {
        self != DemoPlan::None
    }
}

/// Why the start is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemoRefusal {
    #[error(
        "--demo is refused on --listen {0}: demo users have published passwords, so a demo \
         server listens on a loopback address only (127.0.0.1 or [::1])"
    )]
    NotLoopback(SocketAddr),
    #[error(
        "--demo is refused: this store holds data and is not a demo store, and demo users with \
         published passwords are never added to it. Start without --demo, or give a new \
         --data-dir (or --store) for a demo"
    )]
    RealStore,
    #[error(
        "this is a demo store (its demo users have published passwords): it is served on a \
         loopback address only (127.0.0.1 or [::1]), not --listen {0}. Use a new --data-dir \
         (or --store) for real work"
    )]
    DemoStoreNotLoopback(SocketAddr),
}

/// The decision, as a pure function of the flag, the store and the address.
pub fn plan(demo: bool, kind: StoreKind, listen: SocketAddr) -> Result<DemoPlan, DemoRefusal> {
    let loopback = listen.ip().is_loopback();
    match (demo, kind) {
        (true, _) if !loopback => Err(DemoRefusal::NotLoopback(listen)),
        (true, StoreKind::Real) => Err(DemoRefusal::RealStore),
        (true, StoreKind::New) => Ok(DemoPlan::MarkAndFill),
        (true, StoreKind::Demo) => Ok(DemoPlan::Fill),
        (false, StoreKind::Demo) if !loopback => Err(DemoRefusal::DemoStoreNotLoopback(listen)),
        (false, StoreKind::Demo) => Ok(DemoPlan::DemoWithoutFlag),
        (false, StoreKind::New | StoreKind::Real) => Ok(DemoPlan::None),
    }
}

/// Events of the `system` stream read at most (there is one today).
const SYSTEM_EVENTS: usize = 100;

/// What the store is: marked demo, else new (no event at all) or real.
pub async fn store_kind(store: &dyn EventStore) -> Result<StoreKind, anyhow::Error> {
    let marks = store.read_stream(system::STREAM, 1, SYSTEM_EVENTS).await?;
    for record in marks {
        let event = EventEnvelope::decode(record)?.event;
        if matches!(event, DomainEvent::System(SystemEvent::DemoStoreMarked(_))) {
            return Ok(StoreKind::Demo);
        }
    }
    Ok(if store.head_position().await? == 0 {
        StoreKind::New
    } else {
        StoreKind::Real
    })
}

/// Marks the store as a demo store; another node marking it at the same time is as good.
pub async fn mark(store: &dyn EventStore) -> Result<(), anyhow::Error> {
    let event = DomainEvent::System(SystemEvent::DemoStoreMarked(DemoStoreMarked {}));
    let data = EventData::encode(&event, Metadata::for_request(None), Timestamp::now())?;
    match store
        .append(system::STREAM, ExpectedVersion::NoStream, vec![data])
        .await
    {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The warning every start of a demo store logs.
pub const WARNING: &str = "DEMO STORE: this store holds the demo users reviewer, senior, auditor \
     and classifier, whose passwords are published. Use it only to try Adjudicator on this \
     machine, never for real cases; it is served on loopback addresses only";

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn demo_is_only_for_a_new_or_demo_store_on_loopback() {
        let local = addr("127.0.0.1:8080");
        let local6 = addr("[::1]:8080");
        let open = addr("0.0.0.0:8080");
        assert_eq!(plan(true, StoreKind::New, local), Ok(DemoPlan::MarkAndFill));
        assert_eq!(plan(true, StoreKind::Demo, local6), Ok(DemoPlan::Fill));
        assert_eq!(
            plan(true, StoreKind::Real, local),
            Err(DemoRefusal::RealStore)
        );
        for kind in [StoreKind::New, StoreKind::Demo, StoreKind::Real] {
            assert_eq!(plan(true, kind, open), Err(DemoRefusal::NotLoopback(open)));
        }
    }

    #[test]
    fn a_demo_store_warns_and_stays_on_loopback_without_the_flag() {
        let local = addr("127.0.0.1:8080");
        let open = addr("192.0.2.1:8080");
        assert_eq!(
            plan(false, StoreKind::Demo, local),
            Ok(DemoPlan::DemoWithoutFlag)
        );
        assert!(DemoPlan::DemoWithoutFlag.is_demo());
        assert_eq!(
            plan(false, StoreKind::Demo, open),
            Err(DemoRefusal::DemoStoreNotLoopback(open))
        );
        assert_eq!(plan(false, StoreKind::Real, open), Ok(DemoPlan::None));
        assert_eq!(plan(false, StoreKind::New, open), Ok(DemoPlan::None));
        assert!(!DemoPlan::None.is_demo());
    }

    #[test]
    fn the_messages_say_what_to_do() {
        let shown = DemoRefusal::RealStore.to_string();
        assert!(shown.contains("--data-dir"), "{shown}");
        let shown = DemoRefusal::NotLoopback(addr("0.0.0.0:80")).to_string();
        assert!(shown.contains("--listen 0.0.0.0:80"), "{shown}");
        assert!(!WARNING.contains("-demo"), "no password in the warning");
    }
}
