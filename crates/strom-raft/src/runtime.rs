//! [`Runtime`]: openraft's async runtime for strom. Everything is tokio's, except the
//! random numbers openraft draws (election timeouts): they come from a per-thread
//! generator that a deterministic simulation seeds with [`seed_rng`]. Unseeded, it draws
//! from the OS-seeded `rand::thread_rng`, as openraft's `TokioRuntime` does.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend, TokioRuntime};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

thread_local! {
    static SEEDED: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// From now on, openraft on this thread draws its random numbers from a generator seeded
/// with `seed` (a simulation runs every node on one thread, so one seed fixes them all).
pub fn seed_rng(seed: u64) {
    SEEDED.with(|rng| *rng.borrow_mut() = Some(StdRng::seed_from_u64(seed)));
}

/// Back to OS-seeded random numbers on this thread.
pub fn unseed_rng() {
    SEEDED.with(|rng| *rng.borrow_mut() = None);
}

/// The generator [`Runtime::thread_rng`] hands out: the thread's seeded one if there is
/// one, else `rand::thread_rng`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RuntimeRng;

impl RuntimeRng {
    fn draw<T>(f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
        SEEDED.with(|seeded| match seeded.borrow_mut().as_mut() {
            Some(rng) => f(rng),
            None => f(&mut rand::thread_rng()),
        })
    }
}

impl RngCore for RuntimeRng {
    fn next_u32(&mut self) -> u32 {
        Self::draw(|rng| rng.next_u32())
    }

    fn next_u64(&mut self) -> u64 {
        Self::draw(|rng| rng.next_u64())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        Self::draw(|rng| rng.fill_bytes(dest))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        Self::draw(|rng| rng.try_fill_bytes(dest))
    }
}

/// tokio, with [`RuntimeRng`] as the random number generator.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Runtime;

type Tokio = TokioRuntime;

impl AsyncRuntime for Runtime {
    type JoinError = <Tokio as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Tokio as AsyncRuntime>::Sleep;
    type Instant = <Tokio as AsyncRuntime>::Instant;
    type TimeoutError = <Tokio as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Tokio as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = RuntimeRng;
    type OneshotSender<T: OptionalSend> = <Tokio as AsyncRuntime>::OneshotSender<T>;
    type OneshotReceiverError = <Tokio as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <Tokio as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Tokio::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Tokio::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Tokio::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        RuntimeRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        Tokio::oneshot()
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    fn draws() -> Vec<u64> {
        (0..8)
            .map(|_| Runtime::thread_rng().gen_range(1000..2000))
            .collect()
    }

    #[test]
    fn a_seed_fixes_the_draws_and_unseeding_restores_entropy() {
        seed_rng(7);
        let first = draws();
        seed_rng(7);
        assert_eq!(draws(), first);
        seed_rng(8);
        assert_ne!(draws(), first);
        unseed_rng();
        let a = draws();
        let b = draws();
        assert!(a.iter().all(|d| (1000..2000).contains(d)));
        assert_ne!(
            a, b,
            "entropy draws 8 equal numbers in a row with odds 1e-24"
        );
    }
}
