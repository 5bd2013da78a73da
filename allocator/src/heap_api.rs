//! First-class heaps for embedding: [`Heap`].
//!
//! A `Heap` is a heap like a thread's, owned by one thread at a time: the
//! value is `Send` (moving it to another thread hands the heap over) but
//! not `Sync` (two threads never use it at once). Its blocks may be freed from any thread
//! with [`crate::free`] (or by the global allocator's `dealloc`): a free from
//! another thread is posted to the heap's inbox at once (not batched, so no
//! block of a heap can wait in some thread's outbox when the heap goes away)
//! and the owner takes it back in its own context: at its next allocation
//! slow path or [`Heap::collect`]. [`Heap::destroy`] (or drop) releases
//! every block the heap still holds at once, with no per-block work.
//!
//! # Hand-off: `Send`, not `detach`/`attach`
//!
//! A VM that moves an interpreter state between worker threads moves the
//! state's heap with it. In Rust that is just moving the `Heap` (inside the
//! state) through whatever moves the state: a channel, a mutex, a join.
//! Those already order the old thread's writes before the new thread's
//! reads, the borrow checker already forbids moving a heap that values
//! still borrow (`Vec<T, &Heap>`), and `!Sync` forbids two threads using it
//! at once, so an explicit `detach`/`attach` pair would add calls that can
//! be forgotten and checks that can fail, and buy nothing. Nothing on the
//! heap's paths depends on which thread runs them: a first-class heap has no
//! outbox (its remote frees are posted one by one), and the calling
//! thread's own heap is only looked up for blocks of other heaps.
//!
//! Remote frees keep working at every moment of a hand-off: a block freed
//! into the heap while it travels waits in the inbox, which the next owner
//! drains. C, which has no ownership in its types, gets an explicit pair
//! instead (`homing_heap_release` / `homing_heap_acquire`, built on
//! [`Heap::hold_release`] and [`Heap::hold_acquire`]), which the checked
//! build verifies on every call.
//!
//! # Accounting and limit
//!
//! [`Heap::stats`] reads a few counters (no walk of pages);
//! [`Heap::set_limit`] caps the bytes of pages and huge blocks the heap has
//! in use. The limit is checked where those grow, on the allocation slow
//! path when the heap takes a fresh page (counted in whole pages: 64 KiB for
//! small classes, 512 KiB for medium ones) or maps a huge block, so the fast
//! path never looks at it, a heap without a limit pays one predictable
//! branch per fresh page, and live bytes never exceed the limit. A refused
//! allocation returns `None` (the heap stays usable: free something and
//! allocate again); it is not an out-of-memory condition, so the process's
//! memory is not given back and retried for it.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};

use crate::account::NO_LIMIT;
use crate::heap::{self, FREE};
use crate::segment;
use crate::size_class;
use crate::stats::HeapStats;
use crate::sync::Ordering;
use crate::thread;

/// A first-class heap: allocate from it on its owner thread, free its blocks
/// from any thread, destroy it whole.
///
/// ```
/// use allocator_api2::vec::Vec;
///
/// let heap = homing::Heap::new();
/// let mut v = Vec::new_in(&heap);
/// v.extend(0..1000u64);
/// assert_eq!(v[999], 999);
/// drop(v);
/// heap.destroy(); // releases whatever is left at once
/// ```
///
/// A heap moves to another thread with its value (`Send`):
///
/// ```
/// let heap = homing::Heap::new();
/// let p = heap.alloc(core::alloc::Layout::new::<u64>()).unwrap();
/// let addr = p.as_ptr() as usize; // raw pointers are not Send
/// std::thread::spawn(move || {
///     let p = core::ptr::NonNull::new(addr as *mut u8).unwrap();
///     // SAFETY: a live block of the heap, freed once.
///     unsafe { heap.dealloc(p) };
///     heap.destroy();
/// })
/// .join()
/// .unwrap();
/// ```
///
/// but two threads never share it (`!Sync`):
///
/// ```compile_fail
/// fn shared<T: Sync>(_: &T) {}
/// shared(&homing::Heap::new());
/// ```
pub struct Heap {
    raw: NonNull<heap::Heap>,
    /// One thread at a time: `Send` (below), not `Sync`.
    _owner: PhantomData<*mut ()>,
}

// SAFETY: the heap's owner-only state moves with the value: whatever moves
// it between threads orders the old owner's writes before the new owner's
// reads, and `!Sync` keeps two threads from using it at once. No path of a
// first-class heap depends on the calling thread (see the module doc).
unsafe impl Send for Heap {}

