//! A lock-free Treiber stack of chunks of one class, with a tagged head.
//!
//! # The ABA problem and the tag
//!
//! A plain Treiber pop reads `head = A`, reads `next = A.pool_next = B`, and
//! swings `head` from `A` to `B` with a CAS. If, between the read and the
//! CAS, other threads pop `A`, pop `B` and push `A` back, the CAS still sees
//! `A` and succeeds, installing `B`, which is no longer in the stack: two
//! owners of `B`. To catch this the head carries a **tag**, a counter bumped
//! by every successful push and pop, so the CAS compares `(A, tag)`, and the
//! interleaving above changes the tag and fails the CAS.
//!
//! Every pooled chunk is aligned to at least [`MIN_CHUNK`], so the low
//! `log2(MIN_CHUNK)` = 16 bits of a chunk's base are zero; the tag lives
//! there. `head = base + tag`, made with `wrapping_add` on the base pointer so
//! the pointer keeps its provenance (Miri and strict provenance are happy,
//! and no 128-bit CAS is needed). The tag wraps after 65 536 operations, so
//! the CAS can be fooled only if one pop stalls between its load and its CAS
//! while exactly a multiple of 65 536 operations bring the same chunk back on
//! top: accepted, as in most tagged-pointer stacks.
//!
//! # Stale reads
//!
//! A popper that loses the race may read `pool_next` of a chunk that another
//! thread has popped and is now using. That read is harmless: `pool_next` is
//! an atomic that nobody writes non-atomically, the chunk's memory is never
//! unmapped while the stack can be popped (the pool purges, never unmaps),
//! and the stale value is thrown away when the CAS fails.
//!
//! # Invariant
//!
//! Every chunk reachable from `head` through `pool_next` is of this stack's
//! size, owned by the stack, and appears once.

use core::ptr::{self, NonNull};

use crate::chunk::{header_of, Chunk, Header, MIN_CHUNK};
use crate::sync::{AtomicPtr, Ordering};

/// Bits of a chunk's base that are always zero and hold the tag.
const TAG_MASK: usize = MIN_CHUNK - 1;

/// The untagged base inside a head value.
#[inline]
fn base_of(head: *mut u8) -> *mut u8 {
    head.wrapping_sub(head as usize & TAG_MASK)
}

/// `base` tagged with the successor of `head`'s tag.
#[inline]
fn tagged(base: *mut u8, head: *mut u8) -> *mut u8 {
    let tag = (head as usize).wrapping_add(1) & TAG_MASK;
    base.wrapping_add(tag)
}

/// A Treiber stack of chunks of one size.
pub(crate) struct TaggedStack {
    /// Base of the top chunk plus the tag (null plus a tag when empty).
    head: AtomicPtr<u8>,
    /// Mapping size of every chunk in this stack, to find a base's header.
    chunk_size: usize,
}

impl TaggedStack {
    /// An empty stack of chunks of `chunk_size` bytes.
    #[cfg(not(loom))]
    pub(crate) const fn new(chunk_size: usize) -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
            chunk_size,
        }
    }

    /// An empty stack of chunks of `chunk_size` bytes.
    #[cfg(loom)]
    pub(crate) fn new(chunk_size: usize) -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
            chunk_size,
        }
    }

    /// Pushes `chunk` (of this stack's size).
    pub(crate) fn push(&self, chunk: Chunk) {
        debug_assert_eq!(chunk.size(), self.chunk_size);
        let base = chunk.base().as_ptr();
        // Relaxed: the value only seeds the CAS loop, which re-reads on failure.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            chunk.set_pool_next_relaxed(base_of(head));
            // Release on success: publishes `pool_next` and everything the
            // chunk's last holder wrote into it, to the popper that acquires
            // this head (or a later head in the release sequence of RMWs).
            // Relaxed on failure: nothing is read through the value but the
            // next attempt's tag.
            match self.head.compare_exchange_weak(
                head,
                tagged(base, head),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        // The stack owns it now; the handle is forgotten, not dropped.
        let _ = chunk.into_raw();
    }

    /// Pops a chunk, or `None` if the stack is empty.
    pub(crate) fn pop(&self) -> Option<Chunk> {
        // Acquire: pairs with the Release CAS of the push that made this head,
        // so the top chunk's `pool_next` (and its contents) are visible.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let base = base_of(head);
            if base.is_null() {
                return None;
            }
            let hdr: *mut Header = header_of(base, self.chunk_size);
            // SAFETY: `base` was on top of the stack when we read `head`, so
            // its header was initialised, and pooled chunks are never unmapped
            // while the stack can be popped; we read only the atomic
            // `pool_next` (see the module doc on stale reads).
            // Relaxed: we synchronised with the pusher through `head`; if the
            // chunk moved since, the value is stale and the CAS below fails.
            let next = unsafe { (*hdr).pool_next.load(Ordering::Relaxed) };
            // Acquire on success and failure: on success we take ownership of
            // the chunk as its pusher left it; on failure we go round with a
            // new top chunk whose `pool_next` we must see. No Release needed:
            // a pop publishes nothing, and the RMW keeps earlier pushes'
            // release sequences intact for later poppers.
            match self.head.compare_exchange_weak(
                head,
                tagged(next, head),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: the CAS removed the chunk from the stack, so we
                    // are its only owner; `hdr` is its non-null header.
                    return Some(unsafe { Chunk::from_raw(NonNull::new_unchecked(hdr)) });
                }
                Err(now) => head = now,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::chunk::class_size;

    #[test]
    fn lifo_and_tag_moves_on_every_operation() {
        let stack = TaggedStack::new(class_size(0));
        assert!(stack.pop().is_none());
        let a = Chunk::map_class(0).unwrap();
        let b = Chunk::map_class(0).unwrap();
        let (ba, bb) = (a.base(), b.base());
        let tag = |s: &TaggedStack| s.head.load(Ordering::Relaxed) as usize & TAG_MASK;
        let t0 = tag(&stack);
        stack.push(a);
        stack.push(b);
        assert_eq!(tag(&stack), (t0 + 2) & TAG_MASK);
        let b = stack.pop().unwrap();
        let a = stack.pop().unwrap();
        assert_eq!((a.base(), b.base()), (ba, bb));
        assert!(stack.pop().is_none());
        // The empty head still carries the tag.
        assert_eq!(tag(&stack), (t0 + 4) & TAG_MASK);
        // SAFETY: (test) the chunks are ours and the stack is not shared.
        unsafe {
            a.unmap();
            b.unmap();
        }
    }

    #[test]
    fn tag_wraps_without_touching_the_base() {
        let base = Chunk::map_class(0).unwrap();
        let p = base.base().as_ptr();
        let head = p.wrapping_add(TAG_MASK);
        let next = tagged(p, head);
        assert_eq!(next as usize & TAG_MASK, 0);
        assert_eq!(base_of(next), p);
        assert_eq!(
            base_of(tagged(core::ptr::null_mut(), head)),
            core::ptr::null_mut()
        );
        // SAFETY: (test) ours, never pooled.
        unsafe { base.unmap() };
    }
}
