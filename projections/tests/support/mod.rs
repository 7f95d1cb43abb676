//! Random but valid histories for the property tests: commands from actors of every role go
//! through the write side's deciders, and only the events they accept are recorded, with
//! positions, versions and a real hash chain, as a store would.

use std::collections::HashMap;
use std::time::Duration;

use events::domain::case::{self, Assessment, CaseAction, CaseCommand, CaseState, Submission};
use events::domain::revocation::{
    self, FamilyRevocationReason, RevocationEvent, TokenFamilyRevoked, TokenRevoked,
};
use events::domain::user::{self, UserAction, UserCommand, UserState};
use events::domain::{Actor, Culpability, Decision, DomainEvent, Priority, Role};
use events::hash::{chain_hash, Hash, GENESIS};
use events::{EventData, EventEnvelope, Metadata, RecordedEvent, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

/// The people who act, by username, with their roles.
pub const PEOPLE: [(&str, &[Role]); 7] = [
    ("classifier", &[Role::Classifier]),
    ("reviewer1", &[Role::Reviewer]),
    ("reviewer2", &[Role::Reviewer]),
    ("senior", &[Role::SeniorReviewer]),
    ("both", &[Role::Reviewer, Role::SeniorReviewer]),
    ("admin", &[Role::Admin]),
    ("auditor", &[Role::Auditor]),
];

pub const CASES: usize = 3;

/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600_000_000;

pub fn case_id(i: usize) -> Uuid {
    Uuid::from_u128(0x1000 + i as u128)
}

fn actor(i: usize) -> Actor {
    let (name, roles) = PEOPLE[i % PEOPLE.len()];
    Actor::new(user::user_id_for(name), roles.to_vec())
}

/// Who issues a command: one of [`PEOPLE`], or someone likely to be allowed (the classifier for
/// a submission, the claim holder for a decision, an auditor for a reopening), so that most
/// histories go far.
#[derive(Clone, Debug)]
pub enum Who {
    Person(usize),
    Fitting,
}

/// The culpability a decision names.
#[derive(Clone, Debug)]
pub enum Named {
    /// What the decision needs: the assessed one to confirm, another one to amend, none else.
    Fitting,
    Nothing,
    Assessed,
    Any(Culpability),
}

#[derive(Clone, Debug)]
pub enum Act {
    Submit(Priority, Culpability),
    Claim { lease_secs: u64 },
    Release,
    ExpireClaim,
    Decide(Decision, Named, bool),
    Reopen,
}

#[derive(Clone, Debug)]
pub enum Step {
    Case {
        case: usize,
        who: Who,
        act: Act,
    },
    User {
        person: usize,
        action: u8,
    },
    Revoke {
        family: bool,
        person: usize,
        expires_in_secs: u64,
    },
}

fn priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL)
}

fn culpability() -> impl Strategy<Value = Culpability> {
    prop::sample::select(Culpability::ALL)
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        2 => (priority(), culpability()).prop_map(|(p, c)| Act::Submit(p, c)),
        4 => (30u64..2_000).prop_map(|lease_secs| Act::Claim { lease_secs }),
        1 => Just(Act::Release),
        1 => Just(Act::ExpireClaim),
        5 => (
            prop::sample::select(Decision::ALL),
            prop_oneof![
                4 => Just(Named::Fitting),
                1 => Just(Named::Nothing),
                1 => Just(Named::Assessed),
                1 => culpability().prop_map(Named::Any)
            ],
            prop::bool::weighted(0.9),
        )
            .prop_map(|(d, n, notes)| Act::Decide(d, n, notes)),
        2 => Just(Act::Reopen),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (
            0..CASES,
            prop_oneof![
                (0..PEOPLE.len()).prop_map(Who::Person),
                Just(Who::Fitting)
            ],
            act()
        )
            .prop_map(|(case, who, act)| Step::Case { case, who, act }),
        1 => (0..PEOPLE.len(), 0u8..4).prop_map(|(person, action)| Step::User { person, action }),
        1 => (any::<bool>(), 0..PEOPLE.len(), 0u64..3_600).prop_map(
            |(family, person, expires_in_secs)| Step::Revoke {
                family,
                person,
                expires_in_secs
            }
        ),
    ]
}

/// Steps with the seconds that pass before each.
pub fn history() -> impl Strategy<Value = Vec<(u64, Step)>> {
    prop::collection::vec((prop_oneof![Just(0u64), 1u64..240], step()), 1..90)
}

/// What the write side recorded, and its own state of each case.
pub struct Log {
    pub events: Vec<EventEnvelope>,
    pub cases: Vec<CaseState>,
    users: Vec<UserState>,
    streams: HashMap<String, (u64, Hash)>,
    now: Timestamp,
}