/// The token of the calling thread for the hand-off word (never 0).
fn thread_token() -> usize {
    crate::os::thread_token()
}

/// Who holds a heap, as [`Heap::hold_release`] and [`Heap::hold_acquire`]
/// report it when they refuse.
///
/// ```
/// let heap = homing::Heap::new();
/// heap.hold_release().unwrap();
/// assert_eq!(heap.hold_check(), Err(homing::Holder::Nobody));
/// assert_eq!(heap.hold_release(), Err(homing::Holder::Nobody));
/// heap.hold_acquire().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: the heap was released and not acquired since.
    Nobody,
    /// Another thread.
    Other,
}

impl Heap {
    /// A new heap. Panics if the OS has no memory even for its header (use
    /// [`Heap::try_new`] to get `None` instead).
    ///
    /// ```
    /// use allocator_api2::boxed::Box;
    ///
    /// let heap = homing::Heap::new();
    /// let answer = Box::new_in(42u32, &heap); // `&Heap` is an `Allocator`
    /// assert_eq!(*answer, 42);
    /// ```
    pub fn new() -> Heap {
        Self::try_new().expect("homing: out of memory creating a heap")
    }

    /// A new heap, or `None` if the OS has no memory for it.
    ///
    /// ```
    /// let Some(heap) = homing::Heap::try_new() else {
    ///     return; // out of memory: carry on without a heap
    /// };
    /// heap.collect();
    /// ```
    pub fn try_new() -> Option<Heap> {
        let raw = thread::acquire(false)?;
        // SAFETY: a heap just taken for us, shared with nobody.
        unsafe {
            let account = &(*raw).account;
            account.restart((*raw).counters.remote_drained.get());
            account.set_holder(thread_token());
        }
        Some(Heap {
            raw: NonNull::new(raw)?,
            _owner: PhantomData,
        })
    }

