//! Properties of the read side over random valid histories (see `support`): the models agree
//! with the write side and with a fresh fold, survive a snapshot, are reproduced by a client
//! that only sees the pushes, ignore repeated events, and can be rebuilt as of any past moment.

mod support;

use std::collections::BTreeMap;

use events::domain::case::{CaseEvent, CaseState, CaseStatus};
use events::domain::Decision;
use events::domain::DomainEvent;
use events::EventEnvelope;
use projections::{
    case_as_of, queue_as_of, AsOf, ByDecision, CaseStatusFilter, CaseView, Cursor, Projections,
    QueueWindow, Stats, Statuses, Topic, Update,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use support::{case_id, history, Log, CASES};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    }
}

fn ids(cases: &[&CaseView]) -> Vec<uuid::Uuid> {
    cases.iter().map(|c| c.id).collect()
}

/// Every page of a listing, following the cursors through their string form.
fn all_pages(p: &Projections, status: Option<CaseStatusFilter>, limit: usize) -> Vec<uuid::Uuid> {
    let mut seen = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let (page, next) = p.list_cases(status, limit, after.as_ref());
        assert!(page.len() <= limit);
        seen.extend(ids(&page));
        match next {
            Some(c) => after = Some(c.to_string().parse().expect("a cursor parses")),
            None => return seen,
        }
    }
}

/// The read models agree with the write side's own state and with counts made from scratch.
fn check_against_write_side(p: &Projections, log: &Log) {
    for i in 0..CASES {
        let id = case_id(i);
        let stream = events::domain::case::stream_name(id);
        let mine: Vec<&EventEnvelope> = log
            .events
            .iter()
            .filter(|e| e.record.stream == stream)
            .collect();
        match &log.cases[i] {
            CaseState::Unsubmitted => assert!(p.case(id).is_none()),
            CaseState::Submitted {
                status,
                claim,
                escalated,
                assessed,
            } => {
                let view = p.case(id).expect("a submitted case has a view");
                assert_eq!(view.adjudication_status, *status);
                assert_eq!(view.claimed_by, claim.map(|c| c.reviewer_id));
                assert_eq!(view.claim_expires_at, claim.map(|c| c.expires_at));
                assert_eq!(view.is_escalated(), *escalated);
                assert_eq!(view.assessment.culpability, *assessed);
                assert_eq!(view.version, mine.len() as u64);
                assert_eq!(view.position, mine.last().map_or(0, |e| e.position()));
                let decided = *status == CaseStatus::Decided;
                assert_eq!(view.decided_at.is_some(), decided);
                assert_eq!(
                    view.final_culpability.is_some(),
                    decided && view.decision != Some(Decision::Reject)
                );
            }
        }
    }

    let mut stats = Stats::default();
    for c in p.cases().iter() {
        match c.adjudication_status {
            CaseStatus::Pending => stats.pending += 1,
            CaseStatus::InReview => stats.in_review += 1,
            CaseStatus::Escalated => stats.escalated += 1,
            CaseStatus::Decided => {
                stats.decided += 1;
                let ByDecision {
                    confirm,
                    amend,
                    reject,
                } = &mut stats.by_decision;
                match c.decision {
                    Some(Decision::Confirm) => *confirm += 1,
                    Some(Decision::Amend) => *amend += 1,
                    Some(Decision::Reject) => *reject += 1,
                    other => panic!("decided as {other:?}"),
                }
            }
        }
    }
    stats.position = log
        .events
        .iter()
        .filter(|e| e.record.stream.starts_with("case-"))
        .map(EventEnvelope::position)
        .max()
        .unwrap_or(0);
    assert_eq!(p.stats(), &stats);

    let mut open: Vec<&CaseView> = p
        .cases()
        .iter()
        .filter(|c| c.adjudication_status != CaseStatus::Decided)
        .collect();
    open.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.submitted_at.cmp(&b.submitted_at))
            .then(a.id.cmp(&b.id))
    });
    assert_eq!(ids(&p.queue_cases()), ids(&open));
    assert_eq!(all_pages(p, None, 2), ids(&open));
    assert_eq!(all_pages(p, None, 1), ids(&open));
    for filter in ["pending", "in_review", "escalated", "decided"] {
        let f: CaseStatusFilter = filter.parse().expect("a status");
        let mut want: Vec<&CaseView> = p
            .cases()
            .iter()
            .filter(|c| c.adjudication_status == f.status())
            .collect();
        want.sort_by_key(|c| projections::QueueKey::of(c));
        assert_eq!(all_pages(p, Some(f), 2), ids(&want));
    }
    assert_eq!(p.position(), log.events.len() as u64);
}

