//! What the plugin remembers across attempts and for `cancel_all`: the jobs floe started and
//! has not seen finish, the jobs it asked Airbyte to cancel, triggers whose answer has not
//! arrived yet, what the next attempt of an entry must pick up instead of triggering again,
//! and the latest job of each entry (for the report).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Instant, SystemTime};

use serde_json::Value;

/// What the next attempt of an entry resumes instead of triggering a new sync.
#[derive(Debug, Clone)]
pub enum Resume {
    /// A job the previous attempt stopped watching before it ended (Airbyte was unreachable).
    Job { id: i64, ours: bool },
    /// A trigger whose answer was lost and which could not be reconciled yet.
    Trigger { started_wall: SystemTime, started: Instant },
}

/// A trigger sent and not yet answered.
#[derive(Debug, Clone)]
pub struct Flight {
    pub connection_id: String,
    pub started_wall: SystemTime,
    pub started: Instant,
}

#[derive(Debug, Default)]
pub struct Book {
    /// Jobs floe started (or found to be its own lost trigger) and has not seen end → connection.
    pub ours: HashMap<i64, String>,
    /// Jobs floe asked Airbyte to cancel; their `cancelled` status is floe's doing.
    pub cancelled: HashSet<i64>,
    /// Entry name → what its next attempt resumes.
    pub resume: HashMap<String, Resume>,
    /// Triggers in flight, by a local id.
    pub flights: HashMap<u64, Flight>,
    next_flight: u64,
    /// Entry name → details of its latest job.
    pub last: HashMap<String, BTreeMap<String, Value>>,
    /// Connection → its workspace, once looked up (`None`: the lookup failed).
    pub workspaces: HashMap<String, Option<String>>,
}

impl Book {
    pub fn begin_flight(&mut self, connection_id: &str, started_wall: SystemTime, started: Instant) -> u64 {
        self.next_flight += 1;
        self.flights.insert(self.next_flight, Flight { connection_id: connection_id.to_string(), started_wall, started });
        self.next_flight
    }

    pub fn end_flight(&mut self, id: u64) {
        self.flights.remove(&id);
    }

    /// The job reached a terminal status (or floe gave up on it after cancelling).
    pub fn finish(&mut self, job_id: i64) {
        self.ours.remove(&job_id);
    }

    /// Jobs floe started that are still running and not yet asked to cancel; marks them asked.
    pub fn take_cancellable(&mut self) -> Vec<i64> {
        let ids: Vec<i64> = self.ours.keys().copied().filter(|id| !self.cancelled.contains(id)).collect();
        self.cancelled.extend(ids.iter().copied());
        ids
    }

    /// Mark `job_id` as being cancelled by floe; false when it already was.
    pub fn mark_cancelled(&mut self, job_id: i64) -> bool {
        self.cancelled.insert(job_id)
    }
}
