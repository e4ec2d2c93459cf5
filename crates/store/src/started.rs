//! [`Started`]: work started now and finished later, the way the engine
//! drives store calls (and the way the conformance suite checks that a
//! store can be driven).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Work started now and finished later: a future polled once, so that what
/// it hands to other threads (a store's blocking I/O, its write queue)
/// starts at once rather than when it is first awaited, and the caller can
/// attend to other work meanwhile. It is not polled again until
/// [`Started::finish`], so what it starts must go on by itself: the
/// [`Store`](crate::Store) trait asks that of every store.
#[must_use = "started work is only finished by `finish`"]
pub struct Started<'a, T> {
    future: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
    /// The output, when the first poll already finished it.
    done: Option<T>,
}

impl<'a, T> Started<'a, T> {
    pub async fn start(future: impl Future<Output = T> + Send + 'a) -> Started<'a, T> {
        let mut future: Pin<Box<dyn Future<Output = T> + Send + 'a>> = Box::pin(future);
        let done = std::future::poll_fn(|cx| {
            Poll::Ready(match future.as_mut().poll(cx) {
                Poll::Ready(output) => Some(output),
                Poll::Pending => None,
            })
        })
        .await;
        Started { future, done }
    }

    /// Waits for the output. The future is dropped by the time this
    /// returns, and with it whatever it held.
    pub async fn finish(self) -> T {
        match self.done {
            Some(done) => done,
            None => self.future.await,
        }
    }
}
