//! `queued.max.request.bytes`: a broker-wide budget for the bytes of requests
//! read and not yet answered. A connection reserves a request's frame size as
//! soon as it knows it, before reading the body, and gives it back once the
//! response is written; while the budget is spent it stops reading its socket.
//!
//! A request larger than the whole budget reserves the whole budget (it waits
//! until nothing else is held, then runs alone), so it can never wait forever.
//! Waiters are served in arrival order, so a large request is not starved by
//! a stream of small ones. Kafka instead lets a request in whenever any
//! budget is left, which can overshoot by one request; this never overshoots.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct RequestMemory {
    limit: u32,
    budget: Arc<Semaphore>,
}

/// Bytes held for one request; given back on drop.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: u32,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.bytes as usize
    }
}

impl RequestMemory {
    /// None when `limit_bytes` <= 0 (unbounded, Kafka's default of -1).
    pub fn new(limit_bytes: i64) -> Option<Self> {
        if limit_bytes <= 0 {
            return None;
        }
        // One request is at most `socket.request.max.bytes` (an i32), so a
        // budget beyond u32 can never be waited on: clamp it there.
        let limit = u32::try_from(limit_bytes).unwrap_or(u32::MAX);
        Some(Self {
            limit,
            budget: Arc::new(Semaphore::new(limit as usize)),
        })
    }

    /// Waits until `frame_bytes` (at most the whole budget) can be held.
    pub async fn reserve(&self, frame_bytes: usize) -> Reservation {
        let bytes = u32::try_from(frame_bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.limit);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(bytes)
            .await
            .expect("the budget's semaphore is never closed");
        Reservation {
            _permit: permit,
            bytes,
        }
    }

    /// Bytes not held by any request.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.budget.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_below_one_byte() {
        assert!(RequestMemory::new(-1).is_none());
        assert!(RequestMemory::new(0).is_none());
        assert_eq!(RequestMemory::new(1).map(|m| m.limit), Some(1));
        assert_eq!(RequestMemory::new(1 << 40).map(|m| m.limit), Some(u32::MAX));
    }

    #[tokio::test]
    async fn requests_wait_for_the_budget_in_order_and_an_oversize_one_runs_alone() {
        let memory = Arc::new(RequestMemory::new(100).unwrap());
        let first = memory.reserve(60).await;
        assert_eq!((first.bytes(), memory.available()), (60, 40));
        // 50 does not fit: it waits, and so does a later small one (arrival order).
        let waiting = tokio::spawn({
            let memory = memory.clone();
            async move { memory.reserve(50).await.bytes() }
        });
        tokio::task::yield_now().await;
        let oversize = tokio::spawn({
            let memory = memory.clone();
            async move {
                let held = memory.reserve(10_000).await;
                (held.bytes(), memory.available())
            }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished());
        assert!(!oversize.is_finished());
        drop(first);
        assert_eq!(waiting.await.unwrap(), 50);
        // Clamped to the whole budget, granted once nothing else is held.
        assert_eq!(oversize.await.unwrap(), (100, 0));
        assert_eq!(memory.available(), 100);
    }
}
