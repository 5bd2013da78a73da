//! Chunks: the runs of memory a region bumps through.
//!
//! A chunk is one mapping from the OS layer (`homing::os`). Its **payload**
//! starts at the mapping's base; its **header** sits in the last bytes of the
//! mapping:
//!
//! ```text
//! base                                        base + size - HEADER_SIZE
//! |---------------- payload ------------------|---- Header ----|
//! ```
//!
//! Putting the header at the end leaves the base free, so a pooled chunk of
//! `size` bytes is aligned to `size` and can hold an object aligned to the
//! whole chunk at offset 0.
//!
//! There are [`CLASSES`] pooled sizes, `MIN_CHUNK << class`, each chunk
//! aligned to its own size; **huge** chunks, one mapping per large object,
//! of any page-multiple size, never pooled; and **small** chunks, the first
//! few chunks of a region ([`SMALL_CHUNKS`]: 1, 4 and 16 KiB), which are
//! blocks of the global allocator (homing's thread heaps when homing is the
//! global allocator) rather than mappings, so that a region that holds a
//! few objects costs about what it holds. Small chunks are never pooled
//! either: the global allocator already caches blocks of those sizes.
//!
//! # Who touches what
//!
//! - `pool_next` is the only field read by a thread that does not hold the
//!   chunk: a popper of the pool's Treiber stack that lost a race may read it
//!   after someone else took the chunk. So it is an atomic, and nothing ever
//!   writes it non-atomically; and since pooled chunks are never unmapped
//!   while the pool can still be popped, the read never faults.
//! - `owner_word` belongs to whoever holds the chunk (a region keeps its chunk
//!   list there); ownership passes through the pool's acquire/release pairs.
//! - `base`, `size`, `align` and `class` are written once, before the chunk
//!   is first published, and only read afterwards.
//!
//! # Invariants
//!
//! - `base % align == 0`, `size % OS_PAGE == 0`, header at
//!   `base + size - HEADER_SIZE`, `HEADER_SIZE < OS_PAGE` (so purging all but
//!   the last OS page of a chunk never touches its header).
//! - Pooled: `size == class_size(class)`, `align == size`. Huge: `class == HUGE`.
//!   Small: `class == SMALL`, `size` one of [`SMALL_CHUNKS`], `align ==
//!   SMALL_ALIGN`, allocated with `std::alloc::alloc`.

use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};

use homing::os::{self, OS_PAGE};

use crate::sync::{AtomicPtr, Ordering, UnsafeCell};

/// The smallest chunk, and the first one a region takes: 64 KiB, sixteen OS
/// pages, big enough that a small region costs one pool operation, small
/// enough that a thousand idle regions hold 64 MiB. Also the minimum
/// alignment of every pooled chunk, which frees 16 low bits of a chunk's
/// address for the pool's ABA tag.
pub const MIN_CHUNK: usize = 64 * 1024;

/// Number of pooled chunk sizes: 64, 128, 256, 512 KiB and 1 MiB. A region
/// doubles its chunk size at each new chunk until the largest, so a region of
/// `n` bytes holds O(log n + n / MAX_CHUNK) chunks.
pub const CLASSES: usize = 5;

/// The largest pooled chunk (1 MiB): large enough that taking a chunk is rare
/// next to bumping (a million 24-byte nodes take 27 chunks), small enough
/// that the pool's per-chunk purge stays a cheap `madvise`.
pub const MAX_CHUNK: usize = MIN_CHUNK << (CLASSES - 1);

/// The `class` of a huge chunk: one mapping for one large object.
pub(crate) const HUGE: usize = usize::MAX;

/// The `class` of a small chunk: a block of the global allocator.
pub(crate) const SMALL: usize = usize::MAX - 1;

/// Sizes of a region's first chunks, header included, before it moves on to
/// pooled chunks: 1 KiB (a per-request region with a few small objects
/// costs one 1 KiB block), then growing fourfold so that a region that
/// keeps growing reaches pooled chunks after three small ones.
pub const SMALL_CHUNKS: [usize; 3] = [1024, 4 * 1024, 16 * 1024];

/// Alignment of a small chunk's base. Objects aligned more than this skip
/// the small chunks and go to a pooled one.
pub const SMALL_ALIGN: usize = 16;

/// Bytes of a pooled chunk of class `class`.
#[inline]
pub const fn class_size(class: usize) -> usize {
    MIN_CHUNK << class
}

