//! A read view: what the snapshots of a subscription show, as of one position, taken from the
//! models without copying them (the queue's persistent maps and the cases are shared, the stats
//! are a few counters), so that snapshots are built and serialized away from the projector
//! while it goes on applying events.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::case_view::CaseView;
use crate::open_queue::OpenQueue;
use crate::stats::Stats;
use crate::updates::{snapshot_json, Topic};
use crate::window::{QueueWindow, WindowPage};

#[derive(Clone, Debug)]
pub struct ReadView {
    position: u64,
    queue: OpenQueue,
    stats: Stats,
    /// The cases of the `case:<id>` topics the view was taken for (`None`: no such case).
    cases: HashMap<Uuid, Option<Arc<CaseView>>>,
}

impl ReadView {
    pub(crate) fn new(
        position: u64,
        queue: OpenQueue,
        stats: Stats,
        cases: HashMap<Uuid, Option<Arc<CaseView>>>,
    ) -> Self {
        ReadView {
            position,
            queue,
            stats,
            cases,
        }
    }

    /// The position the view shows the models at.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The first cases of a queue window, how many match, and where to page on.
    pub fn queue_window(&self, window: &QueueWindow) -> WindowPage<'_> {
        self.queue.window(window)
    }

    /// The `snapshot` message of `topic` (with `window` for `queue`): the queue's window, the
    /// stats, the case (`null` if there is none, or if the view was not taken for it), or
    /// `null` for `audit`, which has no state to show.
    pub fn snapshot_json(&self, topic: &Topic, window: &QueueWindow) -> String {
        let at = self.position;
        match topic {
            Topic::Queue => snapshot_json(topic, at, &self.queue_window(window)),
            Topic::Stats => snapshot_json(topic, at, &self.stats),
            Topic::Case(id) => {
                let case = self.cases.get(id).and_then(Option::as_deref);
                snapshot_json(topic, at, &case)
            }
            Topic::Audit => snapshot_json(topic, at, &()),
        }
    }
}