    /// Allocates a block for `layout`, or `None` when out of memory.
    /// A zero-size layout gets a real (minimum-size) block.
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// let p = heap.alloc(Layout::from_size_align(48, 16).unwrap()).unwrap();
    /// assert_eq!(p.as_ptr() as usize % 16, 0);
    /// // SAFETY: a live block of `heap`, given up here.
    /// unsafe { heap.dealloc(p) };
    /// ```
    #[inline]
    pub fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        #[cfg(feature = "checked")]
        let _using = self.using("Heap::alloc");
        let raw = self.raw.as_ptr();
        // SAFETY: we own the heap (the value is ours; `Heap` is !Sync).
        let mut p = unsafe { heap::Heap::alloc_layout(raw, layout.size(), layout.align()) };
        if p.is_null() {
            p = self.alloc_again(layout);
        }
        let p = NonNull::new(p)?;
        #[cfg(feature = "checked")]
        // SAFETY: a fresh block of at least 16 bytes, ours.
        unsafe {
            crate::checked::clear_mark(p.as_ptr())
        };
        Some(p)
    }

    /// An allocation failed: if the limit refused it, take back what the
    /// heap holds but does not use (remote frees, empty pages each class
    /// keeps) and try once more against the limit; if the OS refused memory,
    /// give back what this heap, the calling thread's heap and the process
    /// hold, and try once more.
    #[cold]
    #[inline(never)]
    fn alloc_again(&self, layout: Layout) -> *mut u8 {
        let raw = self.raw.as_ptr();
        // SAFETY: we own this heap, and the thread's heap is ours.
        unsafe {
            heap::Heap::collect(raw, true);
            let refusals = (*raw).account.refusals();
            let p = heap::Heap::alloc_sized(raw, layout.size(), layout.align());
            if !p.is_null() || (*raw).account.refusals() != refusals {
                // Served, or the limit refused it (again): either way the
                // OS is not the problem, and the process keeps its memory.
                return p;
            }
            thread::release_held(thread::current());
            heap::Heap::alloc_sized(raw, layout.size(), layout.align())
        }
    }

    /// Like [`Heap::alloc`], zeroed.
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// let p = heap.alloc_zeroed(Layout::array::<u64>(100).unwrap()).unwrap();
    /// // SAFETY: the block holds 100 zeroed `u64`s.
    /// let words = unsafe { std::slice::from_raw_parts(p.as_ptr().cast::<u64>(), 100) };
    /// assert!(words.iter().all(|&w| w == 0));
    /// heap.destroy(); // frees the block too
    /// ```
    pub fn alloc_zeroed(&self, layout: Layout) -> Option<NonNull<u8>> {
        let p = self.alloc(layout)?;
        if size_class::class_for(layout.size(), layout.align()).is_some() {
            // SAFETY: the block holds at least `layout.size()` bytes.
            unsafe { p.as_ptr().write_bytes(0, layout.size()) };
        } else {
            // SAFETY: a huge block just allocated, of at least that size.
            unsafe { heap::Heap::zero_huge(p.as_ptr(), layout.size()) };
        }
        Some(p)
    }

    /// Frees a block of this heap on the owner thread (no atomic operation).
    /// Blocks of other heaps are passed to [`crate::free`].
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// let mine = heap.alloc(Layout::new::<[u8; 32]>()).unwrap();
    /// let global = std::ptr::NonNull::new(homing::alloc(32, 8)).unwrap();
    /// // SAFETY: both are live homing blocks, given up here.
    /// unsafe {
    ///     heap.dealloc(mine); // this heap's: freed in place
    ///     heap.dealloc(global); // another heap's: goes to `homing::free`
    /// }
    /// ```
    ///
    /// # Safety
    ///
    /// `p` is a live block from homing that the caller gives up.
    #[inline]
    pub unsafe fn dealloc(&self, p: NonNull<u8>) {
        let raw = self.raw.as_ptr();
        let addr = p.as_ptr();
        // The fast path, as `homing::free`'s: a small or medium block of
        // this heap goes on its page's local list. (A huge block of this
        // heap also names it in its header, but is not on a page: the slow
        // path below.)
        // SAFETY: `p` is a live block; if its segment names this heap (and
        // it is not a huge one), its page is ours.
        unsafe {
            let seg = heap::Heap::segment_if_owned(raw, addr);
            if !seg.is_null() && (*seg).kind != segment::Kind::Huge {
                #[cfg(feature = "checked")]
                let _using = self.using("Heap::dealloc");
                #[cfg(feature = "checked")]
                crate::checked::check_free(addr);
                (*raw).touch_owned();
                return heap::Heap::free_local(raw, seg, addr);
            }
        }
        // SAFETY: `p` is a live homing block, so its header is live.
        unsafe {
            let seg = segment::segment_of(p.as_ptr());
            if (*seg).heap == self.raw.as_ptr().cast() {
                #[cfg(feature = "checked")]
                let _using = self.using("Heap::dealloc");
                #[cfg(feature = "checked")]
                crate::checked::check_free(p.as_ptr());
                heap::Heap::free_owned(self.raw.as_ptr(), p.as_ptr());
            } else {
                crate::free(p.as_ptr());
            }
        }
    }

    /// Takes back blocks freed by other threads, returns empty pages,
    /// purges free memory, and purges the OS pages of pages in use that
    /// hold only free blocks (they fault back in when reused).
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// let p = heap.alloc(Layout::new::<u64>()).unwrap().as_ptr() as usize;
    /// // SAFETY (in the thread): a live homing block, given up there.
    /// std::thread::spawn(move || unsafe { homing::free(p as *mut u8) })
    ///     .join()
    ///     .unwrap();
    /// heap.collect(); // takes the block back from the heap's inbox
    /// ```
    pub fn collect(&self) {
        #[cfg(feature = "checked")]
        let _using = self.using("Heap::collect");
        // SAFETY: we own the heap.
        unsafe { heap::Heap::collect_and_trim(self.raw.as_ptr(), false) };
    }

    /// The heap's numbers now: live bytes and blocks, peak, bytes in use
    /// and held from the OS, remote frees taken back, limit. A few loads, no
    /// walk of pages; cheap enough for every GC safe point. Blocks freed by
    /// other threads count as live until taken back: call
    /// [`Heap::collect`] first for exact live numbers.
    ///
    /// ```
    /// use core::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// let p = heap.alloc(Layout::from_size_align(1000, 8).unwrap()).unwrap();
    /// let s = heap.stats();
    /// assert!(s.live_blocks >= 1 && s.live_bytes >= 1000);
    /// assert!(s.peak_live_bytes >= s.live_bytes && s.os_bytes >= s.in_use_bytes);
    /// // SAFETY: a live block of this heap.
    /// unsafe { heap.dealloc(p) };
    /// ```
    pub fn stats(&self) -> HeapStats {
        #[cfg(feature = "checked")]
        let _using = self.using("Heap::stats");
        // SAFETY: we own the heap.
        unsafe {
            let heap = self.raw.as_ptr();
            HeapStats::of(&(*heap).counters, &(*heap).account, true)
        }
    }

    /// Caps the bytes of pages and huge blocks the heap has in use (`None`:
    /// no limit). An allocation that would go over it returns `None` and
    /// leaves the heap usable. Counted in whole pages (64 KiB small, 512 KiB
    /// medium; huge blocks by size), checked only when the heap takes a
    /// fresh page or maps a huge block. A limit below what is in use now
    /// refuses every fresh page until enough is freed.
    ///
    /// ```
    /// use core::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// heap.set_limit(Some(1 << 20));
    /// let big = Layout::from_size_align(4 << 20, 16).unwrap();
    /// assert!(heap.alloc(big).is_none(), "over the limit");
    /// let small = Layout::from_size_align(64, 16).unwrap();
    /// let p = heap.alloc(small).expect("still usable");
    /// // SAFETY: a live block of this heap.
    /// unsafe { heap.dealloc(p) };
    /// heap.set_limit(None);
    /// ```
    pub fn set_limit(&self, limit: Option<usize>) {
        #[cfg(feature = "checked")]
        let _using = self.using("Heap::set_limit");
        // SAFETY: we own the heap.
        unsafe {
            (*self.raw.as_ptr())
                .account
                .set_limit(limit.unwrap_or(NO_LIMIT))
        };
    }

    /// The limit set with [`Heap::set_limit`].
    ///
    /// ```
    /// let heap = homing::Heap::new();
    /// assert_eq!(heap.limit(), None);
    /// heap.set_limit(Some(64 << 20));
    /// assert_eq!(heap.limit(), Some(64 << 20));
    /// ```
    pub fn limit(&self) -> Option<usize> {
        // SAFETY: the heap is live.
        let limit = unsafe { (*self.raw.as_ptr()).account.limit() };
        (limit != NO_LIMIT).then_some(limit)
    }

    /// For code that shares a heap through raw pointers (the C API's
    /// `homing_heap_release`): the calling thread, which holds the heap,
    /// lets it go, publishing its writes to the next [`Heap::hold_acquire`].
    /// A new heap is held by its creator. Rust code moves the `Heap`
    /// instead (it is `Send`).
    ///
    /// # Errors
    ///
    /// Who holds the heap, if not the calling thread (nothing changes).
    ///
    /// ```
    /// let heap = homing::Heap::new();
    /// heap.hold_release().unwrap(); // the creating thread lets it go
    /// let heap = std::thread::spawn(move || {
    ///     heap.hold_acquire().unwrap(); // the next thread takes it
    ///     heap.hold_release().unwrap();
    ///     heap
    /// })
    /// .join()
    /// .unwrap();
    /// heap.hold_acquire().unwrap();
    /// ```
    pub fn hold_release(&self) -> Result<(), Holder> {
        let me = thread_token();
        let raw = self.raw.as_ptr();
        // SAFETY: the heap is live; the hand-off word is atomic.
        let account = unsafe { &*core::ptr::addr_of!((*raw).account) };
        if account.holder() == me {
            // The heap goes idle: it gives back what it does not use, so
            // that idle heaps hold resident only their live data.
            // SAFETY: we hold it (only we could change that).
            unsafe { heap::Heap::collect_and_trim(raw, true) };
        }
        account.release(me).map_err(Self::holder_of)
    }

    /// The calling thread takes a released heap (`homing_heap_acquire`),
    /// seeing every write of its previous holder. Succeeds at once if the
    /// calling thread holds it already.
    ///
    /// # Errors
    ///
    /// `Holder::Other` if another thread holds it (two threads would use it
    /// at once; nothing changes).
    ///
    /// ```
    /// let heap = homing::Heap::new();
    /// heap.hold_acquire().unwrap(); // already held by its creator: Ok
    /// heap.hold_release().unwrap();
    /// heap.hold_acquire().unwrap();
    /// ```
    pub fn hold_acquire(&self) -> Result<(), Holder> {
        let me = thread_token();
        // SAFETY: the heap is live; the hand-off word is atomic.
        let account = unsafe { &*core::ptr::addr_of!((*self.raw.as_ptr()).account) };
        match account.acquire(me) {
            Err(holder) if holder != me => Err(Holder::Other),
            _ => Ok(()),
        }
    }

    /// Who holds the heap, if not the calling thread (`Ok` if it does).
    ///
    /// # Errors
    ///
    /// Who holds it instead.
    ///
    /// ```
    /// let heap = homing::Heap::new();
    /// assert_eq!(heap.hold_check(), Ok(()));
    /// ```
    pub fn hold_check(&self) -> Result<(), Holder> {
        // SAFETY: the heap is live; the hand-off word is atomic.
        let holder = unsafe { (*core::ptr::addr_of!((*self.raw.as_ptr()).account)).holder() };
        if holder == thread_token() {
            Ok(())
        } else {
            Err(Self::holder_of(holder))
        }
    }

    /// Checked build: reports a call (`call`, e.g. `"Heap::alloc"`) that
    /// may not use the heap now, and aborts: the heap was released
    /// ([`Heap::hold_release`]) and not acquired again, or another thread is
    /// inside one of its calls at this moment (two threads using one heap at
    /// once, which only `unsafe` code sharing it can do). The guard marks
    /// the call as inside until dropped.
    #[cfg(feature = "checked")]
    fn using(&self, call: &str) -> Using<'_> {
        // SAFETY: the heap is live; the hand-off word and the flag are atomic.
        let account = unsafe { &*core::ptr::addr_of!((*self.raw.as_ptr()).account) };
        let at = self.raw.as_ptr() as usize;
        if account.holder() == 0 {
            crate::os::fatal(
                &[call, " of a heap that was released (hold_release) and not acquired again: call hold_acquire first"],
                "heap",
                at,
            );
        }
        self.enter(call)
    }

    /// Checked build: as [`Heap::using`], without the holder check.
    #[cfg(feature = "checked")]
    fn enter(&self, call: &str) -> Using<'_> {
        // SAFETY: the heap is live; the flag is atomic.
        let account = unsafe { &*core::ptr::addr_of!((*self.raw.as_ptr()).account) };
        let at = self.raw.as_ptr() as usize;
        if !account.enter() {
            crate::os::fatal(
                &[call, " of a heap another thread is using at this moment (two threads using one heap at once)"],
                "heap",
                at,
            );
        }
        Using(account)
    }

    fn holder_of(token: usize) -> Holder {
        if token == 0 {
            Holder::Nobody
        } else {
            Holder::Other
        }
    }

    /// Releases every block the heap still holds, at once, and the heap
    /// itself. Equivalent to dropping it.
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let heap = homing::Heap::new();
    /// for _ in 0..1000 {
    ///     heap.alloc(Layout::new::<[u8; 100]>()).unwrap(); // never freed one by one
    /// }
    /// heap.destroy(); // all 1000 blocks go at once
    /// ```
    pub fn destroy(self) {
        drop(self);
    }
}

