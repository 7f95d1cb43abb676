//! `adjudicator bench generate`: appends realistic case histories (made by the real deciders,
//! so every one is a valid history) until the store holds the requested number of events. Used
//! for the replay and start-up benchmarks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use events::domain::case::{self, Assessment, CaseAction, CaseCommand, CaseState, Submission};
use events::domain::user::{self, UserAction, UserCommand, UserState};
use events::domain::{Actor, Culpability, Decision, DomainEvent, Priority, Role};
use events::{EventData, EventStore, ExpectedVersion, Metadata, Timestamp};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::args::GenerateArgs;
use super::open_store;
use crate::demo_store::{DemoRefusal, StoreKind};

const IN_FLIGHT: usize = 64;
const LEASE: Duration = Duration::from_secs(900);

pub async fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, true).await?;
    if args.demo {
        mark_demo(store.as_ref()).await?;
    }
    let staff = register_staff(store.as_ref()).await?;
    let started = Instant::now();
    let mut planned = 0u64;
    let mut tasks = JoinSet::new();
    let mut n = 0u64;
    while planned < args.events {
        if tasks.len() >= IN_FLIGHT {
            tasks.join_next().await.context("generator task")???;
        }
        let history = case_history(&staff, n).context("building a case history")?;
        planned += history.1.len() as u64;
        n += 1;
        let store = store.clone();
        tasks.spawn(async move { append(store, history).await });
        if n.is_multiple_of(50_000) {
            println!("{n} cases, {planned} events");
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.context("generator task")??;
    }
    let head = store.head_position().await?;
    println!(
        "generated {n} cases; the store now holds {head} events ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--demo`: marks a new store as a demo store; a demo store stays one; any other is refused.
async fn mark_demo(store: &dyn EventStore) -> anyhow::Result<()> {
    match crate::demo_store::store_kind(store).await? {
        StoreKind::New => crate::demo_store::mark(store).await,
        StoreKind::Demo => Ok(()),
        StoreKind::Real => Err(DemoRefusal::RealStore.into()),
    }
}

struct Staff {
    classifier: Actor,
    reviewers: Vec<Actor>,
    seniors: Vec<Actor>,
    auditor: Actor,
}

async fn register_staff(store: &dyn EventStore) -> anyhow::Result<Staff> {
    let register = |name: String, role: Role| {
        let id = user::user_id_for(&name);
        let events = user::decide(
            &UserState::Unregistered,
            UserCommand {
                actor: Actor::system(),
                action: UserAction::Register {
                    username: name.clone(),
                    display_name: name,
                    // Not a PHC string: generated staff cannot log in.
                    password_hash: "generated".into(),
                    roles: vec![role],
                },
            },
        );
        (id, role, events)
    };
    let mut wanted = vec![
        register("gen-classifier".into(), Role::Classifier),
        register("gen-auditor".into(), Role::Auditor),
    ];
    wanted.extend((0..20).map(|i| register(format!("gen-reviewer-{i}"), Role::Reviewer)));
    wanted.extend((0..4).map(|i| register(format!("gen-senior-{i}"), Role::SeniorReviewer)));
    let mut staff = Staff {
        classifier: Actor::system(),
        reviewers: Vec::new(),
        seniors: Vec::new(),
        auditor: Actor::system(),
    };
    for (id, role, events) in wanted {
        let events = events?
            .into_iter()
            .map(DomainEvent::User)
            .collect::<Vec<_>>();
        let data = encode(&events, None, Timestamp::now())?;
        // Already registered by an earlier run: fine, reuse it.
        let _ = store
            .append(&user::stream_name(id), ExpectedVersion::NoStream, data)
            .await;
        let actor = Actor::new(id, vec![role]);
        match role {
            Role::Classifier => staff.classifier = actor,
            Role::Auditor => staff.auditor = actor,
            Role::Reviewer => staff.reviewers.push(actor),
            _ => staff.seniors.push(actor),
        }
    }
    Ok(staff)
}

/// A small deterministic generator, so that runs are comparable.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

const EXCERPTS: [&str; 4] = [
    "The defendant sent three messages in the hour before the collision stating that he would \
     'make sure the van never leaves the yard', then drove into the parked vehicle at speed.",
    "Witness statements agree that the accused was told twice that the scaffold was unsafe and \
     removed the warning barrier anyway, saying the inspection could wait until Monday.",
    "The accountant moved the client funds into her own account on four occasions, each time \
     recording the transfer under a fictitious supplier name in the ledger.",
    "The driver had been awake for twenty-two hours and had drunk four pints; he states that \
     he did not see the cyclist until the moment of impact.",
];

fn case_history(staff: &Staff, n: u64) -> anyhow::Result<(String, Vec<EventData>)> {
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (n + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let id = Uuid::now_v7();
    let reviewer = &staff.reviewers[dice.roll(staff.reviewers.len() as u64) as usize];
    let senior = &staff.seniors[dice.roll(staff.seniors.len() as u64) as usize];
    let culpability = Culpability::ALL[dice.roll(5) as usize];
    let mut t = Timestamp::now();
    let mut state = CaseState::default();
    let mut events = Vec::new();
    let mut step = |state: &mut CaseState, actor: &Actor, action: CaseAction| {
        t = t.plus(Duration::from_secs(1));
        let new = case::decide(
            state,
            CaseCommand {
                actor: actor.clone(),
                at: t,
                action,
            },
        )?;
        for e in &new {
            *state = case::evolve(std::mem::take(state), e);
        }
        events.extend(new.into_iter().map(|e| (actor.user_id, e)));
        Ok::<_, events::domain::DomainError>(())
    };
    let submission = Submission {
        case_id: id,
        subject_ref: format!("DOC-{:08}/p{}", n, 1 + dice.roll(40)),
        excerpt: EXCERPTS[dice.roll(EXCERPTS.len() as u64) as usize].to_owned(),
        assessment: Assessment {
            culpability,
            confidence: 0.5 + dice.roll(50) as f64 / 100.0,
            rationale: format!("Model reading of the excerpt suggests {culpability}."),
        },
        priority: Priority::ALL[dice.roll(4) as usize],
    };
    step(
        &mut state,
        &staff.classifier,
        CaseAction::Submit(submission),
    )?;
    // One case in ten stays in the queue, untouched or claimed.
    match dice.roll(10) {
        0 => return finish(id, events),
        1 => {
            step(&mut state, reviewer, CaseAction::Claim { lease: LEASE })?;
            return finish(id, events);
        }
        _ => {}
    }
    step(&mut state, reviewer, CaseAction::Claim { lease: LEASE })?;
    if dice.roll(10) == 0 {
        step(&mut state, reviewer, CaseAction::Release)?;
        step(&mut state, reviewer, CaseAction::Claim { lease: LEASE })?;
    }
    let (decider, decision) = match dice.roll(20) {
        0..=11 => (reviewer, Decision::Confirm),
        12..=14 => (reviewer, Decision::Amend),
        15..=16 => (reviewer, Decision::Reject),
        _ => {
            step(
                &mut state,
                reviewer,
                decide_action(Decision::Escalate, culpability),
            )?;
            step(&mut state, senior, CaseAction::Claim { lease: LEASE })?;
            (
                senior,
                [Decision::Confirm, Decision::Amend, Decision::Reject][dice.roll(3) as usize],
            )
        }
    };
    step(&mut state, decider, decide_action(decision, culpability))?;
    if dice.roll(30) == 0 {
        step(
            &mut state,
            &staff.auditor,
            CaseAction::Reopen {
                reason: "Reopened on audit: the excerpt was truncated.".into(),
            },
        )?;
    }
    finish(id, events)
}

fn decide_action(decision: Decision, assessed: Culpability) -> CaseAction {
    let amended = if assessed == Culpability::Recklessly {
        Culpability::Negligently
    } else {
        Culpability::Recklessly
    };
    CaseAction::Decide {
        decision,
        final_culpability: (decision == Decision::Amend).then_some(amended),
        notes: Some(format!(
            "Generated {decision} with reasons recorded for the audit."
        )),
    }
}

fn finish(
    id: Uuid,
    events: Vec<(Uuid, case::CaseEvent)>,
) -> anyhow::Result<(String, Vec<EventData>)> {
    let at = Timestamp::now();
    let data = events
        .into_iter()
        .map(|(user, e)| {
            EventData::encode(&DomainEvent::Case(e), Metadata::for_request(Some(user)), at)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((case::stream_name(id), data))
}

fn encode(
    events: &[DomainEvent],
    user: Option<Uuid>,
    at: Timestamp,
) -> anyhow::Result<Vec<EventData>> {
    let metadata = Metadata::for_request(user);
    Ok(events
        .iter()
        .map(|e| EventData::encode(e, metadata, at))
        .collect::<Result<Vec<_>, _>>()?)
}

async fn append(
    store: Arc<dyn EventStore>,
    (stream, events): (String, Vec<EventData>),
) -> anyhow::Result<u64> {
    let n = events.len() as u64;
    store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .with_context(|| format!("appending {stream}"))?;
    Ok(n)
}