/// Some of the undecided statuses: pending, in_review, escalated for bits 0, 1, 2 of `mask`.
fn undecided(mask: u8) -> Statuses {
    [
        CaseStatus::Pending,
        CaseStatus::InReview,
        CaseStatus::Escalated,
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| mask & (1 << i) != 0)
    .map(|(_, s)| s)
    .collect()
}

/// A client that knows only the pushes: it starts from empty snapshots and applies each update.
#[derive(Default)]
struct NaiveClient {
    queue: BTreeMap<String, Value>,
    stats: Value,
    last_position: u64,
}

impl NaiveClient {
    fn start(p: &Projections) -> Self {
        let window = QueueWindow::default();
        let queue = p.snapshot_data(&Topic::Queue, &window);
        assert_eq!(queue, json!({"cases": [], "total": 0, "next": null}));
        NaiveClient {
            queue: BTreeMap::new(),
            stats: p.snapshot_data(&Topic::Stats, &window),
            last_position: p.position(),
        }
    }

    fn receive(&mut self, update: &Update) {
        let message: Value = serde_json::from_str(&update.to_json()).expect("updates are JSON");
        assert_eq!(message["type"], "update");
        let position = message["position"].as_u64().expect("a position");
        assert!(position >= self.last_position, "positions never go back");
        self.last_position = position;
        let data = message["data"].clone();
        match message["topic"].as_str().expect("a topic") {
            "queue" => {
                let id = data["id"].as_str().expect("a case id").to_owned();
                if data["adjudication_status"] == "decided" {
                    self.queue.remove(&id);
                } else {
                    self.queue.insert(id, data);
                }
            }
            "stats" => self.stats = data,
            _ => {}
        }
    }

