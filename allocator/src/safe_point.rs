//! `safe_point()`: one call for a runtime's safe points, joining the
//! allocator's [`collect`](crate::collect) and `homing-deferred`'s
//! (`Shared<T>` releases).
//!
//! It lives here because `homing` already depends on `homing-deferred`
//! (its inbox); the other way round would be a cycle. Enabling
//! `homing-deferred`'s `std` feature from `homing` costs nothing when
//! `Shared` is unused: its thread-locals are touched only by a thread that
//! makes a `Shared`.

/// Finishes the calling thread's deferred work, in the order that gives the
/// most back: first the `Shared<T>` releases other threads left to it
/// (`homing_deferred::collect()`, which may run destructors and so free
/// memory), then the allocator's own tidy-up ([`collect`](crate::collect):
/// post the outbox, drain the inbox, return empty pages, purge).
///
/// Call it where a runtime knows the thread holds nothing in flight: an
/// event loop's turn, a worker before it parks. Like both halves, it is
/// never needed for correctness and cheap when nothing is pending.
///
/// ```
/// use homing_deferred::Shared;
///
/// let line = Shared::new(String::from("made here"));
/// std::thread::spawn(move || drop(line)).join().unwrap();
/// homing::safe_point(); // the string is dropped here, then its memory tidied
/// ```
pub fn safe_point() {
    homing_deferred::collect();
    crate::collect();
}