/// The chunk header, in the last [`HEADER_SIZE`] bytes of the mapping.
#[repr(C)]
pub(crate) struct Header {
    /// Link to the next chunk's **base** in a pool stack (global or a
    /// thread's cache). Atomic: see the module doc.
    pub(crate) pool_next: AtomicPtr<u8>,
    /// The holder's word (a region links its chunks through it).
    owner_word: UnsafeCell<*mut u8>,
    /// Base of the mapping (start of the payload).
    base: *mut u8,
    /// Size of the mapping.
    size: usize,
    /// Alignment the mapping was made with (needed to unmap it).
    align: usize,
    /// Pool class, or [`HUGE`].
    class: usize,
}

/// Bytes the header takes at the end of every chunk.
pub(crate) const HEADER_SIZE: usize = size_of::<Header>();

const _: () = assert!(HEADER_SIZE < OS_PAGE && HEADER_SIZE.is_multiple_of(align_of::<Header>()));
const _: () = assert!(MIN_CHUNK.is_multiple_of(OS_PAGE) && MIN_CHUNK.is_power_of_two());

/// The header of the chunk based at `base` whose mapping is `size` bytes.
///
/// The result is only an address computation (no access); it is valid to
/// dereference while the mapping is.
#[inline]
pub(crate) fn header_of(base: *mut u8, size: usize) -> *mut Header {
    base.wrapping_add(size - HEADER_SIZE).cast()
}

/// An owned chunk: the right to use its payload and to hand it on.
///
/// A `Chunk` has no destructor; whoever holds one must give it to a pool
/// ([`crate::pool::ChunkPool::give`]) or unmap it, or the memory leaks.
#[derive(Debug)]
pub struct Chunk {
    hdr: NonNull<Header>,
}

// SAFETY: a `Chunk` is exclusive ownership of a mapping; moving that right to
// another thread is fine (nothing in it is tied to a thread).
unsafe impl Send for Chunk {}

impl Chunk {
    /// Maps a fresh pooled chunk of class `class` from the OS layer.
    pub(crate) fn map_class(class: usize) -> Option<Chunk> {
        debug_assert!(class < CLASSES);
        let size = class_size(class);
        Self::map_with(size, size, class)
    }

    /// Maps a huge chunk whose payload holds `size` bytes at alignment
    /// `align` (at offset 0). `None` on overflow or if the OS refuses.
    pub(crate) fn map_huge(size: usize, align: usize) -> Option<Chunk> {
        let bytes = os::align_up(size.checked_add(HEADER_SIZE)?, OS_PAGE)?;
        Self::map_with(bytes, align.max(OS_PAGE), HUGE)
    }

    /// Allocates a small chunk of `size` bytes (one of [`SMALL_CHUNKS`])
    /// from the global allocator.
    pub(crate) fn alloc_small(size: usize) -> Option<Chunk> {
        debug_assert!(SMALL_CHUNKS.contains(&size));
        let layout = core::alloc::Layout::from_size_align(size, SMALL_ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { std::alloc::alloc(layout) })?.as_ptr();
        // SAFETY: `base` is a fresh block of `size` bytes aligned to 16.
        Some(unsafe { Self::init(base, size, SMALL_ALIGN, SMALL) })
    }

    fn map_with(size: usize, align: usize, class: usize) -> Option<Chunk> {
        let base = os::map(size, align)?.as_ptr();
        // SAFETY: a fresh mapping of `size` bytes aligned to `align`.
        Some(unsafe { Self::init(base, size, align, class) })
    }

    /// Writes the header of a chunk over fresh memory `[base, base + size)`.
    ///
    /// # Safety
    ///
    /// The memory is fresh, exclusively ours, aligned to `align` (at least
    /// the header's alignment), and `size` is a multiple of the header's
    /// alignment larger than `HEADER_SIZE`.
    unsafe fn init(base: *mut u8, size: usize, align: usize, class: usize) -> Chunk {
        let hdr = header_of(base, size);
        // SAFETY: `hdr` lies inside the fresh memory (HEADER_SIZE < size),
        // is aligned (base and size are multiples of the header's alignment,
        // and so is HEADER_SIZE) and nobody else knows the memory yet.
        unsafe {
            hdr.write(Header {
                pool_next: AtomicPtr::new(ptr::null_mut()),
                owner_word: UnsafeCell::new(ptr::null_mut()),
                base,
                size,
                align,
                class,
            })
        };
        // SAFETY: `hdr` is inside the memory, so not null.
        let hdr = unsafe { NonNull::new_unchecked(hdr) };
        Chunk { hdr }
    }

