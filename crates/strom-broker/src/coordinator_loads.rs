//! Coordinator shards follow their partitions' leadership off the metadata apply path:
//! applying an image only asks for a round, and one task replays the partitions this
//! node now leads (file reads) on a blocking thread and unloads those it lost. Rounds
//! run one at a time, so a slow load never races a later unload, and requests that came
//! while one ran are served by the next.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::broker::Broker;

/// How long a coordinator request waits for a load round before it answers
/// COORDINATOR_LOAD_IN_PROGRESS (the client retries).
pub const REQUEST_WAIT: Duration = Duration::from_secs(5);

pub struct CoordinatorLoads {
    /// Rounds asked for so far; a round covers every request made before it started.
    requested: AtomicU64,
    wake: Notify,
    /// The last request covered by a finished round.
    done: watch::Sender<u64>,
}

impl Default for CoordinatorLoads {
    fn default() -> Self {
        Self {
            requested: AtomicU64::new(0),
            wake: Notify::new(),
            done: watch::channel(0).0,
        }
    }
}

impl CoordinatorLoads {
    /// Asks for a round; returns the ticket that [`Self::wait`] takes.
    pub fn request(&self) -> u64 {
        let ticket = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.wake.notify_one();
        ticket
    }

    /// Waits at most `bound` for a round that covers `ticket`; false if none finished.
    pub async fn wait(&self, ticket: u64, bound: Duration) -> bool {
        let mut done = self.done.subscribe();
        tokio::time::timeout(bound, done.wait_for(|d| *d >= ticket))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Asks for a round and waits at most `bound` for it.
    pub async fn request_and_wait(&self, bound: Duration) -> bool {
        let ticket = self.request();
        self.wait(ticket, bound).await
    }
}

/// The loop that runs the rounds, for as long as the broker runs.
pub async fn run(broker: Arc<Broker>) {
    let loads = &broker.coordinator_loads;
    loop {
        loads.wake.notified().await;
        let covered = loads.requested.load(Ordering::Acquire);
        let round = broker.clone();
        let _ = tokio::task::spawn_blocking(move || {
            round.groups.load_shards(&round);
            round.transactions.load_shards(&round);
        })
        .await;
        loads.done.send_replace(covered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_is_released_only_by_a_round_that_covers_its_request() {
        let loads = Arc::new(CoordinatorLoads::default());
        let first = loads.request();
        // No round ran: the wait ends at its bound.
        assert!(!loads.wait(first, Duration::from_millis(50)).await);

        // A round that read the counter before the second request covers only the first.
        let covered = loads.requested.load(Ordering::Acquire);
        let second = loads.request();
        loads.done.send_replace(covered);
        assert!(loads.wait(first, Duration::from_millis(50)).await);
        assert!(!loads.wait(second, Duration::from_millis(50)).await);
        // The second request left a wake-up for the next round.
        tokio::time::timeout(Duration::from_millis(50), loads.wake.notified())
            .await
            .expect("a pending wake-up");
    }
}
