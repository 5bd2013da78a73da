//! `Region`: a bump arena whose memory belongs to itself, not to a thread.
//!
//! # Structure
//!
//! A region holds a **current** chunk that it bumps through (`cur` up to
//! `end`), a list of **retired** chunks (full ones, and huge chunks holding
//! one large object each), and a **drop list** of the values that need
//! `Drop`. Chunks come from the chunk pool through the thread's cache
//! (`cache`); their headers link the region's chunk list (`owner_word`). The
//! drop list's entries are allocated in the region itself, so a region
//! allocates nothing anywhere else.
//!
//! Fields are `Cell`s: every method that allocates takes `&self`, so
//! references into the region can be held while allocating more. That makes
//! `Region` `!Sync`; it is `Send` because everything it holds is (see
//! [`Region`]).
//!
//! # Invariants
//!
//! - No current chunk: `cur == 1` (dangling) and `end == 0`, so the fast
//!   path's bound check fails without a separate test.
//! - Current chunk `c`: `c.base <= cur <= end == c.base + c.payload`.
//! - Every chunk appears once, in `current` or on the retired list;
//!   `retired_tail` is the last retired chunk (null iff the list is empty);
//!   likewise `drops_tail` for the drop list.
//! - Every drop entry points at a live, initialised value (or slice) in this
//!   region's chunks, which has not been dropped yet.

use core::alloc::Layout;
use core::cell::Cell;
use core::fmt;
use core::mem::needs_drop;
use core::ptr::{self, NonNull};

pub use allocator_api2::alloc::AllocError;

use crate::cache;
use crate::chunk::{
    class_size, Chunk, Header, CLASSES, HEADER_SIZE, MAX_CHUNK, SMALL_ALIGN, SMALL_CHUNKS,
};
use crate::sync::plain;

/// Bytes of chunk memory held by all regions now (see [`live_chunk_bytes`]).
static LIVE_CHUNK_BYTES: plain::AtomicUsize = plain::AtomicUsize::new(0);

/// Bytes of chunk memory (small, pooled and huge chunks, headers included)
/// that regions hold right now, process-wide. Zero once every region has
/// been dropped; chunks waiting in the pool or a thread's cache are not
/// counted. Updated only when a region takes or gives back a chunk.
///
/// ```
/// use homing_regions::{live_chunk_bytes, Region};
///
/// let region = Region::new();
/// region.alloc_str("held");
/// assert!(live_chunk_bytes() >= 1024);
/// drop(region); // (other threads' regions may still count)
/// ```
pub fn live_chunk_bytes() -> usize {
    // Relaxed: a statistic.
    LIVE_CHUNK_BYTES.load(plain::Ordering::Relaxed)
}

fn count_taken(bytes: usize) {
    // Relaxed: a statistic; no memory is published through it.
    LIVE_CHUNK_BYTES.fetch_add(bytes, plain::Ordering::Relaxed);
}

/// Steps of a region's growth before its first pooled chunk: one per small
/// chunk size. A region's `next_step` below this picks a small chunk, at
/// or above it the pooled class `next_step - SMALL_STEPS`.
const SMALL_STEPS: usize = SMALL_CHUNKS.len();

/// The step after a chunk of the given kind: the next small size, or the
/// next pooled class (capped at the largest).
fn step_after(chunk: &Chunk) -> usize {
    match chunk.class() {
        Some(class) => SMALL_STEPS + (class + 1).min(CLASSES - 1),
        None => {
            let i = SMALL_CHUNKS.iter().position(|&s| s == chunk.size());
            i.map_or(SMALL_STEPS, |i| i + 1)
        }
    }
}

/// Objects of this many bytes or more get a mapping of their own (a huge
/// chunk) instead of a place in a pooled chunk: a quarter of the largest
/// chunk, so a large object never strands more than a quarter of a chunk,
/// and objects larger than any chunk always fit.
///
/// ```
/// use homing_regions::{Region, LARGE_OBJECT};
///
/// let region = Region::new();
/// // A large slice gets a mapping of its own; the bump chunk stays for small
/// // objects. Both go when the region is dropped.
/// let big = region.alloc_slice_copy(&vec![0u8; LARGE_OBJECT]);
/// let small = region.alloc(7u32);
/// assert_eq!((big.len(), *small), (LARGE_OBJECT, 7));
/// ```
pub const LARGE_OBJECT: usize = MAX_CHUNK / 4;

