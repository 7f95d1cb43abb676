//! The lease keeper: returns abandoned claims to the queue.
//!
//! Twice a second it asks the read models for claims whose lease has run out and runs the
//! `ExpireClaim` command on each, as the server. The decider refuses an expiry that is not due
//! (a claim renewed meanwhile), so a stale read model can never release a live claim.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use events::domain::case::{CaseAction, CaseCommand};
use events::domain::Actor as DomainActor;
use events::{EventStore, Metadata, Timestamp};
use projections::{CaseStatusFilter, Projections};
use uuid::Uuid;

use crate::commands;
use crate::metrics::MeteredAddr;
use crate::projector::{Projector, WithModels};

const TICK: Duration = Duration::from_millis(500);

pub struct LeaseKeeper {
    store: Arc<dyn EventStore>,
    projector: MeteredAddr<Projector>,
    busy: bool,
}

impl LeaseKeeper {
    pub fn new(store: Arc<dyn EventStore>, projector: MeteredAddr<Projector>) -> Self {
        LeaseKeeper {
            store,
            projector,
            busy: false,
        }
    }
}

impl Actor for LeaseKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(TICK, |act, ctx| {
            if act.busy {
                return;
            }
            act.busy = true;
            let store = act.store.clone();
            let projector = act.projector.clone();
            ctx.spawn(
                expire_due(store, projector)
                    .into_actor(act)
                    .map(|_, act, _| act.busy = false),
            );
        });
    }
}

async fn expire_due(store: Arc<dyn EventStore>, projector: MeteredAddr<Projector>) {
    let now = Timestamp::now();
    let due: Vec<Uuid> = match projector
        .send(WithModels::new(move |m: &Projections| {
            // Only the claimed cases, through the queue's index: not every case ever seen.
            let (claimed, _) = m.list_cases(Some(CaseStatusFilter::InReview), usize::MAX, None);
            claimed
                .into_iter()
                .filter(|c| c.claim_expires_at.is_some_and(|t| t <= now))
                .map(|c| c.id)
                .collect()
        }))
        .await
    {
        Ok(due) => due,
        Err(_) => return,
    };
    for id in due {
        let result = commands::run_case(
            store.as_ref(),
            id,
            None,
            Metadata::for_request(None),
            || CaseCommand {
                actor: DomainActor::system(),
                at: Timestamp::now(),
                action: CaseAction::ExpireClaim,
            },
        )
        .await;
        match result {
            Ok(_) => tracing::info!(case_id = %id, "claim lease expired"),
            // Renewed or decided meanwhile: nothing to do.
            Err(commands::CommandError::Domain(_)) => {}
            Err(e) => tracing::warn!(case_id = %id, "cannot expire a claim: {e}"),
        }
    }
}
