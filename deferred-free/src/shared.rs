//! `Shared<T>`: a reference-counted pointer with biased counting.
//!
//! The thread that creates the object (its **owner**) counts its handles
//! with plain loads and stores; other threads count on a separate atomic,
//! with one `fetch_add` per clone and one `fetch_sub` per drop, as `Arc`.
//! A foreign drop that may have released the last handle signals the
//! owner's record (not the object), and the owner finishes it at its next
//! safe point: [`collect`](crate::collect), its next [`Shared::new`], or
//! its exit, which merges everything still biased to it. The protocol and
//! its orderings are in `header`; the owner side in `thread` and `record`.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

use crate::header::Header;
use crate::record::Record;
use crate::thread;

/// The allocation: the header (its first field is the owner's list link), then
/// the value.
#[repr(C)]
struct Inner<T> {
    header: Header,
    value: T,
}

/// Drops the value and frees the allocation of an `Inner<T>`.
///
/// # Safety
///
/// `header` is the header of a `Box<Inner<T>>` whose last handle is gone
/// and which is merged (on no list).
unsafe fn free<T>(header: NonNull<Header>) {
    // SAFETY: `header` is the first field of a `#[repr(C)]` `Inner<T>` made
    // by `Box::new`; the caller says nobody uses it any more.
    drop(unsafe { std::boxed::Box::from_raw(header.cast::<Inner<T>>().as_ptr()) });
}

/// A shared, reference-counted value whose owner thread counts for free.
///
/// Cloning and dropping a `Shared` on the thread that created it costs no
/// atomic instruction; on another thread each costs one `fetch_add` or
/// `fetch_sub`, as `Arc`, on a separate word (so the owner's counting never
/// contends with it). The value is dropped
/// when the last handle is gone: at once if the last drop happens on the
/// owner or after the counts were merged, otherwise at the owner's next
/// safe point ([`collect`](crate::collect), its next `Shared::new`, or its
/// exit). An owner's exit merges all its objects, so after it every handle
/// counts on the atomic and the last drop, anywhere, frees at once.
///
/// A handle is two words: the pointer and the creating thread's record, so
/// that a foreign thread decides "not mine" without reading the object
/// first. `Shared<T>` is `Send` and `Sync` exactly when `T` is both, as for
/// `std::sync::Arc`. There is no `Weak`: a weak upgrade would have to read
/// the two counts as one, which is what biasing splits apart.
///
/// ```
/// use homing_deferred::{collect, Shared};
///
/// let config = Shared::new(vec![1, 2, 3]);
/// let mine = config.clone(); // plain increment: we are the owner
/// let theirs = config.clone();
/// let sum = std::thread::spawn(move || {
///     let again = theirs.clone(); // atomic: not the owner
///     again.iter().sum::<i32>()
/// }) // both foreign handles dropped there
/// .join()
/// .unwrap();
/// assert_eq!(sum, 6);
/// drop((config, mine));
/// collect();
/// ```
///
/// A `Shared` of a type that is not `Sync` cannot leave its thread:
///
/// ```compile_fail
/// let s = homing_deferred::Shared::new(core::cell::Cell::new(1));
/// std::thread::spawn(move || s.get());
/// ```
pub struct Shared<T> {
    ptr: NonNull<Inner<T>>,
    /// The creating thread's record (null if born merged), copied into
    /// every handle: a thread whose record differs is never the owner, so
    /// it counts on the atomic without first reading the header (whose
    /// address would come from this handle: one dependent load less on a
    /// foreign clone or drop, the gap that remained against `Arc`).
    home: *const Record,
    _owns: PhantomData<Inner<T>>,
}