/// One value (or slice) to drop when the region is dropped or reset.
struct DropEntry {
    /// The entry recorded before this one (dropped after it).
    next: *mut DropEntry,
    data: *mut u8,
    len: usize,
    drop_fn: unsafe fn(*mut u8, usize),
}

/// A value and its drop entry, allocated together by [`Region::alloc`].
#[repr(C)]
struct Tracked<T> {
    entry: DropEntry,
    value: T,
}

/// Drops `len` values of type `T` at `data`.
///
/// # Safety
///
/// `data` must point at `len` initialised `T`s that nobody uses afterwards.
unsafe fn drop_slice<T>(data: *mut u8, len: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { ptr::drop_in_place(ptr::slice_from_raw_parts_mut(data.cast::<T>(), len)) }
}

/// The "no chunk" bump pointer: address 1, never inside a chunk.
#[inline]
const fn no_chunk() -> *mut u8 {
    NonNull::<u8>::dangling().as_ptr()
}

/// Runs `f` on the chunk whose header is `hdr` without taking it over.
#[inline]
fn peek<R>(hdr: *mut Header, f: impl FnOnce(&mut Chunk) -> R) -> R {
    debug_assert!(!hdr.is_null());
    // SAFETY: callers pass headers of chunks this region owns; the handle is
    // given straight back with `into_raw`, so ownership does not move.
    let mut chunk = unsafe { Chunk::from_raw(NonNull::new_unchecked(hdr)) };
    let r = f(&mut chunk);
    let _ = chunk.into_raw();
    r
}

/// A region (arena) of memory: bump allocation, dropped or moved whole.
///
/// Allocation bumps a pointer through a chunk of memory; when the chunk is
/// full the region takes a bigger one (64 KiB doubling up to 1 MiB) from the
/// global chunk pool. Dropping the region drops the values that need it and
/// gives every chunk back to the pool, on whichever thread drops it, without
/// visiting the other values and without any message to another thread.
///
/// # What happens to `Drop`
///
/// - [`alloc`](Region::alloc), [`try_alloc`](Region::try_alloc) and
///   [`alloc_slice_fill_with`](Region::alloc_slice_fill_with) record values
///   that need `Drop` (`core::mem::needs_drop`) on the region's drop list;
///   they are dropped exactly once, in reverse order of allocation, when the
///   region is dropped or [`reset`](Region::reset). Values that do not need
///   `Drop` are never visited. These methods require `T: 'static`, so a
///   destructor can never see a dangling borrow, whichever order it runs in.
/// - [`alloc_no_drop`](Region::alloc_no_drop) takes any `T: Send`, including
///   values that borrow from the region (graph nodes), and never drops them;
///   their memory is still reclaimed with the region.
/// - Memory handed out through [`Allocator`](allocator_api2::alloc::Allocator)
///   (`Vec::new_in(&region)`) belongs to its collection, which drops its own
///   elements; freeing it rewinds the region only if it was the most recent
///   allocation, otherwise the bytes wait for the region.
/// - If a destructor panics, the remaining ones still run and the chunks are
///   still given back; a second panic aborts.
///
/// # `Send`, not `Sync`
///
/// Every value placed in a region is `Send` (all the methods require it), so
/// moving the region, and with it the values, to another thread is sound;
/// an `Rc` cannot be smuggled across threads inside a region. The region is
/// not `Sync`: allocation mutates it through `&self`.
///
/// ```
/// use homing_regions::Region;
///
/// let region = Region::new();
/// let x = region.alloc(41u64);
/// *x += 1;
/// let s = region.alloc(String::from("dropped with the region"));
/// assert_eq!((*x, s.as_str()), (42, "dropped with the region"));
/// std::thread::spawn(move || drop(region)).join().unwrap();
/// ```
pub struct Region {
    cur: Cell<*mut u8>,
    end: Cell<usize>,
    current: Cell<*mut Header>,
    retired: Cell<*mut Header>,
    retired_tail: Cell<*mut Header>,
    drops: Cell<*mut DropEntry>,
    drops_tail: Cell<*mut DropEntry>,
    /// What the next chunk is: a small chunk (`< SMALL_STEPS`) or a pooled
    /// class (`SMALL_STEPS + class`); see [`SMALL_STEPS`].
    next_step: Cell<usize>,
}