    /// The queue in the protocol's order: urgent first, then oldest, then by id.
    fn queue(&self) -> Vec<Value> {
        let rank = |v: &Value| match v["priority"].as_str() {
            Some("urgent") => 0,
            Some("high") => 1,
            Some("normal") => 2,
            _ => 3,
        };
        let mut cases: Vec<Value> = self.queue.values().cloned().collect();
        cases.sort_by(|a, b| {
            let key = |v: &Value| {
                (
                    rank(v),
                    v["submitted_at"].as_str().map(str::to_owned),
                    v["id"].as_str().map(str::to_owned),
                )
            };
            key(a).cmp(&key(b))
        });
        cases
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn incremental_folding_equals_a_fresh_fold_and_the_write_side(steps in history()) {
        let log = Log::run(&steps);
        let mut p = Projections::new();
        for env in &log.events {
            p.apply(env);
        }
        let fresh = Projections::fold(&log.events);
        prop_assert_eq!(&p, &fresh);
        prop_assert_eq!(p.stats(), fresh.stats());
        prop_assert_eq!(ids(&p.queue_cases()), ids(&fresh.queue_cases()));
        for i in 0..CASES {
            prop_assert_eq!(p.case(case_id(i)), fresh.case(case_id(i)));
        }
        check_against_write_side(&p, &log);
    }

    #[test]
    fn a_snapshot_and_the_tail_equal_the_full_fold(
        steps in history(),
        cut in any::<prop::sample::Index>(),
    ) {
        let log = Log::run(&steps);
        let k = cut.index(log.events.len() + 1);
        let head = Projections::fold(&log.events[..k]);
        let bytes = head.to_snapshot_bytes().expect("a snapshot encodes");
        let mut restored = Projections::from_snapshot_bytes(&bytes).expect("a snapshot decodes");
        prop_assert_eq!(&restored, &head);
        prop_assert_eq!(restored.position(), k as u64);
        // The whole log again: what the snapshot holds already is skipped.
        for env in &log.events {
            restored.apply(env);
        }
        prop_assert_eq!(&restored, &Projections::fold(&log.events));
    }

    #[test]
    fn a_client_of_the_pushes_sees_the_final_queue_and_stats(steps in history()) {
        let log = Log::run(&steps);
        let mut p = Projections::new();
        let mut client = NaiveClient::start(&p);
        for env in &log.events {
            let updates = p.apply(env);
            prop_assert!(updates.iter().all(|u| u.position == env.position()));
            prop_assert_eq!(updates.last().map(|u| u.topic), Some(Topic::Audit));
            for u in &updates {
                client.receive(u);
            }
        }
        let queue = serde_json::to_value(p.queue_cases()).expect("JSON");
        prop_assert_eq!(Value::Array(client.queue()), queue);
        prop_assert_eq!(&client.stats, &serde_json::to_value(p.stats()).expect("JSON"));
    }

    #[test]
    fn a_windowed_client_keeps_the_cases_of_its_statuses(
        steps in history(),
        cut in any::<prop::sample::Index>(),
        mask in 1u8..8,
    ) {
        // Some of the undecided statuses; a snapshot somewhere in the history, with a window
        // wide enough for every case; then only the queue updates meant for this filter.
        let statuses = undecided(mask);
        let window = QueueWindow { limit: 1000, statuses };
        let log = Log::run(&steps);
        let k = cut.index(log.events.len() + 1);
        let mut p = Projections::fold(&log.events[..k]);
        let snapshot = p.snapshot_data(&Topic::Queue, &window);
        prop_assert_eq!(snapshot["next"].clone(), Value::Null);
        let cases = snapshot["cases"].as_array().expect("cases").clone();
        prop_assert_eq!(snapshot["total"].as_u64(), Some(cases.len() as u64));
        let mut mine: BTreeMap<String, Value> = cases
            .into_iter()
            .map(|c| (c["id"].as_str().expect("an id").to_owned(), c))
            .collect();
        let has = |c: &Value, s: CaseStatus| c["adjudication_status"] == s.as_str();
        for env in &log.events[k..] {
            for u in p.apply(env) {
                if u.topic != Topic::Queue || !u.statuses.meets(statuses) {
                    continue;
                }
                let id = u.data["id"].as_str().expect("an id").to_owned();
                if statuses.iter().any(|s| has(&u.data, s)) {
                    mine.insert(id, u.data);
                } else {
                    // It left the filter: the update says so, and the client drops it.
                    prop_assert!(mine.remove(&id).is_some(), "a case the client never had left");
                }
            }
        }
        let want = p.snapshot_data(&Topic::Queue, &window);
        let mut got: Vec<Value> = mine.into_values().collect();
        let mut want_cases = want["cases"].as_array().expect("cases").clone();
        let by_id = |v: &Value| v["id"].as_str().map(str::to_owned);
        got.sort_by_key(by_id);
        want_cases.sort_by_key(by_id);
        prop_assert_eq!(got, want_cases);
    }

    #[test]
    fn a_view_keeps_showing_the_models_as_they_were_when_it_was_taken(
        steps in history(),
        cut in any::<prop::sample::Index>(),
    ) {
        let log = Log::run(&steps);
        let k = cut.index(log.events.len() + 1);
        let mut p = Projections::fold(&log.events[..k]);
        let then = p.clone();
        let topics: Vec<Topic> = [Topic::Queue, Topic::Stats, Topic::Audit]
            .into_iter()
            .chain((0..CASES).map(|i| Topic::Case(case_id(i))))
            .collect();
        let view = p.view(&topics);
        for env in &log.events[k..] {
            p.apply(env);
        }
        prop_assert_eq!(view.position(), k as u64);
        for mask in 1u8..8 {
            let statuses = undecided(mask);
            for limit in [1, 2, 1000] {
                let window = QueueWindow { limit, statuses };
                for topic in &topics {
                    prop_assert_eq!(
                        view.snapshot_json(topic, &window),
                        then.snapshot_json(topic, &window)
                    );
                }
            }
        }
    }

    #[test]
    fn applying_an_event_twice_changes_nothing(steps in history()) {
        let log = Log::run(&steps);
        let mut p = Projections::new();
        for (i, env) in log.events.iter().enumerate() {
            prop_assert!(!p.apply(env).is_empty());
            let once = p.clone();
            prop_assert!(p.apply(env).is_empty());
            if i > 0 {
                prop_assert!(p.apply(&log.events[i - 1]).is_empty());
            }
            prop_assert_eq!(&p, &once);
        }
    }

    #[test]
    fn the_past_is_the_fold_stopped_there(steps in history()) {
        let log = Log::run(&steps);
        let events = &log.events;
        let mut p = Projections::new();
        for i in 0..=events.len() {
            if i > 0 {
                p.apply(&events[i - 1]);
            }
            let at = AsOf::Position(i as u64);
            for c in 0..CASES {
                let then = case_as_of(events, case_id(c), at);
                prop_assert_eq!(then.as_ref(), p.case(case_id(c)));
            }
            let queue: Vec<CaseView> = p.queue_cases().into_iter().cloned().collect();
            prop_assert_eq!(&queue_as_of(events, at), &queue);
            // By time, where no later event shares the last one's time.
            let last_time = i.checked_sub(1).map(|j| events[j].record.data.recorded_at);
            let next_time = events.get(i).map(|e| e.record.data.recorded_at);
            if let Some(t) = last_time {
                if next_time.is_none_or(|n| n > t) {
                    for c in 0..CASES {
                        let then = case_as_of(events, case_id(c), AsOf::Time(t));
                        prop_assert_eq!(then.as_ref(), p.case(case_id(c)));
                    }
                    prop_assert_eq!(&queue_as_of(events, AsOf::Time(t)), &queue);
                }
            }
        }
    }
}

/// The generated histories reach every status and decision, so the properties above are not
/// vacuous.
#[test]
fn histories_cover_every_status_and_decision() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen_status = std::collections::HashSet::new();
    let mut seen_types = BTreeMap::new();
    for _ in 0..200 {
        let steps = history()
            .new_tree(&mut runner)
            .expect("a history")
            .current();
        let log = Log::run(&steps);
        for e in &log.events {
            *seen_types.entry(e.event.type_name()).or_insert(0) += 1;
            if let DomainEvent::Case(CaseEvent::Decided(d)) = &e.event {
                *seen_types.entry(d.decision.as_str()).or_insert(0) += 1;
            }
        }
        let mut p = Projections::new();
        for e in &log.events {
            for u in p.apply(e) {
                if u.topic == Topic::Queue {
                    let status = u.data["adjudication_status"].as_str().unwrap_or("?");
                    seen_status.insert(format!("{}->{status}", u.event));
                }
            }
        }
        for c in p.cases().iter() {
            seen_status.insert(c.adjudication_status.as_str().to_owned());
        }
    }
    for status in [
        "pending",
        "in_review",
        "escalated",
        "decided",
        "case_released->escalated",
        "case_released->pending",
        "case_claimed->in_review",
        "case_reopened->pending",
    ] {
        assert!(
            seen_status.contains(status),
            "never {status}: {seen_status:?}"
        );
    }
    for t in [
        "case_submitted",
        "case_claimed",
        "case_released",
        "case_decided",
        "case_escalated",
        "case_reopened",
        "user_disabled",
        "user_password_changed",
        "token_revoked",
        "token_family_revoked",
        "confirm",
        "amend",
        "reject",
    ] {
        assert!(seen_types.contains_key(t), "never {t}: {seen_types:?}");
    }
}
