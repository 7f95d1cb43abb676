//! Measures what the shared read view costs the projector per event applied. The models hold
//! 65,000 cases, 15,000 of them undecided (about what `bench generate --events 200000` makes);
//! each measured event claims or releases an undecided case, moving it between the queue's
//! maps. Measured with the models alone, and with a read view taken before every event and
//! held until after the next (the worst case: a snapshot builder always holds one, so every
//! change copies the nodes it touches), both for `apply_quiet` (replays) and `apply` (live,
//! with the updates' JSON).
//!
//! Run with `cargo bench --bench read_view`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use events::domain::case::{
    self, Assessment, CaseClaimed, CaseDecided, CaseEvent, CaseReleased, CaseSubmitted,
    ReleaseReason,
};
use events::domain::{Culpability, Decision, DomainEvent, Priority};
use events::hash::GENESIS;
use events::{EventData, EventEnvelope, Metadata, RecordedEvent, Timestamp};
use projections::{Projections, Topic};
use uuid::Uuid;

const OPEN: u64 = 15_000;
const DECIDED: u64 = 50_000;

fn envelope(position: u64, id: Uuid, version: u64, event: CaseEvent) -> EventEnvelope {
    let metadata = Metadata {
        user_id: None,
        correlation_id: Uuid::from_u128(u128::from(position)),
        causation_id: None,
    };
    let at = Timestamp::from_micros(position as i64 * 1000);
    let event = DomainEvent::Case(event);
    let data = EventData::encode(&event, metadata, at).expect("events encode");
    let record = RecordedEvent {
        position,
        stream: case::stream_name(id),
        version,
        data,
        prev_hash: GENESIS,
        hash: [0; 32],
    };
    EventEnvelope::decode(record).expect("events decode")
}

fn submitted(id: Uuid, n: u64) -> CaseEvent {
    CaseEvent::Submitted(CaseSubmitted {
        case_id: id,
        subject_ref: format!("DOC-{n:08}"),
        excerpt: "The accused was told twice that the scaffold was unsafe and removed the \
                  warning barrier anyway, saying the inspection could wait until Monday."
            .into(),
        assessment: Assessment {
            culpability: Culpability::Recklessly,
            confidence: 0.8,
            rationale: "Model reading of the excerpt suggests recklessly.".into(),
        },
        priority: Priority::ALL[(n % 4) as usize],
        submitted_by: Uuid::from_u128(1),
    })
}

fn claimed() -> CaseEvent {
    CaseEvent::Claimed(CaseClaimed {
        reviewer_id: Uuid::from_u128(2),
        lease_expires_at: Timestamp::from_micros(i64::MAX / 2),
    })
}

/// Models with [`OPEN`] pending cases and [`DECIDED`] decided ones; answers them with the next
/// position and the ids of the pending cases.
fn models() -> (Projections, u64, Vec<Uuid>) {
    let mut p = Projections::new();
    let mut position = 0;
    let mut open = Vec::new();
    for n in 0..OPEN + DECIDED {
        let id = Uuid::from_u128(u128::from(n) + 1000);
        position += 1;
        p.apply_quiet(&envelope(position, id, 1, submitted(id, n)));
        if n < OPEN {
            open.push(id);
            continue;
        }
        position += 1;
        p.apply_quiet(&envelope(position, id, 2, claimed()));
        position += 1;
        let decided = CaseEvent::Decided(CaseDecided {
            reviewer_id: Uuid::from_u128(2),
            decision: Decision::Confirm,
            final_culpability: None,
            notes: None,
        });
        p.apply_quiet(&envelope(position, id, 3, decided));
    }
    (p, position + 1, open)
}

/// `n` events from `position` on: claims and releases of the undecided cases, in turn.
fn events(position: u64, open: &[Uuid], versions: &mut [u64], n: u64) -> Vec<EventEnvelope> {
    (0..n)
        .map(|k| {
            let i = ((k * 7919) % open.len() as u64) as usize;
            versions[i] += 1;
            let event = if versions[i].is_multiple_of(2) {
                claimed()
            } else {
                CaseEvent::Released(CaseReleased {
                    reviewer_id: Uuid::from_u128(2),
                    reason: ReleaseReason::Released,
                })
            };
            envelope(position + k, open[i], versions[i], event)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let (models, first, open) = models();
    let topics = [Topic::Queue, Topic::Stats];
    let mut group = c.benchmark_group("apply one event");
    group.measurement_time(Duration::from_secs(5));
    for (name, live, hold_view) in [
        ("quiet, no view", false, false),
        ("quiet, a view held", false, true),
        ("live, no view", true, false),
        ("live, a view held", true, true),
    ] {
        let mut p = models.clone();
        let mut position = first;
        let mut versions = vec![1u64; open.len()];
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let batch = events(position, &open, &mut versions, iters);
                position += iters;
                let mut view = hold_view.then(|| p.view(&topics));
                let started = Instant::now();
                for env in &batch {
                    if live {
                        black_box(p.apply(env));
                    } else {
                        p.apply_quiet(env);
                    }
                    if hold_view {
                        view = Some(p.view(&topics));
                    }
                }
                let took = started.elapsed();
                drop(black_box(view));
                took
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
