//! The calling thread's record: found with one thread-local load, made on
//! the thread's first `Shared::new`, finished at the thread's exit.
//!
//! `CURRENT` is a const-initialised `Cell` without a destructor, so reading
//! it is one thread-relative load and works at any point of thread exit. It
//! holds [`NONE`] until the thread registers, the record after, and
//! [`EXITED`] once the exit guard has run (a thread's last destructors may
//! still drop handles; they take the foreign path, and an object created
//! then is born merged).
//!
//! The exit guard is a second thread-local whose destructor marks the
//! record exited and finishes the queue (see `record`). It is touched only
//! when the record is made, so threads that never create a `Shared` pay
//! nothing at exit.

use core::cell::Cell;
use core::ptr::{self, NonNull};

use crate::header::finish_chain;
use crate::record::Record;
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
        let record = self.0.replace(ptr::null());
        if record.is_null() {
            return;
        }
        // SAFETY: records are never freed.
        let record = unsafe { &*record };
        record.mark_exited();
        // SAFETY: we are the owner (our own plain writes are visible); the
        // nodes are `Shared` headers posted to us.
        unsafe { finish_chain(record.take()) };
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
    let record = Record::register();
    let _ = GUARD.try_with(|g| g.0.set(record.as_ptr()));
    let _ = CURRENT.try_with(|c| c.set(record.as_ptr()));
    Some(record)
}

/// Finishes the releases other threads posted to the calling thread: every
/// object whose last handle they dropped is freed here (running its
/// destructor), and objects they still share are merged.
///
/// A thread that owns `Shared` objects calls this at its safe points (an
/// event loop's turn, a worker's idle moment); `Shared::new` also does it
/// when something is pending, and thread exit always does. It is cheap when
/// nothing is pending (one load). A runtime that also uses the allocator
/// calls `homing::collect()` at the same points.
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
    // SAFETY: not a sentinel, so a record (never freed).
    let record = unsafe { &*me };
    if record.has_pending() {
        collect_slow(record);
    }
}

/// Drains `record`'s queue if something is pending; for `Shared::new`.
#[inline]
pub(crate) fn collect_if_pending(record: NonNull<Record>) {
    // SAFETY: records are never freed.
    let record = unsafe { record.as_ref() };
    if record.has_pending() {
        collect_slow(record);
    }
}

#[cold]
#[inline(never)]
fn collect_slow(record: &Record) {
    // SAFETY: the caller is the record's thread (its owner), so the plain
    // counts of the objects it takes are its own writes.
    unsafe { finish_chain(record.take()) };
}