    /// Gives the chunk's mapping back to the OS (a small chunk's block back
    /// to the global allocator).
    ///
    /// # Safety
    ///
    /// Nobody may use the chunk's memory afterwards; if it was ever in a pool,
    /// no thread may still be popping that pool (a losing popper reads
    /// `pool_next`).
    pub(crate) unsafe fn unmap(self) {
        let (base, size, align) = (self.base(), self.size(), self.hdr().align);
        let small = self.hdr().class == SMALL;
        // SAFETY: (1) the header is initialised and owned by us; it is dropped
        // so that loom's atomics inside it are retired. (2) base/size/align
        // are exactly what `alloc_small` allocated or `map_with` mapped; the
        // caller promises no later use.
        unsafe {
            ptr::drop_in_place(self.hdr.as_ptr());
            if small {
                let layout = core::alloc::Layout::from_size_align_unchecked(size, align);
                std::alloc::dealloc(base.as_ptr(), layout);
            } else {
                os::unmap(base, size, align);
            }
        }
    }

    /// Rebuilds a chunk from the header pointer [`Chunk::into_raw`] gave.
    ///
    /// # Safety
    ///
    /// `hdr` must come from `into_raw` and the chunk must not be owned by
    /// anyone else (ownership is handed back to the caller).
    #[inline]
    pub(crate) unsafe fn from_raw(hdr: NonNull<Header>) -> Chunk {
        Chunk { hdr }
    }

    /// Gives up the handle, keeping ownership in the returned pointer.
    #[inline]
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        self.hdr
    }

    #[inline]
    fn hdr(&self) -> &Header {
        // SAFETY: the header was initialised by `map_with` and lives as long
        // as the mapping, which we own.
        unsafe { self.hdr.as_ref() }
    }

    /// Start of the payload (and of the mapping).
    #[inline]
    pub fn base(&self) -> NonNull<u8> {
        // SAFETY: the base of a mapping is not null.
        unsafe { NonNull::new_unchecked(self.hdr().base) }
    }

    /// Bytes of the whole mapping, header included.
    #[inline]
    pub fn size(&self) -> usize {
        self.hdr().size
    }

    /// Bytes usable from [`Chunk::base`]: the mapping less the header.
    #[inline]
    pub fn payload(&self) -> usize {
        self.size() - HEADER_SIZE
    }

    /// The pool class of the chunk, or `None` for a huge or small chunk.
    #[inline]
    pub fn class(&self) -> Option<usize> {
        let class = self.hdr().class;
        (class < CLASSES).then_some(class)
    }

    /// `true` for a small chunk (a global-allocator block).
    #[inline]
    pub fn is_small(&self) -> bool {
        self.hdr().class == SMALL
    }

    /// The holder's word stored in the header.
    #[inline]
    pub fn owner_word(&self) -> *mut u8 {
        // SAFETY: we own the chunk, so no one writes the word concurrently.
        self.hdr().owner_word.with(|p| unsafe { *p })
    }

    /// Sets the holder's word stored in the header (a region keeps its chunk
    /// list there; the pool never reads it).
    #[inline]
    pub fn set_owner_word(&mut self, word: *mut u8) {
        // SAFETY: we own the chunk, so no one reads or writes the word
        // concurrently; ownership came with the pool's acquire.
        self.hdr().owner_word.with_mut(|p| unsafe { *p = word });
    }

    /// Gives all but the last OS page (which holds the header) of a pooled
    /// chunk back to the OS: the chunk keeps its address range and costs one
    /// OS page of RSS.
    pub(crate) fn purge_body(&mut self) {
        let body = self.size() - OS_PAGE;
        // SAFETY: `[base, base + size - OS_PAGE)` is a page-aligned part of
        // our live mapping, holding nothing anyone needs (the chunk is being
        // pooled), and it excludes the header's page.
        unsafe { os::purge(self.base(), body) };
    }

    /// Relaxed read of the pool link; see [`Header::pool_next`].
    #[inline]
    #[cfg_attr(loom, allow(dead_code))] // only the thread caches use it
    pub(crate) fn pool_next_relaxed(&self) -> *mut u8 {
        // Relaxed: only the thread that holds the chunk reads it this way (a
        // thread cache walking its own list).
        self.hdr().pool_next.load(Ordering::Relaxed)
    }

    /// Relaxed write of the pool link.
    #[inline]
    pub(crate) fn set_pool_next_relaxed(&self, next: *mut u8) {
        // Relaxed: the store is published by the Release that hands the chunk
        // over (the stack's CAS), or stays on this thread (a thread cache).
        self.hdr().pool_next.store(next, Ordering::Relaxed);
    }
}
