//! One-shot replies: [`Reply`] (the actor's half) and [`Ask`] (the
//! caller's half), which the caller can block on ([`Ask::wait`]) or
//! `.await` (it is a `Future`).
//!
//! A slot behind a `Mutex` holds the value, the waker of the task awaiting
//! it, and whether the reply was dropped unsent; a `Condvar` wakes a
//! blocked caller. The lock is held for a few stores, by two parties at
//! most, once each: simpler than a lock-free cell and not on any
//! allocation path.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

struct State<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The `Reply` is gone (sent or dropped).
    closed: bool,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves the state consistent (every
        // critical section is a few field stores), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The half of a reply the actor (or job) sends with, once.
///
/// ```
/// use homing_regions::actor::{reply, Reply};
///
/// let (tx, rx) = reply();
/// let worker = std::thread::spawn(move || {
///     let tx: Reply<&str> = tx; // moved to whoever answers
///     tx.send("done");
/// });
/// assert_eq!(rx.wait(), Ok("done"));
/// worker.join().unwrap();
/// ```
pub struct Reply<T> {
    slot: Arc<Slot<T>>,
}

/// The half of a reply the caller waits on: [`Ask::wait`] blocks the
/// thread, `.await` suspends the task.
///
/// Resolves to `Err(Canceled)` if the [`Reply`] is dropped without being
/// sent (the actor stopped first, or the handler forgot to answer).
///
/// ```
/// use homing_regions::actor::{reply, Canceled};
///
/// let (tx, mut ask) = reply::<u8>();
/// assert_eq!(ask.try_take(), None); // nothing yet
/// drop(tx); // never sent
/// assert_eq!(ask.wait(), Err(Canceled));
/// ```
#[must_use = "an Ask does nothing unless waited on or awaited"]
pub struct Ask<T> {
    slot: Arc<Slot<T>>,
}

/// The reply was dropped without a value.
///
/// ```
/// use homing_regions::actor::{reply, Canceled};
///
/// let (tx, ask) = reply::<String>();
/// drop(tx);
/// let err = ask.wait().unwrap_err();
/// assert_eq!(err, Canceled);
/// assert_eq!(err.to_string(), "the reply was dropped without a value");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Canceled;

impl std::fmt::Display for Canceled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reply was dropped without a value")
    }
}

impl std::error::Error for Canceled {}

/// A connected pair.
///
/// ```
/// let (reply, ask) = homing_regions::actor::reply::<u32>();
/// std::thread::spawn(move || reply.send(7));
/// assert_eq!(ask.wait(), Ok(7));
/// ```
pub fn reply<T>() -> (Reply<T>, Ask<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State {
            value: None,
            waker: None,
            closed: false,
        }),
        ready: Condvar::new(),
    });
    (
        Reply {
            slot: Arc::clone(&slot),
        },
        Ask { slot },
    )
}

impl<T> Reply<T> {
    /// Sends the value and wakes the caller.
    ///
    /// ```
    /// let (tx, ask) = homing_regions::actor::reply();
    /// tx.send(vec![1, 2]);
    /// assert_eq!(ask.wait(), Ok(vec![1, 2]));
    /// ```
    pub fn send(self, value: T) {
        self.slot.lock().value = Some(value);
        // `Drop` closes and wakes.
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.slot.lock();
            state.closed = true;
            state.waker.take()
        };
        self.slot.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Ask<T> {
    /// Blocks the calling thread until the reply comes.
    ///
    /// Do not call it from an actor's handler for a reply that needs the
    /// same pool's workers, with every worker doing the same: they would
    /// wait for each other. Await it from async code, or wait from a
    /// thread outside the pool.
    ///
    /// ```
    /// use homing_regions::actor::Pool;
    ///
    /// let pool = Pool::new(1);
    /// let ask = pool.run(|| 2 + 2);
    /// assert_eq!(ask.wait(), Ok(4)); // blocks this (non-worker) thread
    /// ```
    pub fn wait(self) -> Result<T, Canceled> {
        let mut state = self.slot.lock();
        loop {
            if let Some(v) = state.value.take() {
                return Ok(v);
            }
            if state.closed {
                return Err(Canceled);
            }
            state = self
                .slot
                .ready
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The reply if it has come, without waiting.
    ///
    /// ```
    /// use homing_regions::actor::{reply, Canceled};
    ///
    /// let (tx, mut ask) = reply();
    /// assert_eq!(ask.try_take(), None);
    /// tx.send(3);
    /// assert_eq!(ask.try_take(), Some(Ok(3)));
    /// // Taken: the slot is empty and its sender gone.
    /// assert_eq!(ask.try_take(), Some(Err(Canceled)));
    /// ```
    pub fn try_take(&mut self) -> Option<Result<T, Canceled>> {
        let mut state = self.slot.lock();
        match state.value.take() {
            Some(v) => Some(Ok(v)),
            None if state.closed => Some(Err(Canceled)),
            None => None,
        }
    }
}

impl<T> Future for Ask<T> {
    type Output = Result<T, Canceled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.lock();
        if let Some(v) = state.value.take() {
            return Poll::Ready(Ok(v));
        }
        if state.closed {
            return Poll::Ready(Err(Canceled));
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

impl<T> std::fmt::Debug for Ask<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ask")
    }
}