// SAFETY: the region owns its chunks (no thread does) and every value put in
// it is `Send`, so the region may be used and dropped on another thread.
unsafe impl Send for Region {}

impl Default for Region {
    fn default() -> Self {
        Self::new()
    }
}

impl Region {
    /// An empty region. Takes no memory until the first allocation.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// assert_eq!(region.capacity(), 0);
    /// ```
    pub const fn new() -> Self {
        Self {
            cur: Cell::new(no_chunk()),
            end: Cell::new(0),
            current: Cell::new(ptr::null_mut()),
            retired: Cell::new(ptr::null_mut()),
            retired_tail: Cell::new(ptr::null_mut()),
            drops: Cell::new(ptr::null_mut()),
            drops_tail: Cell::new(ptr::null_mut()),
            next_step: Cell::new(0),
        }
    }

    /// Bumps `size` bytes aligned to `align` out of the current chunk.
    #[inline(always)]
    fn bump(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let cur = self.cur.get();
        let addr = cur as usize;
        let start = addr.wrapping_add(align - 1) & !(align - 1);
        let new_end = start.checked_add(size)?;
        if new_end > self.end.get() {
            return None;
        }
        // Offsets from `cur` keep the chunk's provenance on the pointers.
        self.cur.set(cur.wrapping_add(new_end - addr));
        // SAFETY: `start >= addr >= 1` (the invariants), so not null.
        Some(unsafe { NonNull::new_unchecked(cur.wrapping_add(start - addr)) })
    }