impl Log {
    /// Records the accepted events of `steps`, after registering every person.
    pub fn run(steps: &[(u64, Step)]) -> Log {
        let mut log = Log {
            events: Vec::new(),
            cases: vec![CaseState::default(); CASES],
            users: vec![UserState::default(); PEOPLE.len()],
            streams: HashMap::new(),
            now: Timestamp::from_micros(START),
        };
        for (i, (name, roles)) in PEOPLE.iter().enumerate() {
            log.user(
                i,
                UserAction::Register {
                    username: (*name).to_owned(),
                    display_name: name.to_uppercase(),
                    password_hash: format!("$argon2id$v=19${name}"),
                    roles: roles.to_vec(),
                },
            );
        }
        for (secs, step) in steps {
            log.now = log.now.plus(Duration::from_secs(*secs));
            log.step(step);
        }
        log
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Case { case, who, act } => self.case(*case, who, act),
            Step::User { person, action } => {
                let action = match action {
                    0 => UserAction::Disable,
                    1 => UserAction::Enable,
                    2 => UserAction::ChangeRoles(vec![Role::Auditor, Role::Reviewer]),
                    _ => UserAction::ChangePassword {
                        password_hash: format!("$argon2id$changed-{}", self.now.as_micros()),
                    },
                };
                self.user(*person, action);
            }
            Step::Revoke {
                family,
                person,
                expires_in_secs,
            } => {
                let user_id = actor(*person).user_id;
                let expires_at = self.now.plus(Duration::from_secs(*expires_in_secs));
                let id = Uuid::from_u128(self.events.len() as u128 + 0xabc0_0000);
                let event = if *family {
                    RevocationEvent::FamilyRevoked(TokenFamilyRevoked {
                        family_id: id,
                        user_id,
                        expires_at,
                        reason: FamilyRevocationReason::Logout,
                    })
                } else {
                    RevocationEvent::TokenRevoked(TokenRevoked {
                        jti: id,
                        user_id,
                        expires_at,
                    })
                };
                self.record(revocation::STREAM, event.into(), Some(user_id));
            }
        }
    }

    fn user(&mut self, person: usize, action: UserAction) {
        let cmd = UserCommand {
            actor: Actor::system(),
            action,
        };
        if let Ok(events) = user::decide(&self.users[person], cmd) {
            let stream = user::stream_name(actor(person).user_id);
            for e in events {
                self.users[person] = user::evolve(self.users[person].clone(), &e);
                self.record(&stream, e.into(), None);
            }
        }
    }

    fn case(&mut self, i: usize, who: &Who, act: &Act) {
        let state = &self.cases[i];
        let (claim_holder, assessed) = match state {
            CaseState::Submitted {
                claim, assessed, ..
            } => (claim.map(|c| c.reviewer_id), Some(*assessed)),
            CaseState::Unsubmitted => (None, None),
        };
        let holder = claim_holder.and_then(|holder| {
            PEOPLE
                .iter()
                .position(|(name, _)| user::user_id_for(name) == holder)
        });
        let actor = match (who, act) {
            (Who::Person(p), _) => actor(*p),
            (Who::Fitting, Act::Submit(..)) => actor(0),
            (Who::Fitting, Act::Reopen) => actor(6),
            // Both a reviewer and a senior: may claim an escalated case too.
            (Who::Fitting, Act::Claim { .. }) if holder.is_none() => actor(4),
            (Who::Fitting, _) => actor(holder.unwrap_or(1)),
        };
        let action = match act {
            Act::Submit(priority, culpability) => CaseAction::Submit(Submission {
                case_id: case_id(i),
                subject_ref: format!("doc-{i}"),
                excerpt: format!("excerpt of case {i}"),
                assessment: Assessment {
                    culpability: *culpability,
                    confidence: 0.1 + i as f64 / 10.0,
                    rationale: "the classifier's reasons".into(),
                },
                priority: *priority,
            }),
            Act::Claim { lease_secs } => CaseAction::Claim {
                lease: Duration::from_secs(*lease_secs),
            },
            Act::Release => CaseAction::Release,
            Act::ExpireClaim => CaseAction::ExpireClaim,
            Act::Decide(decision, named, notes) => CaseAction::Decide {
                decision: *decision,
                final_culpability: match named {
                    Named::Fitting => match decision {
                        Decision::Confirm => assessed,
                        Decision::Amend => Culpability::ALL
                            .iter()
                            .copied()
                            .find(|c| Some(*c) != assessed),
                        Decision::Reject | Decision::Escalate => None,
                    },
                    Named::Nothing => None,
                    Named::Assessed => assessed,
                    Named::Any(c) => Some(*c),
                },
                notes: notes.then(|| format!("notes on {decision}")),
            },
            Act::Reopen => CaseAction::Reopen {
                reason: "a second look".into(),
            },
        };
        let actor = if matches!(act, Act::ExpireClaim) {
            Actor::system()
        } else {
            actor
        };
        let user_id = Some(actor.user_id);
        let cmd = CaseCommand {
            actor,
            at: self.now,
            action,
        };
        if let Ok(events) = case::decide(state, cmd) {
            for e in events {
                self.cases[i] = case::evolve(self.cases[i].clone(), &e);
                self.record(&case::stream_name(case_id(i)), e.into(), user_id);
            }
        }
    }

    fn record(&mut self, stream: &str, event: DomainEvent, user_id: Option<Uuid>) {
        let (version, prev_hash) = self.streams.get(stream).copied().unwrap_or((0, GENESIS));
        let version = version + 1;
        let data = EventData::encode(&event, Metadata::for_request(user_id), self.now)
            .expect("events encode");
        let hash = chain_hash(&prev_hash, stream, version, &data);
        self.streams.insert(stream.to_owned(), (version, hash));
        let record = RecordedEvent {
            position: self.events.len() as u64 + 1,
            stream: stream.to_owned(),
            version,
            data,
            prev_hash,
            hash,
        };
        let env = EventEnvelope::decode(record).expect("events decode");
        assert_eq!(env.event, event);
        self.events.push(env);
    }
}
