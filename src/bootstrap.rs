//! First start and `--demo`: the first admin (with a random password written to
//! `<data-dir>/admin-password`, mode 0600, and only that file's path logged), and the demo users
//! and sample cases (which [`crate::demo_store`] allows on new or demo stores only).
//!
//! Both run once the read models have caught up with the store, so "no users yet" and "no
//! cases yet" are judged on the whole history, and both are idempotent: a restart with
//! `--demo` adds nothing that is there already.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use events::domain::case::{self, Assessment, CaseAction, CaseCommand, CaseState, Submission};
use events::domain::user::{self, UserAction, UserCommand, UserState};
use events::domain::{Actor, Culpability, Decision, DomainEvent, Priority, Role};
use events::{EventData, EventStore, ExpectedVersion, Metadata, StoreError, Timestamp};
use uuid::Uuid;

use crate::auth::hash_password;

/// The file that holds the first admin's password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// Creates `admin` with a random password when the store has no user at all.
pub async fn first_admin(store: &dyn EventStore, data_dir: &Path) -> anyhow::Result<()> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let password = URL_SAFE_NO_PAD.encode(bytes);
    let path = data_dir.join(ADMIN_PASSWORD_FILE);
    write_private(&path, &password)?;
    let created = register(
        store,
        "admin",
        "Administrator",
        &password,
        vec![Role::Admin],
    )
    .await?;
    if created {
        tracing::warn!(
            "created the first user `admin`; its password is in {} (mode 0600)",
            path.display()
        );
    } else {
        // Someone else registered `admin` in between: this password is not its password.
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// Writes a secret file readable by its owner only, replacing any old one.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Registers a user; `false` if the username is taken already.
async fn register(
    store: &dyn EventStore,
    username: &str,
    display_name: &str,
    password: &str,
    roles: Vec<Role>,
) -> anyhow::Result<bool> {
    let user_id = user::user_id_for(username);
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .context("hashing task")??;
    let events = user::decide(
        &UserState::Unregistered,
        UserCommand {
            actor: Actor::system(),
            action: UserAction::Register {
                username: username.to_owned(),
                display_name: display_name.to_owned(),
                password_hash,
                roles,
            },
        },
    )?;
    let at = Timestamp::now();
    let data = events
        .into_iter()
        .map(|e| EventData::encode(&DomainEvent::User(e), Metadata::for_request(None), at))
        .collect::<Result<Vec<_>, _>>()?;
    match store
        .append(&user::stream_name(user_id), ExpectedVersion::NoStream, data)
        .await
    {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The demo users: `(username, display name, role)`; each one's password is `<username>-demo`.
pub const DEMO_USERS: [(&str, &str, Role); 4] = [
    ("reviewer", "Rita Reviewer", Role::Reviewer),
    ("senior", "Sam Senior", Role::SeniorReviewer),
    ("auditor", "Avery Auditor", Role::Auditor),
    ("classifier", "Mens Rea Classifier v3", Role::Classifier),
];

/// Adds the demo users, and the sample cases if the store has no case yet.
pub async fn demo(store: &dyn EventStore, has_cases: bool) -> anyhow::Result<()> {
    for (name, display, role) in DEMO_USERS {
        // The demo passwords are shorter than the API allows: the server makes them itself.
        if register(store, name, display, &format!("{name}-demo"), vec![role]).await? {
            // Never the password, not even a published one: logs travel further than READMEs.
            tracing::info!("added the demo user `{name}` (role {role})");
        }
    }
    if !has_cases {
        let n = sample_cases(store).await?;
        tracing::info!("added {n} demo cases");
    }
    Ok(())
}

struct Sample {
    subject_ref: &'static str,
    excerpt: &'static str,
    culpability: Culpability,
    confidence: f64,
    rationale: &'static str,
    priority: Priority,
}

const SAMPLES: [Sample; 8] = [
    Sample {
        subject_ref: "CR-2024-0117/transcript p.14",
        excerpt: "I told him if he came near the shop again I would burn it down with him in it. \
                  Two days later the fire started at the back door where the petrol can was found.",
        culpability: Culpability::Purposely,
        confidence: 0.91,
        rationale: "Stated intent to cause the harm, followed by conduct matching the threat.",
        priority: Priority::Urgent,
    },
    Sample {
        subject_ref: "CR-2024-0342/statement 3",
        excerpt: "The site manager was shown the cracked anchor bolts on Friday and signed the \
                  inspection sheet as passed so the crane could keep working over the weekend.",
        culpability: Culpability::Knowingly,
        confidence: 0.78,
        rationale: "Aware the defect was practically certain to endanger workers; acted anyway.",
        priority: Priority::High,
    },
    Sample {
        subject_ref: "CV-2023-8812/deposition p.3",
        excerpt: "She admits she had been told the dog had bitten a child before and still let \
                  it off the lead in the playground because it 'needed a run'.",
        culpability: Culpability::Recklessly,
        confidence: 0.72,
        rationale: "Conscious disregard of a known, substantial risk.",
        priority: Priority::Normal,
    },
    Sample {
        subject_ref: "CR-2024-0551/police report",
        excerpt: "The nurse administered ten times the prescribed dose after misreading the \
                  decimal point on a handwritten chart; the ward had no second-check procedure.",
        culpability: Culpability::Negligently,
        confidence: 0.66,
        rationale: "Failure to perceive a risk a careful practitioner would have perceived.",
        priority: Priority::High,
    },
    Sample {
        subject_ref: "CV-2024-0090/email 12",
        excerpt: "Please backdate the invoices to March so the auditors book them in the old \
                  year; nobody checks the dates on the PDFs anyway.",
        culpability: Culpability::Purposely,
        confidence: 0.84,
        rationale: "Instruction to falsify records with the object of misleading auditors.",
        priority: Priority::Normal,
    },
    Sample {
        subject_ref: "CR-2023-7730/interview p.22",
        excerpt: "He says he swerved to avoid a fox and lost control on the ice; the road had \
                  been gritted and he was driving at the limit.",
        culpability: Culpability::None,
        confidence: 0.58,
        rationale: "No evidence of awareness or a gross deviation from the standard of care.",
        priority: Priority::Low,
    },
    Sample {
        subject_ref: "CR-2024-0208/chat log",
        excerpt: "lol if the alarm goes off just leave, they never call the police for the \
                  back warehouse. take the laptops, not the phones.",
        culpability: Culpability::Purposely,
        confidence: 0.88,
        rationale: "Planning of the taking, with an object to deprive the owner.",
        priority: Priority::Normal,
    },
    Sample {
        subject_ref: "CV-2024-1301/witness 2",
        excerpt: "The landlord knew the smoke alarms had no batteries; the tenant had written \
                  three times. He replied that he would 'get round to it after the holidays'.",
        culpability: Culpability::Recklessly,
        confidence: 0.7,
        rationale: "Known risk to life, consciously disregarded over weeks.",
        priority: Priority::High,
    },
];

/// Appends a few dozen cases in every state of the queue.
async fn sample_cases(store: &dyn EventStore) -> anyhow::Result<usize> {
    let classifier = Actor::new(user::user_id_for("classifier"), vec![Role::Classifier]);
    let reviewer = Actor::new(user::user_id_for("reviewer"), vec![Role::Reviewer]);
    let senior = Actor::new(user::user_id_for("senior"), vec![Role::SeniorReviewer]);
    let lease = Duration::from_secs(3600);
    let mut count = 0;
    for round in 0..4 {
        for (i, s) in SAMPLES.iter().enumerate() {
            let mut steps: Vec<(&Actor, CaseAction)> = Vec::new();
            let confirm = CaseAction::Decide {
                decision: Decision::Confirm,
                final_culpability: None,
                notes: Some("Excerpt supports the assessment.".into()),
            };
            // Most demo cases wait in the queue; a few show each later state.
            match (round * SAMPLES.len() + i) % 8 {
                0 => steps.push((&reviewer, CaseAction::Claim { lease })),
                1 => {
                    steps.push((&reviewer, CaseAction::Claim { lease }));
                    steps.push((&reviewer, confirm));
                }
                2 => {
                    steps.push((&reviewer, CaseAction::Claim { lease }));
                    steps.push((
                        &reviewer,
                        CaseAction::Decide {
                            decision: Decision::Escalate,
                            final_culpability: None,
                            notes: Some("Borderline between knowing and reckless.".into()),
                        },
                    ));
                }
                3 => {
                    steps.push((&senior, CaseAction::Claim { lease }));
                    steps.push((
                        &senior,
                        CaseAction::Decide {
                            decision: Decision::Reject,
                            final_culpability: None,
                            notes: Some("Excerpt is hearsay; not a basis for any level.".into()),
                        },
                    ));
                }
                _ => {}
            }
            let id = Uuid::now_v7();
            let submission = Submission {
                case_id: id,
                subject_ref: format!("{} #{}", s.subject_ref, round + 1),
                excerpt: s.excerpt.into(),
                assessment: Assessment {
                    culpability: s.culpability,
                    confidence: s.confidence,
                    rationale: s.rationale.into(),
                },
                priority: s.priority,
            };
            let mut state = CaseState::default();
            let mut data = Vec::new();
            let at = Timestamp::now();
            let all = std::iter::once((&classifier, CaseAction::Submit(submission))).chain(steps);
            for (actor, action) in all {
                let events = case::decide(
                    &state,
                    CaseCommand {
                        actor: actor.clone(),
                        at,
                        action,
                    },
                )?;
                for e in events {
                    state = case::evolve(state, &e);
                    let meta = Metadata::for_request(Some(actor.user_id));
                    data.push(EventData::encode(&DomainEvent::Case(e), meta, at)?);
                }
            }
            store
                .append(&case::stream_name(id), ExpectedVersion::NoStream, data)
                .await?;
            count += 1;
        }
    }
    Ok(count)
}