    /// Allocates memory for `layout`, or reports that the OS refused.
    ///
    /// The memory is uninitialised and lives until the region is dropped or
    /// reset; nothing is recorded for `Drop`.
    ///
    /// ```
    /// use core::alloc::Layout;
    /// let region = homing_regions::Region::new();
    /// let p = region.try_alloc_layout(Layout::from_size_align(100, 64).unwrap()).unwrap();
    /// assert_eq!(p.as_ptr() as usize % 64, 0);
    /// ```
    #[inline]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        match self.bump(layout.size(), layout.align()) {
            Some(p) => Ok(p),
            None => self.alloc_slow(layout),
        }
    }

    /// Allocates memory for `layout`; aborts through
    /// `std::alloc::handle_alloc_error` if the OS refuses.
    ///
    /// ```
    /// use core::alloc::Layout;
    /// let region = homing_regions::Region::new();
    /// let p = region.alloc_layout(Layout::new::<[u64; 4]>());
    /// assert_eq!(p.as_ptr() as usize % 8, 0);
    /// ```
    #[inline]
    pub fn alloc_layout(&self, layout: Layout) -> NonNull<u8> {
        match self.try_alloc_layout(layout) {
            Ok(p) => p,
            Err(AllocError) => std::alloc::handle_alloc_error(layout),
        }
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let (size, align) = (layout.size(), layout.align());
        if size >= LARGE_OBJECT || align > MAX_CHUNK {
            let chunk = Chunk::map_huge(size, align).ok_or(AllocError)?;
            count_taken(chunk.size());
            let base = chunk.base();
            self.push_retired(chunk.into_raw().as_ptr());
            return Ok(base);
        }
        // A small chunk first, while the region is young and the object
        // fits one (small chunks are only 16-byte aligned).
        let mut step = self.next_step.get();
        while step < SMALL_STEPS {
            let bytes = SMALL_CHUNKS[step];
            if align <= SMALL_ALIGN && size <= bytes - HEADER_SIZE {
                let chunk = Chunk::alloc_small(bytes).ok_or(AllocError)?;
                self.install(chunk);
                return self.bump(size, align).ok_or(AllocError);
            }
            step += 1;
        }
        // The smallest pooled class at least the step's whose payload holds
        // the object at offset 0 (a pooled chunk is aligned to its size).
        // The largest class always does: `size < LARGE_OBJECT`,
        // `align <= MAX_CHUNK`.
        let mut class = step - SMALL_STEPS;
        while class_size(class) - HEADER_SIZE < size || class_size(class) < align {
            class += 1;
        }
        let chunk = cache::take(class).ok_or(AllocError)?;
        self.install(chunk);
        self.bump(size, align).ok_or(AllocError)
    }

    /// Makes `chunk` the current chunk (retiring the old one).
    fn install(&self, chunk: Chunk) {
        count_taken(chunk.size());
        let base = chunk.base().as_ptr();
        let payload = chunk.payload();
        self.next_step.set(step_after(&chunk));
        let old = self.current.replace(chunk.into_raw().as_ptr());
        if !old.is_null() {
            self.push_retired(old);
        }
        self.cur.set(base);
        self.end.set(base as usize + payload);
        debug_assert!(self.check());
    }

    /// Checks the invariants of the module doc that are O(1) to check (the
    /// chunk lists' ends, the bump pointer's bounds); for `debug_assert!`.
    fn check(&self) -> bool {
        let current = self.current.get();
        let bump_ok = if current.is_null() {
            self.cur.get() == no_chunk() && self.end.get() == 0
        } else {
            peek(current, |c| {
                let base = c.base().as_ptr() as usize;
                let cur = self.cur.get() as usize;
                base <= cur && cur <= self.end.get() && self.end.get() == base + c.payload()
            })
        };
        let retired_ok = self.retired.get().is_null() == self.retired_tail.get().is_null()
            && (self.retired_tail.get().is_null()
                || peek(self.retired_tail.get(), |c| c.owner_word().is_null()));
        let drops_ok = self.drops.get().is_null() == self.drops_tail.get().is_null();
        bump_ok && retired_ok && drops_ok && self.next_step.get() < SMALL_STEPS + CLASSES
    }

    fn push_retired(&self, hdr: *mut Header) {
        peek(hdr, |c| c.set_owner_word(self.retired.get().cast()));
        self.retired.set(hdr);
        if self.retired_tail.get().is_null() {
            self.retired_tail.set(hdr);
        }
    }

    /// Records a drop entry, allocated in this region, for `len` values at `data`.
    ///
    /// # Safety
    ///
    /// `data` must point at `len` initialised values in this region's memory
    /// that nothing else drops, `drop_fn` must drop them, and they must be
    /// `Send + 'static` (drop may run on another thread, after any borrow).
    pub(crate) unsafe fn track(
        &self,
        data: *mut u8,
        len: usize,
        drop_fn: unsafe fn(*mut u8, usize),
    ) {
        let entry = self
            .alloc_layout(Layout::new::<DropEntry>())
            .cast::<DropEntry>();
        // SAFETY: fresh memory for one `DropEntry`.
        unsafe { self.link_drop(entry.as_ptr(), data, len, drop_fn) };
    }

    /// Fills in `entry` and pushes it on the drop list.
    ///
    /// # Safety
    ///
    /// `entry` is writable memory in this region for a `DropEntry`; the rest
    /// as for [`Region::track`].
    #[inline]
    unsafe fn link_drop(
        &self,
        entry: *mut DropEntry,
        data: *mut u8,
        len: usize,
        drop_fn: unsafe fn(*mut u8, usize),
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            entry.write(DropEntry {
                next: self.drops.get(),
                data,
                len,
                drop_fn,
            })
        };
        self.drops.set(entry);
        if self.drops_tail.get().is_null() {
            self.drops_tail.set(entry);
        }
    }

    /// Moves `value` into the region and returns it; it is dropped (if it
    /// needs `Drop`) when the region is dropped or reset.
    ///
    /// Aborts if the OS refuses memory, like `Box::new`.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let v = region.alloc(vec![1, 2, 3]);
    /// v.push(4);
    /// assert_eq!(v.len(), 4);
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc<T: Send + 'static>(&self, value: T) -> &mut T {
        match self.try_alloc(value) {
            Ok(r) => r,
            Err(AllocError) => std::alloc::handle_alloc_error(Self::alloc_layout_of::<T>()),
        }
    }

    fn alloc_layout_of<T>() -> Layout {
        if needs_drop::<T>() {
            Layout::new::<Tracked<T>>()
        } else {
            Layout::new::<T>()
        }
    }

    /// Like [`alloc`](Region::alloc), but reports failure to get memory
    /// (dropping `value`) instead of aborting.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// assert_eq!(*region.try_alloc(7u8).unwrap(), 7);
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc<T: Send + 'static>(&self, value: T) -> Result<&mut T, AllocError> {
        if !needs_drop::<T>() {
            let p = self.try_alloc_layout(Layout::new::<T>())?.cast::<T>();
            // SAFETY: fresh memory for a `T`, exclusively ours for the
            // lifetime of `&self` (the region never hands it out again).
            return Ok(unsafe {
                p.as_ptr().write(value);
                &mut *p.as_ptr()
            });
        }
        let t = self
            .try_alloc_layout(Layout::new::<Tracked<T>>())?
            .cast::<Tracked<T>>();
        // SAFETY: (1) fresh memory for a `Tracked<T>`; (2) the value is
        // written before its entry is linked, so the entry always points at
        // an initialised value; (3) `T: Send + 'static` as `track` requires.
        unsafe {
            let value_ptr = ptr::addr_of_mut!((*t.as_ptr()).value);
            value_ptr.write(value);
            self.link_drop(
                ptr::addr_of_mut!((*t.as_ptr()).entry),
                value_ptr.cast(),
                1,
                drop_slice::<T>,
            );
            Ok(&mut *value_ptr)
        }
    }

    /// Moves `value` into the region and **never drops it**; its memory is
    /// reclaimed with the region. For values that borrow from the region
    /// (graph nodes linked by `&'r` references), which `alloc` does not take.
    ///
    /// ```
    /// use homing_regions::Region;
    /// struct Node<'r> { value: u32, next: Option<&'r Node<'r>> }
    ///
    /// let region = Region::new();
    /// let a = region.alloc_no_drop(Node { value: 1, next: None });
    /// let b = region.alloc_no_drop(Node { value: 2, next: Some(a) });
    /// assert_eq!(b.next.unwrap().value, 1);
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_no_drop<T: Send>(&self, value: T) -> &mut T {
        let p = self.alloc_layout(Layout::new::<T>()).cast::<T>();
        // SAFETY: fresh memory for a `T`, exclusively ours for `&self`'s life.
        unsafe {
            p.as_ptr().write(value);
            &mut *p.as_ptr()
        }
    }

    /// Copies `src` into the region.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let s = region.alloc_slice_copy(&[1u16, 2, 3]);
    /// s[0] = 9;
    /// assert_eq!(s, &[9, 2, 3]);
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_copy<T: Copy + Send>(&self, src: &[T]) -> &mut [T] {
        let layout = Layout::for_value(src);
        let p = self.alloc_layout(layout).cast::<T>();
        // SAFETY: fresh memory for `src.len()` `T`s, which cannot overlap
        // `src`; `T: Copy`, so a bitwise copy is a valid value.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
            &mut *ptr::slice_from_raw_parts_mut(p.as_ptr(), src.len())
        }
    }

    /// Copies `s` into the region.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let s = region.alloc_str("hello");
    /// s.make_ascii_uppercase();
    /// assert_eq!(s, "HELLO");
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        let bytes = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: a byte-for-byte copy of a `str` is valid UTF-8.
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }

    /// Allocates `len` values made by `f(0)`, `f(1)`, … in order; they are
    /// dropped (if they need it) with the region. If `f` panics, the values
    /// made so far are dropped at once.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let names = region.alloc_slice_fill_with(3, |i| format!("n{i}"));
    /// assert_eq!(names[2], "n2");
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_fill_with<T: Send + 'static>(
        &self,
        len: usize,
        mut f: impl FnMut(usize) -> T,
    ) -> &mut [T] {
        let layout = match Layout::array::<T>(len) {
            Ok(l) => l,
            Err(_) => capacity_overflow(),
        };
        let data = self.alloc_layout(layout).cast::<T>().as_ptr();

        /// Drops the initialised prefix if `f` panics.
        struct Partial<T> {
            data: *mut T,
            done: usize,
        }
        impl<T> Drop for Partial<T> {
            fn drop(&mut self) {
                // SAFETY: exactly `done` values were written at `data`.
                unsafe { drop_slice::<T>(self.data.cast(), self.done) }
            }
        }

        let mut partial = Partial { data, done: 0 };
        for i in 0..len {
            // SAFETY: `i < len`, inside the fresh array.
            unsafe { data.add(i).write(f(i)) };
            partial.done = i + 1;
        }
        core::mem::forget(partial);
        if needs_drop::<T>() && len > 0 {
            // SAFETY: all `len` values are initialised, owned by the region
            // from now on, and `T: Send + 'static`.
            unsafe { self.track(data.cast(), len, drop_slice::<T>) };
        }
        // SAFETY: `len` initialised values, exclusively ours for `&self`'s life.
        unsafe { &mut *ptr::slice_from_raw_parts_mut(data, len) }
    }

    /// Drops every value on the drop list (most recent first), then gives
    /// back every chunk but the largest, which the region keeps for reuse.
    ///
    /// ```
    /// let mut region = homing_regions::Region::new();
    /// for i in 0..1000u64 { region.alloc(i); }
    /// let before = region.capacity();
    /// region.reset();
    /// assert!(region.capacity() <= before && region.capacity() > 0);
    /// ```
    pub fn reset(&mut self) {
        self.run_drops();
        let mut keep: *mut Header = ptr::null_mut();
        let mut keep_size = 0;
        let current = self.current.replace(ptr::null_mut());
        let mut hdr = self.retired.replace(ptr::null_mut());
        self.retired_tail.set(ptr::null_mut());
        let mut visit = |h: *mut Header| {
            let (reusable, size) = peek(h, |c| (c.class().is_some() || c.is_small(), c.size()));
            if reusable && size > keep_size {
                if !keep.is_null() {
                    give_back(keep);
                }
                keep = h;
                keep_size = size;
            } else {
                give_back(h);
            }
        };
        if !current.is_null() {
            visit(current);
        }
        while !hdr.is_null() {
            let next = peek(hdr, |c| c.owner_word()).cast::<Header>();
            visit(hdr);
            hdr = next;
        }
        self.cur.set(no_chunk());
        self.end.set(0);
        self.next_step.set(0);
        if !keep.is_null() {
            let (base, payload, step) =
                peek(keep, |c| (c.base().as_ptr(), c.payload(), step_after(c)));
            self.current.set(keep);
            self.cur.set(base);
            self.end.set(base as usize + payload);
            self.next_step.set(step);
        }
        debug_assert!(self.check());
    }

    /// Moves `other`'s chunks and drop list into `self` in O(1). Values in
    /// both stay where they are; `other`'s are dropped (before `self`'s
    /// older ones) when `self` is dropped or reset.
    ///
    /// ```
    /// let a = homing_regions::Region::new();
    /// let b = homing_regions::Region::new();
    /// b.alloc(String::from("now owned by a"));
    /// a.merge(b);
    /// drop(a); // drops the string
    /// ```
    pub fn merge(&self, other: Region) {
        self.steal(&other);
    }

    /// Moves everything `other` holds into `self`, leaving `other` empty.
    pub(crate) fn steal(&self, other: &Region) {
        let (oh, ot) = (
            other.drops.replace(ptr::null_mut()),
            other.drops_tail.replace(ptr::null_mut()),
        );
        if !oh.is_null() {
            // SAFETY: `ot` is the last entry of `other`'s drop list, in memory
            // that now belongs to `self`; nobody else reads it.
            unsafe { (*ot).next = self.drops.get() };
            if self.drops_tail.get().is_null() {
                self.drops_tail.set(ot);
            }
            self.drops.set(oh);
        }
        let (rh, rt) = (
            other.retired.replace(ptr::null_mut()),
            other.retired_tail.replace(ptr::null_mut()),
        );
        if !rh.is_null() {
            peek(rt, |c| c.set_owner_word(self.retired.get().cast()));
            if self.retired_tail.get().is_null() {
                self.retired_tail.set(rt);
            }
            self.retired.set(rh);
        }
        let oc = other.current.replace(ptr::null_mut());
        let (ocur, oend, oclass) = (
            other.cur.replace(no_chunk()),
            other.end.replace(0),
            other.next_step.replace(0),
        );
        if !oc.is_null() {
            if self.current.get().is_null() {
                self.current.set(oc);
                self.cur.set(ocur);
                self.end.set(oend);
                self.next_step.set(oclass);
            } else {
                self.push_retired(oc);
            }
        }
        debug_assert!(self.check() && other.check());
    }

    /// Bytes of chunk memory the region holds (payloads, huge chunks
    /// included). O(number of chunks).
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// region.alloc(1u8);
    /// // A young region holds a small first chunk (1 KiB).
    /// assert!(region.capacity() > 0 && region.capacity() < 1024);
    /// ```
    pub fn capacity(&self) -> usize {
        let mut total = 0;
        let current = self.current.get();
        if !current.is_null() {
            total += peek(current, |c| c.payload());
        }
        let mut hdr = self.retired.get();
        while !hdr.is_null() {
            let (payload, next) = peek(hdr, |c| (c.payload(), c.owner_word()));
            total += payload;
            hdr = next.cast();
        }
        total
    }

    /// Runs the drop list, most recent first. If a destructor panics, the
    /// rest still run (from a guard) and the panic goes on.
    fn run_drops(&self) {
        /// Finishes the list if a destructor unwinds.
        struct Finish<'a>(&'a Region);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.run_drops();
            }
        }
        loop {
            let entry = self.drops.get();
            if entry.is_null() {
                break;
            }
            // SAFETY: entries point at live entries in our chunks (invariants).
            let DropEntry {
                next,
                data,
                len,
                drop_fn,
            } = unsafe { entry.read() };
            self.drops.set(next);
            let finish = Finish(self);
            // SAFETY: the entry's values are initialised and, now that the
            // entry is unlinked, dropped exactly once, here.
            unsafe { drop_fn(data, len) };
            core::mem::forget(finish);
        }
        self.drops_tail.set(ptr::null_mut());
    }

    /// Gives every chunk back and leaves the region empty.
    fn release_all(&self) {
        let current = self.current.replace(ptr::null_mut());
        if !current.is_null() {
            give_back(current);
        }
        let mut hdr = self.retired.replace(ptr::null_mut());
        self.retired_tail.set(ptr::null_mut());
        while !hdr.is_null() {
            let next = peek(hdr, |c| c.owner_word()).cast::<Header>();
            give_back(hdr);
            hdr = next;
        }
        self.cur.set(no_chunk());
        self.end.set(0);
        self.next_step.set(0);
    }

    /// If `[ptr, ptr + size)` is the most recent allocation, takes it back.
    #[inline]
    pub(crate) fn rewind(&self, ptr: NonNull<u8>, size: usize) {
        let cur = self.cur.get();
        if (ptr.as_ptr() as usize).wrapping_add(size) == cur as usize {
            self.cur.set(cur.wrapping_sub(size));
        }
    }

    /// Resizes the most recent allocation `[ptr, ptr + old_size)` to `new`
    /// where it is, if it is the most recent one, `ptr` suits `new`'s
    /// alignment and the chunk has room. Returns whether it did.
    #[inline]
    pub(crate) fn resize_in_place(&self, ptr: NonNull<u8>, old_size: usize, new: Layout) -> bool {
        let cur = self.cur.get();
        let p = ptr.as_ptr() as usize;
        if p.wrapping_add(old_size) != cur as usize || p & (new.align() - 1) != 0 {
            return false;
        }
        match p.checked_add(new.size()) {
            Some(new_end) if new_end <= self.end.get() => {
                self.cur
                    .set(cur.wrapping_add(new_end.wrapping_sub(cur as usize)));
                true
            }
            _ => false,
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        /// Gives the chunks back even if a destructor unwinds.
        struct Release<'a>(&'a Region);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.release_all();
            }
        }
        let _release = Release(self);
        self.run_drops();
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("capacity", &self.capacity())
            .field("has_drops", &!self.drops.get().is_null())
            .finish()
    }
}

/// Gives the chunk with header `hdr` back to this thread's cache / the pool.
fn give_back(hdr: *mut Header) {
    // SAFETY: callers pass a chunk they have just unlinked from their region,
    // so its ownership is theirs to hand on.
    let chunk = unsafe { Chunk::from_raw(NonNull::new_unchecked(hdr)) };
    // Relaxed: a statistic.
    LIVE_CHUNK_BYTES.fetch_sub(chunk.size(), plain::Ordering::Relaxed);
    cache::give(chunk);
}

#[cold]
fn capacity_overflow() -> ! {
    panic!("homing-regions: slice length overflows the address space")
}