// SAFETY: as for `Arc`: handles on several threads give `&T` to each (so
// `T: Sync`) and the last one, on any thread, drops the `T` (so `T: Send`).
// The counts are the owner's plain field, touched only by the owner, and
// atomics.
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: `&Shared<T>` gives `&T` and clones (which move to other threads);
// same conditions as `Send`.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Puts `value` in a new shared allocation owned by the calling thread.
    /// First finishes releases other threads left to this thread, if any
    /// (amortised; see [`collect`](crate::collect)).
    ///
    /// ```
    /// let s = homing_deferred::Shared::new(5);
    /// assert_eq!(*s, 5);
    /// ```
    pub fn new(value: T) -> Self {
        let me = thread::current_or_register();
        if let Some(record) = me {
            thread::sweep_if_due(record);
        }
        let inner = std::boxed::Box::new(Inner {
            header: Header::new(me, free::<T>),
            value,
        });
        let ptr = NonNull::from(std::boxed::Box::leak(inner));
        if let Some(record) = me {
            // SAFETY: a header just made with `me`, at its final address,
            // on `me`'s thread.
            unsafe { Header::link(ptr.cast(), record) };
        }
        Shared {
            ptr,
            home: me.map_or(core::ptr::null(), |r| r.as_ptr().cast_const()),
            _owns: PhantomData,
        }
    }

    #[inline(always)]
    fn header(&self) -> &Header {
        // SAFETY: the handle keeps the allocation alive.
        unsafe { &self.ptr.as_ref().header }
    }

    /// `true` if both handles point at the same object.
    ///
    /// ```
    /// use homing_deferred::Shared;
    /// let a = Shared::new(1);
    /// let b = a.clone();
    /// assert!(Shared::ptr_eq(&a, &b));
    /// assert!(!Shared::ptr_eq(&a, &Shared::new(1)));
    /// ```
    #[inline]
    pub fn ptr_eq(this: &Self, other: &Self) -> bool {
        this.ptr == other.ptr
    }

    /// `true` if the calling thread counts this object with plain
    /// operations (it created it and the counts are not merged yet).
    ///
    /// ```
    /// use homing_deferred::Shared;
    /// let s = Shared::new(1);
    /// assert!(Shared::is_biased_here(&s));
    /// let t = s.clone();
    /// assert!(!std::thread::spawn(move || Shared::is_biased_here(&t)).join().unwrap());
    /// ```
    #[inline]
    pub fn is_biased_here(this: &Self) -> bool {
        this.header().is_owner(thread::current())
    }

    /// A raw pointer to the value (valid while a handle lives).
    ///
    /// ```
    /// use homing_deferred::Shared;
    /// let s = Shared::new(String::from("one value"));
    /// let t = s.clone();
    /// // Every handle points at the same value.
    /// assert_eq!(Shared::as_ptr(&s), Shared::as_ptr(&t));
    /// assert!(core::ptr::eq(Shared::as_ptr(&s), &*t));
    /// ```
    #[inline]
    pub fn as_ptr(this: &Self) -> *const T {
        // SAFETY: the handle keeps the allocation alive; no reference made.
        unsafe { core::ptr::addr_of!((*this.ptr.as_ptr()).value) }
    }
}

