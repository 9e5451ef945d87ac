//! Kafka clients shared by requests: at most `size` in use at once; a request waits for one.
//!
//! A client goes back to the pool only when its operation finished (`release`): one whose
//! request was cancelled half-way (its HTTP client hung up) may have a response in flight,
//! so it is dropped instead.

use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};

pub struct Pool<T> {
    make: Box<dyn Fn() -> strom_client::Result<T> + Send + Sync>,
    idle: Mutex<Vec<T>>,
    permits: Semaphore,
}

pub struct Pooled<'a, T> {
    item: Option<T>,
    pool: &'a Pool<T>,
    _permit: SemaphorePermit<'a>,
}

impl<T> Pool<T> {
    pub fn new(
        size: usize,
        make: impl Fn() -> strom_client::Result<T> + Send + Sync + 'static,
    ) -> Self {
        Self {
            make: Box::new(make),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1)),
        }
    }

    pub(crate) async fn get(&self) -> strom_client::Result<Pooled<'_, T>> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let item = match idle {
            Some(item) => item,
            None => (self.make)()?,
        };
        Ok(Pooled {
            item: Some(item),
            pool: self,
            _permit: permit,
        })
    }
}

impl<T> Pool<T> {
    /// Runs one operation on a pooled client and gives the client back once it is done.
    pub async fn run<R>(
        &self,
        op: impl AsyncFnOnce(&mut T) -> strom_client::Result<R>,
    ) -> strom_client::Result<R> {
        let mut item = self.get().await?;
        let result = op(&mut item).await;
        item.release();
        result
    }
}

impl<T> Pooled<'_, T> {
    /// Gives the client back for the next request.
    pub(crate) fn release(mut self) {
        if let Some(item) = self.item.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(item);
        }
    }
}

impl<T> std::ops::Deref for Pooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.item.as_ref().expect("taken only by release")
    }
}

impl<T> std::ops::DerefMut for Pooled<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.item.as_mut().expect("taken only by release")
    }
}
