//! The calling thread's record: found with one thread-local load, taken on
//! the thread's first `Shared::new`, handed back at the thread's exit; and
//! the owner's sweep.
//!
//! `CURRENT` is a const-initialised `Cell` without a destructor, so reading
//! it is one thread-relative load and works at any point of thread exit. It
//! holds [`NONE`] until the thread registers, the record after, and
//! [`EXITED`] once the exit guard has run (a thread's last destructors may
//! still drop handles; they take the foreign path, and an object created
//! then is born merged).
//!
//! The exit guard is a second thread-local whose destructor merges every
//! object still biased to the thread (freeing those with no handle left),
//! so that no object has an owner any more, and hands the record back
//! (see `record`). It is touched only when the record is made, so threads
//! that never create a `Shared` pay nothing at exit.
//!
//! A **sweep** takes the record's signal and merges every object of the
//! biased list whose shared count is negative: first it detaches them all
//! (walking the list), then merges them one by one. Merging may free, and
//! a destructor may drop or make other `Shared`s of this thread, which
//! changes the list: hence the two phases (the walk never runs a
//! destructor).

use core::cell::Cell;
use core::ptr::{self, NonNull};

use crate::header::Header;
use crate::record::{Links, Record};
use crate::sync::thread_locals;

/// `CURRENT` before the thread has a record. Never a record's address.
const NONE: *const Record = ptr::without_provenance(1);
/// `CURRENT` after the thread's exit guard ran. Never a record's address.
const EXITED: *const Record = ptr::without_provenance(2);

/// Runs the thread's exit for its record.
struct ExitGuard(Cell<*const Record>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // From now on this thread is nobody's owner.
        let _ = CURRENT.try_with(|c| c.set(EXITED));
        let Some(record) = NonNull::new(self.0.replace(ptr::null()).cast_mut()) else {
            return;
        };
        // SAFETY: we are the record's owner; everything it lists is ours.
        unsafe { merge_all(record.as_ref()) };
        // SAFETY: ours, from `Record::acquire`; the list is empty and we
        // never touch the record again (`CURRENT` is `EXITED`).
        unsafe { Record::release(record) };
    }
}

thread_locals! {
    static CURRENT: Cell<*const Record> = Cell::new(NONE);
    static GUARD: ExitGuard = ExitGuard(Cell::new(ptr::null()));
}

/// The calling thread's record as a comparable pointer: a record, or a
/// sentinel that equals no object's owner.
#[inline(always)]
pub(crate) fn current() -> *const Record {
    CURRENT.try_with(Cell::get).unwrap_or(EXITED)
}

/// The calling thread's record, made if needed; `None` once the thread's
/// exit has run (or if its thread-locals are gone).
#[inline]
pub(crate) fn current_or_register() -> Option<NonNull<Record>> {
    let me = current();
    if me == EXITED {
        return None;
    }
    if me == NONE {
        return register();
    }
    // SAFETY: not a sentinel, so a record's address.
    Some(unsafe { NonNull::new_unchecked(me.cast_mut()) })
}

#[cold]
#[inline(never)]
fn register() -> Option<NonNull<Record>> {
    let armed = GUARD.try_with(|g| g.0.get().is_null()).unwrap_or(false);
    if !armed {
        // The guard is being or has been destroyed: the thread is exiting.
        let _ = CURRENT.try_with(|c| c.set(EXITED));
        return None;
    }
    let record = Record::acquire();
    let _ = GUARD.try_with(|g| g.0.set(record.as_ptr()));
    let _ = CURRENT.try_with(|c| c.set(record.as_ptr()));
    Some(record)
}

/// Finishes the releases other threads left to the calling thread: every
/// object it created whose last handle they dropped is freed here (running
/// its destructor), and objects they dropped handles of but still share
/// are merged (counted on the atomic from then on).
///
/// A thread that owns `Shared` objects calls this at its safe points (an
/// event loop's turn, a worker's idle moment); `Shared::new` also does it
/// when something is pending (amortised: at once while the thread holds
/// few objects, otherwise after making half as many as it holds), and
/// thread exit always does. It is cheap when nothing is pending (one
/// load); when something is, it walks the thread's live objects once. A
/// runtime that also uses the allocator calls `homing::collect()` at the
/// same points.
///
/// ```
/// use homing_deferred::{collect, Shared};
///
/// let s = Shared::new(String::from("made here"));
/// std::thread::spawn(move || drop(s)).join().unwrap();
/// collect(); // the string is dropped now, on its owner
/// ```
pub fn collect() {
    let me = current();
    if me == NONE || me == EXITED {
        return;
    }
    // SAFETY: not a sentinel, so our record (never freed).
    let record = unsafe { &*me };
    if record.has_pending() {
        sweep(record);
    }
}

/// `Shared::new`'s amortised sweep (see [`collect`]).
#[inline]
pub(crate) fn sweep_if_due(record: NonNull<Record>) {
    // SAFETY: records are never freed; this is the caller's own.
    let record = unsafe { record.as_ref() };
    if record.sweep_due_on_new() {
        sweep(record);
    }
}

#[cold]
#[inline(never)]
fn sweep(record: &Record) {
    record.swept();
    if !record.take_signal() {
        return;
    }
    // Phase 1: detach every object whose count is negative onto a chain.
    let mut chain: *mut Links = ptr::null_mut();
    let mut node = record.first();
    while let Some(n) = NonNull::new(node) {
        // SAFETY: on our list, so alive; read before it is detached.
        node = unsafe { n.as_ref() }.next();
        let h = n.cast::<Header>();
        // SAFETY: we are the owner and `h` is on our list (headers start
        // with their links).
        if unsafe { Header::maybe_dead(h) } {
            // SAFETY: as above.
            unsafe { Header::detach(h, record) };
            // SAFETY: detached, so its links are ours to chain.
            unsafe { n.as_ref() }.set_next(chain);
            chain = n.as_ptr();
        }
    }
    // SAFETY: every node of the chain was detached by us just now.
    unsafe { merge_chain(chain) };
}

/// Merges every object still biased to `record` (at thread exit).
///
/// # Safety
///
/// The caller is `record`'s owner.
unsafe fn merge_all(record: &Record) {
    // Objects made by destructors during the merges are born merged
    // (`CURRENT` is `EXITED`), so one pass empties the list.
    let mut chain: *mut Links = ptr::null_mut();
    while let Some(n) = NonNull::new(record.first()) {
        // SAFETY: we are the owner; `n` is on our list.
        unsafe { Header::detach(n.cast(), record) };
        // SAFETY: detached, so its links are ours to chain.
        unsafe { n.as_ref() }.set_next(chain);
        chain = n.as_ptr();
    }
    debug_assert_eq!(record.len(), 0);
    // SAFETY: every node of the chain was detached by us just now.
    unsafe { merge_chain(chain) };
}

/// Merges a chain of detached objects.
///
/// # Safety
///
/// The caller is the owner that detached every node of `chain`.
unsafe fn merge_chain(mut chain: *mut Links) {
    while let Some(n) = NonNull::new(chain) {
        // SAFETY: detached and not merged, so alive; read before the merge
        // may free it.
        chain = unsafe { n.as_ref() }.next();
        // SAFETY: the contract.
        unsafe { Header::merge_detached(n.cast()) };
    }
}