impl<T> Clone for Shared<T> {
    #[inline]
    fn clone(&self) -> Self {
        let h = self.header();
        let me = thread::current();
        if self.home == me && h.is_owner(me) {
            // SAFETY: we are the owner.
            unsafe { h.acquire_local() };
        } else {
            h.acquire_shared();
        }
        Shared {
            ptr: self.ptr,
            home: self.home,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for Shared<T> {
    #[inline]
    fn drop(&mut self) {
        let header = self.ptr.cast::<Header>();
        let me = thread::current();
        if self.home == me && self.header().is_owner(me) {
            // SAFETY: we are the owner and give up this handle.
            if unsafe { Header::release_local(header) } {
                // SAFETY: the last handle, and merged (so nobody else
                // counts it).
                unsafe { free::<T>(header) };
            }
        } else {
            // SAFETY: we give up this handle; the object is live until then.
            // While biased, the owner is the home (module doc of `header`).
            unsafe { Header::release_shared(header, self.home.cast_mut()) };
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the handle keeps the value alive; only `&T` is handed out.
        unsafe { &self.ptr.as_ref().value }
    }
}

impl<T> AsRef<T> for Shared<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T> core::borrow::Borrow<T> for Shared<T> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T> fmt::Pointer for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&Shared::as_ptr(self), f)
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Shared::new(T::default())
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for Shared<T> {}

impl<T: core::hash::Hash> core::hash::Hash for Shared<T> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::collect;
    use std::format;
    use std::string::String;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::vec::Vec;

    /// Counts its drops.
    struct Probe(Arc<AtomicUsize>);
    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn probe() -> (Shared<Probe>, Arc<AtomicUsize>) {
        let drops = Arc::new(AtomicUsize::new(0));
        (Shared::new(Probe(Arc::clone(&drops))), drops)
    }

    #[test]
    fn owner_only_counts_drop_at_the_last_handle() {
        let (s, drops) = probe();
        let clones: Vec<_> = (0..10).map(|_| s.clone()).collect();
        drop(s);
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(clones);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_foreign_last_drop_is_finished_by_the_owner() {
        let (s, drops) = probe();
        std::thread::spawn(move || drop(s)).join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 0, "deferred to the owner");
        collect();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_owners_next_new_finishes_pending_releases() {
        let (s, drops) = probe();
        std::thread::spawn(move || drop(s)).join().unwrap();
        let _other = Shared::new(0u8);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn merged_objects_are_freed_by_whoever_drops_last() {
        let (s, drops) = probe();
        let t = s.clone();
        let u = s.clone();
        // A foreign drop of an owner-counted handle: signalled, then merged
        // here (two handles still live, now counted on the atomic).
        std::thread::spawn(move || drop(t)).join().unwrap();
        collect();
        assert!(!Shared::is_biased_here(&s));
        drop(s);
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        std::thread::spawn(move || drop(u)).join().unwrap();
        assert_eq!(
            drops.load(Ordering::Relaxed),
            1,
            "freed by the foreign thread"
        );
    }

    #[test]
    fn an_exited_owners_objects_are_finished_by_the_releaser() {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&drops);
        let s = std::thread::spawn(move || {
            let s = Shared::new(Probe(d));
            let keep = s.clone();
            drop(s);
            keep
        })
        .join()
        .unwrap();
        let again = s.clone();
        drop(s);
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(again);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn owner_exit_finishes_what_was_signalled() {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&drops);
        std::thread::spawn(move || {
            let s = Shared::new(Probe(d));
            std::thread::scope(|scope| {
                scope.spawn(move || drop(s));
            });
            // Signalled to us; our exit finishes it.
        })
        .join()
        .unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn many_threads_clone_and_drop() {
        let threads = if cfg!(miri) { 3 } else { 8 };
        let rounds = if cfg!(miri) { 20 } else { 10_000 };
        let (s, drops) = probe();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let mine = s.clone();
                scope.spawn(move || {
                    for _ in 0..rounds {
                        let c = mine.clone();
                        drop(c);
                    }
                });
            }
        });
        drop(s);
        collect();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    /// A value whose destructor drops another `Shared` of the same owner
    /// and makes a new one: both happen inside the owner's sweep.
    struct Nested {
        inner: Option<Shared<Probe>>,
        drops: Arc<AtomicUsize>,
        made: std::cell::Cell<Option<Shared<Probe>>>,
    }
    impl Drop for Nested {
        fn drop(&mut self) {
            drop(self.inner.take());
            self.made
                .set(Some(Shared::new(Probe(Arc::clone(&self.drops)))));
            drop(self.made.take());
            self.drops.fetch_add(100, Ordering::Relaxed);
        }
    }
    // SAFETY: (test only) `made` is touched only by the destructor, which
    // runs on one thread.
    unsafe impl Sync for Nested {}

    #[test]
    fn destructors_run_by_a_sweep_may_drop_and_make_shared() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (inner, inner_drops) = probe();
        let outer = Shared::new(Nested {
            inner: Some(inner),
            drops: Arc::clone(&drops),
            made: std::cell::Cell::new(None),
        });
        let keep: Vec<_> = (0..5).map(|_| Shared::new(1u8)).collect();
        std::thread::spawn(move || drop(outer)).join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 0, "left to the owner");
        collect();
        // The nested object was dropped (owner path, inside the sweep), the
        // one made by the destructor too, and the outer value.
        assert_eq!(inner_drops.load(Ordering::Relaxed), 1);
        assert_eq!(drops.load(Ordering::Relaxed), 101);
        assert!(keep.iter().all(Shared::is_biased_here));
    }

    #[test]
    fn new_sweeps_a_long_list_amortised_and_collect_at_once() {
        // More than the short-list bound, kept alive.
        let keep: Vec<_> = (0..200).map(|_| Shared::new(0u32)).collect();
        collect(); // a sweep (if anything was pending) resets the budget
        let (s, drops) = probe();
        std::thread::spawn(move || drop(s)).join().unwrap();
        collect();
        assert_eq!(drops.load(Ordering::Relaxed), 1, "collect sweeps at once");
        let (s, drops) = probe();
        std::thread::spawn(move || drop(s)).join().unwrap();
        let _one = Shared::new(1u8);
        assert_eq!(drops.load(Ordering::Relaxed), 0, "one new is not enough");
        let more: Vec<_> = (0..300).map(|_| Shared::new(2u8)).collect();
        assert_eq!(drops.load(Ordering::Relaxed), 1, "half the list's worth is");
        drop((keep, more));
    }

    #[test]
    fn values_are_readable_everywhere() {
        let s = Shared::new(String::from("shared"));
        let t = s.clone();
        let len = std::thread::spawn(move || t.len()).join().unwrap();
        assert_eq!(len, s.len());
        assert_eq!(format!("{s}/{s:?}"), "shared/\"shared\"");
    }
}