/// Checked build: a call of the heap in progress (see `Heap::using`).
#[cfg(feature = "checked")]
struct Using<'a>(&'a crate::account::Account);

#[cfg(feature = "checked")]
impl Drop for Using<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        // Checked build: no other thread may be inside a call (a `Using`
        // kept here would be dropped after the heap is free for reuse). A
        // released heap may be dropped (by whoever has the value).
        #[cfg(feature = "checked")]
        drop(self.enter("Heap::destroy"));
        let raw = self.raw.as_ptr();
        // SAFETY: we own the heap; no borrow of it is alive (we are in its
        // drop), so no `Allocator`-made value still uses its blocks, and any
        // other outstanding block may not be used after the heap goes (the
        // `destroy` contract).
        unsafe {
            heap::Heap::release_all(raw);
            // A free heap may become a thread's heap next: no limit, no
            // holder, fresh numbers.
            let account = &(*raw).account;
            account.restart((*raw).counters.remote_drained.get());
            account.set_holder(0);
            // Release: the next taker (Acquire in `acquire`) sees the heap reset.
            (*raw).state.store(FREE, Ordering::Release);
        }
    }
}

impl core::fmt::Debug for Heap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heap").field("at", &self.raw).finish()
    }
}

// SAFETY: blocks are valid for their layout until deallocated or the heap
// is dropped, which a borrow `&Heap` prevents while values use them;
// `deallocate` accepts exactly the blocks `allocate` returned.
unsafe impl Allocator for &Heap {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let p = Heap::alloc(self, layout).ok_or(AllocError)?;
        // SAFETY: a live block of ours.
        let usable = unsafe { crate::usable_size(p.as_ptr()) };
        Ok(NonNull::slice_from_raw_parts(p, usable))
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let p = Heap::alloc_zeroed(self, layout).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, _layout: Layout) {
        // SAFETY: the Allocator contract: `ptr` came from `allocate`.
        unsafe { Heap::dealloc(self, ptr) }
    }
}
