//! Work on a thread of its own beside the caller's, or on the caller's
//! thread when no thread can be started: [`Background`] hands work over
//! and lets the caller go on (encoding a batch while the stores flush,
//! committing it while the next chunk is planned); [`at_once`] runs two
//! pieces of borrowing work side by side and waits for both (the two sides
//! of a large join).

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Work under way on a thread of its own, or already done.
#[derive(Debug)]
#[must_use = "the work's result is only taken by `finish`"]
pub struct Background<T> {
    inner: Inner<T>,
}

#[derive(Debug)]
enum Inner<T> {
    Started(JoinHandle<T>),
    /// No thread could be started: the work ran in `start`.
    Done(T),
}

impl<T: Send + 'static> Background<T> {
    /// Starts `work` on a thread called `name`; runs it here and now when
    /// the system refuses another thread.
    pub fn start(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Background<T> {
        // The work is handed over through a shared slot, so that it is
        // still here to run when the spawn fails (a closure given to a
        // failed spawn is gone with it).
        let slot = Arc::new(Mutex::new(Some(work)));
        let theirs = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || take(&theirs).expect("the work is handed over once")());
        let inner = match spawned {
            Ok(handle) => Inner::Started(handle),
            Err(_) => Inner::Done(take(&slot).expect("the thread never started")()),
        };
        Background { inner }
    }

    /// Waits for the work and returns its result; a panic in the work is
    /// raised again here.
    pub fn finish(self) -> T {
        match self.inner {
            Inner::Started(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Inner::Done(done) => done,
        }
    }
}

/// Runs `a` on a thread called `name` and `b` on this one, and returns both
/// results; runs both here when no thread can be started.
pub fn at_once<A: Send, B>(
    name: &str,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B,
) -> (A, B) {
    let slot = Mutex::new(Some(a));
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn_scoped(scope, || take(&slot).map(|a| a()));
        let from_b = b();
        let from_a = match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => None,
        };
        let from_a = from_a
            .or_else(|| take(&slot).map(|a| a()))
            .expect("`a` runs exactly once");
        (from_a, from_b)
    })
}

/// Takes the work out of its slot: on the thread it was handed to, or back
/// on the caller's when that thread never started.
fn take<F>(slot: &Mutex<Option<F>>) -> Option<F> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_runs_on_a_thread_of_its_own() {
        let caller = std::thread::current().id();
        let work = Background::start("tandem-test", move || {
            (
                std::thread::current().id() != caller,
                std::thread::current().name().map(String::from),
            )
        });
        assert_eq!(work.finish(), (true, Some("tandem-test".to_string())));
    }

    #[test]
    fn at_once_runs_both_and_keeps_their_order() {
        let here = std::thread::current().id();
        let (a, b) = at_once(
            "tandem-test",
            || (std::thread::current().id(), "a"),
            || (std::thread::current().id(), "b"),
        );
        assert_eq!((a.1, b.1), ("a", "b"));
        assert_ne!(a.0, here, "`a` runs on a thread of its own");
        assert_eq!(b.0, here);
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller() {
        let work = Background::start("tandem-test", || -> u32 { panic!("boom") });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.finish()));
        let message = caught.expect_err("the panic comes back");
        assert_eq!(message.downcast_ref::<&str>(), Some(&"boom"));
    }
}
