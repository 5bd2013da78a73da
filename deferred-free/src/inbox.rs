//! The inbox: an intrusive multi-producer, single-consumer LIFO stack of
//! batches (a heap's inbox, a thread's deferred-release inbox).
//!
//! # Glossary
//!
//! - **Node**: the first word of a freed memory block, reused as the link.
//!   The queue never allocates: the memory it carries is its own storage.
//! - **Chain**: nodes linked through their first word, ending in null.
//! - **Batch**: a chain a producer built privately (see [`Batch`]) and hands
//!   over whole with [`Inbox::push_batch`].
//! - **Owner** (the single consumer): the thread that drains the queue with
//!   [`Inbox::take`]. **Producers**: any thread, including the owner.
//!
//! # Who writes what
//!
//! | field | written by | read by |
//! |---|---|---|
//! | `Inbox::head` (atomic) | producers (CAS), owner (swap) | everyone |
//! | `Node::next` of an unpublished node | the producer holding it | that producer |
//! | `Node::next` of a published node | nobody (frozen) | the owner after `take` |
//!
//! # Invariants
//!
//! - `head` is null or the newest node of a fully linked, null-terminated
//!   chain: a producer links its batch's last node to the old head *before*
//!   the compare-exchange that publishes the batch, so no thread can ever see
//!   a partially linked batch.
//! - Every node pushed is returned by exactly one `take`, once.
//! - Order: `take` returns nodes newest first. A batch `first → … → last`
//!   counts as if its nodes were pushed one by one from `last` to `first`,
//!   which is exactly the order a thread builds a batch in when it prepends
//!   each freed block ([`Batch::push_front`]). So the reverse of what `take`
//!   returns is the order of pushes, per producer.
//!
//! # Cost
//!
//! `push` and `push_batch`: one successful compare-exchange (a failed one
//! means another producer's push went through, so the queue as a whole always
//! makes progress; no producer ever waits for another to finish). `take`: one
//! exchange, after which the chain is the owner's and is walked with plain
//! loads. `is_empty`: one relaxed load.

use core::fmt;
use core::ptr::{self, NonNull};

use crate::sync::{AtomicPtr, Ordering, UnsafeCell};

/// The link word at the start of a block that travels through an [`Inbox`].
///
/// A block of at least `size_of::<Node>()` bytes (one pointer, outside loom)
/// and pointer alignment can be reinterpreted as a `Node` while it is queued.
///
/// ```
/// use core::ptr::NonNull;
/// use homing_deferred::Node;
///
/// // A freed block's first word becomes its node.
/// let mut block = [0usize; 4];
/// // SAFETY: `block` is writable, pointer-aligned and ours alone.
/// let node = unsafe { Node::init(NonNull::from(&mut block).cast()) };
/// // SAFETY: `node` is ours and in no queue.
/// assert!(unsafe { Node::next(node) }.is_none());
/// ```
#[repr(C)]
pub struct Node {
    next: UnsafeCell<*mut Node>,
}

impl Node {
    /// A node linked to nothing, for tests and for memory the caller
    /// initialises itself (see [`Node::init`]).
    ///
    /// ```
    /// use homing_deferred::Node;
    ///
    /// let mut node = Node::new();
    /// // SAFETY: `node` is ours and in no queue.
    /// assert!(unsafe { Node::next((&mut node).into()) }.is_none());
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            next: UnsafeCell::new(ptr::null_mut()),
        }
    }

    /// A node linked to nothing.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            next: UnsafeCell::new(ptr::null_mut()),
        }
    }

    /// Writes a fresh, unlinked node at `at` (whatever the memory held) and
    /// returns it.
    ///
    /// ```
    /// use core::ptr::NonNull;
    /// use homing_deferred::{Node, Inbox};
    ///
    /// let queue = Inbox::new();
    /// let mut block = [usize::MAX; 2]; // a "freed block" with old contents
    /// // SAFETY: writable, pointer-aligned, ours until the owner takes it.
    /// unsafe {
    ///     let node = Node::init(NonNull::from(&mut block).cast());
    ///     queue.push(node);
    /// }
    /// assert_eq!(queue.take().count(), 1);
    /// ```
    ///
    /// # Safety
    ///
    /// `at` must be valid for writes of a `Node` and suitably aligned, and no
    /// other thread may access that memory until the node is published.
    #[inline(always)]
    pub unsafe fn init(at: NonNull<u8>) -> NonNull<Node> {
        let node = at.cast::<Node>();
        // SAFETY: the caller gives us exclusive, aligned, writable memory.
        unsafe { node.as_ptr().write(Node::new()) };
        node
    }

    /// The node after `node` in its chain, or `None` at the end.
    ///
    /// ```
    /// use homing_deferred::Node;
    ///
    /// let (mut a, mut b) = (Node::new(), Node::new());
    /// let (a, b) = ((&mut a).into(), (&mut b).into());
    /// // SAFETY: both nodes are ours and in no queue.
    /// unsafe {
    ///     Node::set_next(a, Some(b));
    ///     assert_eq!(Node::next(a), Some(b));
    ///     assert_eq!(Node::next(b), None);
    /// }
    /// ```
    ///
    /// # Safety
    ///
    /// `node` must be a live node that the calling thread owns: unpublished,
    /// or returned to it by `take` (a [`Chain`]).
    #[inline(always)]
    pub unsafe fn next(node: NonNull<Node>) -> Option<NonNull<Node>> {
        // SAFETY: the caller owns `node`, so nobody writes its link now; the
        // write that set it happened before (same thread, or published by the
        // Release/Acquire pair between `push_batch` and `take`).
        let next = unsafe { node.as_ref() }.next.with(|p| unsafe { *p });
        NonNull::new(next)
    }

    /// Links `node` to `next` (or to nothing).
    ///
    /// ```
    /// use homing_deferred::{Node, Inbox};
    ///
    /// let queue = Inbox::new();
    /// let (mut a, mut b) = (Node::new(), Node::new());
    /// let (a, b) = ((&mut a).into(), (&mut b).into());
    /// // SAFETY: the nodes are ours, linked a → b, and outlive their time queued.
    /// unsafe {
    ///     Node::set_next(a, Some(b));
    ///     queue.push_batch(a, b);
    /// }
    /// assert_eq!(queue.take().collect::<Vec<_>>(), [a, b]);
    /// ```
    ///
    /// # Safety
    ///
    /// `node` must be a live node that the calling thread owns (not published
    /// in any queue).
    #[inline(always)]
    pub unsafe fn set_next(node: NonNull<Node>, next: Option<NonNull<Node>>) {
        let next = next.map_or(ptr::null_mut(), NonNull::as_ptr);
        // SAFETY: the caller owns `node`; no other thread reads its link until
        // it is published with a Release operation, which orders this write.
        unsafe { node.as_ref() }
            .next
            .with_mut(|p| unsafe { *p = next });
    }
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Node")
    }
}

/// A lock-free intrusive MPSC queue of [`Node`]s: any thread pushes, one
/// thread (the owner) takes everything at once.
///
/// ```
/// use core::ptr::NonNull;
/// use homing_deferred::{Node, Inbox};
///
/// let queue = Inbox::new();
/// let mut a = Node::new();
/// let mut b = Node::new();
/// // SAFETY: the nodes outlive their time in the queue and are pushed once.
/// unsafe {
///     queue.push(NonNull::from(&mut a));
///     queue.push(NonNull::from(&mut b));
/// }
/// let taken: Vec<_> = queue.take().collect();
/// assert_eq!(taken, [NonNull::from(&mut b), NonNull::from(&mut a)]); // newest first
/// assert!(queue.is_empty());
/// ```
pub struct Inbox {
    /// Newest published node, or null. Producers CAS it, the owner swaps it.
    head: AtomicPtr<Node>,
}

// SAFETY: the queue only holds raw pointers to nodes; every access to a node's
// link is ordered by the Release/Acquire pair on `head` (see `push_batch`
// and `take`), so sharing the queue between threads is sound.
unsafe impl Sync for Inbox {}
// SAFETY: as above; the queue owns no thread-bound state.
unsafe impl Send for Inbox {}

impl Inbox {
    /// An empty queue; `const`, so it can live in a `static` or in memory
    /// that is set up without running code.
    ///
    /// ```
    /// use homing_deferred::Inbox;
    ///
    /// static INBOX: Inbox = Inbox::new();
    /// assert!(INBOX.is_empty());
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// An empty queue.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Publishes one node.
    ///
    /// ```
    /// use homing_deferred::{Node, Inbox};
    ///
    /// let queue = Inbox::new();
    /// let mut node = Node::new();
    /// let node = (&mut node).into();
    /// // SAFETY: `node` outlives its time in the queue and is pushed once.
    /// unsafe { queue.push(node) };
    /// assert_eq!(queue.take().next(), Some(node));
    /// ```
    ///
    /// # Safety
    ///
    /// `node` must point to memory valid for a `Node` that stays valid until
    /// the owner takes it, and it must not be in any queue or chain already.
    #[inline]
    pub unsafe fn push(&self, node: NonNull<Node>) {
        // SAFETY: a single node is a chain from `node` to `node`; the caller's
        // obligations are those of `push_batch`.
        unsafe { self.push_batch(node, node) }
    }

    /// Publishes the chain `first → … → last` whole, with one successful
    /// compare-exchange. The chain's order is kept: `take` returns `first`
    /// before `last`.
    ///
    /// ```
    /// use homing_deferred::{Node, Inbox};
    ///
    /// let queue = Inbox::new();
    /// let mut nodes = [Node::new(), Node::new(), Node::new()];
    /// let [a, b, c] = nodes.each_mut().map(Into::into);
    /// // SAFETY: a → b → c is a chain of our own nodes, each in no other queue,
    /// // all alive until taken.
    /// unsafe {
    ///     Node::set_next(a, Some(b));
    ///     Node::set_next(b, Some(c));
    ///     queue.push_batch(a, c);
    /// }
    /// assert_eq!(queue.take().collect::<Vec<_>>(), [a, b, c]);
    /// ```
    ///
    /// # Safety
    ///
    /// `first` must reach `last` by following links, every node of the chain
    /// must stay valid until the owner takes it, and none may be in another
    /// queue or chain. `last`'s own link is overwritten.
    #[inline]
    pub unsafe fn push_batch(&self, first: NonNull<Node>, last: NonNull<Node>) {
        // Relaxed is enough for this first read: the value is only a guess
        // that the compare-exchange below validates, and we never read
        // through it.
        let mut old = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the chain is still ours (not yet published), so writing
            // `last`'s link cannot race with anybody.
            unsafe { Node::set_next(last, NonNull::new(old)) };
            // Release on success publishes every write to the batch (its links,
            // and whatever the caller wrote into the blocks) to the owner,
            // whose `take` swaps with Acquire. Relaxed on failure: we read
            // nothing through the value we get back, we only retry with it.
            match self.head.compare_exchange_weak(
                old,
                first.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(current) => old = current,
            }
        }
    }

    /// Takes every node published so far, newest first. The queue is empty
    /// afterwards (until the next push); walking the returned chain costs no
    /// atomic operation.
    ///
    /// Only the owner may call it: the single-consumer side is a protocol the
    /// caller keeps (several takers would each get disjoint chains, which is
    /// still sound, but the owner-only rule is what the heap relies on).
    ///
    /// ```
    /// use core::ptr::NonNull;
    /// use std::sync::Arc;
    /// use homing_deferred::{Node, Inbox};
    ///
    /// let queue = Arc::new(Inbox::new());
    /// let producers: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let queue = Arc::clone(&queue);
    ///         std::thread::spawn(move || {
    ///             // A boxed node stands for a block freed on this thread.
    ///             let node = Box::into_raw(Box::new(Node::new()));
    ///             // SAFETY: non-null; the node lives until the owner frees it.
    ///             unsafe { queue.push(NonNull::new_unchecked(node)) };
    ///         })
    ///     })
    ///     .collect();
    /// for p in producers {
    ///     p.join().unwrap();
    /// }
    /// let mut taken = 0;
    /// for node in queue.take() {
    ///     // The owner takes all four at once and frees them.
    ///     // SAFETY: each node came from `Box::into_raw` and is in no queue now.
    ///     drop(unsafe { Box::from_raw(node.as_ptr()) });
    ///     taken += 1;
    /// }
    /// assert_eq!(taken, 4);
    /// ```
    #[inline]
    pub fn take(&self) -> Chain {
        // Acquire pairs with the producers' Release compare-exchanges: every
        // batch reachable from the head we get was fully linked (and its
        // contents written) before it was published. The exchange reads the
        // latest head in the modification order, and each publisher's Release
        // heads a release sequence that our RMW continues, so older batches
        // reached through the links are covered too.
        let head = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        Chain {
            head: NonNull::new(head),
        }
    }

    /// A cheap hint for the owner's slow path: `true` if nothing was pushed
    /// that the owner has not taken. It may be stale by the time it returns;
    /// a `false` is confirmed by `take`.
    ///
    /// ```
    /// use homing_deferred::{Node, Inbox};
    ///
    /// let queue = Inbox::new();
    /// assert!(queue.is_empty());
    /// let mut node = Node::new();
    /// // SAFETY: the node outlives its time in the queue.
    /// unsafe { queue.push((&mut node).into()) };
    /// assert!(!queue.is_empty());
    /// queue.take();
    /// assert!(queue.is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        // Relaxed: a hint only; nothing is read through this value, and the
        // `take` that follows a `false` acquires what it needs.
        self.head.load(Ordering::Relaxed).is_null()
    }
}

impl Default for Inbox {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("is_empty", &self.is_empty())
            .finish()
    }
}

/// A null-terminated chain of nodes owned by the calling thread, such as the
/// result of [`Inbox::take`]. Iterating yields each node after reading its
/// link, so the caller may reuse a node's memory as soon as it gets it.
///
/// ```
/// use core::ptr::NonNull;
/// use homing_deferred::{Node, Inbox};
///
/// let queue = Inbox::new();
/// let mut blocks = [[0usize; 2]; 3];
/// for block in &mut blocks {
///     // SAFETY: writable, aligned, ours, alive until taken.
///     unsafe { queue.push(Node::init(NonNull::from(block).cast())) };
/// }
/// for node in queue.take() {
///     // The link is already read: the block's memory is the caller's again.
///     // SAFETY: `node` is one of `blocks`, no longer in any chain.
///     unsafe { node.cast::<[usize; 2]>().write([1, 2]) };
/// }
/// assert!(blocks.iter().all(|b| *b == [1, 2]));
/// ```
#[derive(Debug)]
pub struct Chain {
    head: Option<NonNull<Node>>,
}

impl Chain {
    /// The empty chain.
    ///
    /// ```
    /// use homing_deferred::Chain;
    ///
    /// let mut chain = Chain::empty();
    /// assert!(chain.is_empty());
    /// assert_eq!(chain.next(), None);
    /// ```
    pub const fn empty() -> Self {
        Self { head: None }
    }

    /// `true` if the chain has no node.
    ///
    /// ```
    /// use homing_deferred::{Node, Inbox};
    ///
    /// let queue = Inbox::new();
    /// assert!(queue.take().is_empty());
    /// let mut node = Node::new();
    /// // SAFETY: the node outlives its time in the queue.
    /// unsafe { queue.push((&mut node).into()) };
    /// assert!(!queue.take().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Reverses the chain in place (O(n), plain loads and stores), turning
    /// `take`'s newest-first order into push order.
    ///
    /// ```
    /// use homing_deferred::{Node, Inbox};
    ///
    /// let queue = Inbox::new();
    /// let mut nodes = [Node::new(), Node::new()];
    /// let [first, second] = nodes.each_mut().map(Into::into);
    /// // SAFETY: the nodes outlive their time in the queue, each pushed once.
    /// unsafe {
    ///     queue.push(first);
    ///     queue.push(second);
    /// }
    /// assert_eq!(queue.take().reversed().collect::<Vec<_>>(), [first, second]);
    /// ```
    pub fn reversed(self) -> Chain {
        let mut reversed = None;
        let mut cur = self.head;
        while let Some(node) = cur {
            // SAFETY: the chain is ours (taken from a queue or built locally);
            // we read the link before overwriting it.
            unsafe {
                cur = Node::next(node);
                Node::set_next(node, reversed);
            }
            reversed = Some(node);
        }
        Chain { head: reversed }
    }
}

impl Iterator for Chain {
    type Item = NonNull<Node>;

    #[inline]
    fn next(&mut self) -> Option<NonNull<Node>> {
        let node = self.head?;
        // SAFETY: a chain's nodes are owned by the thread holding the chain,
        // and stay valid until yielded; the link is read before the node is
        // handed out, so the caller may then reuse its memory.
        self.head = unsafe { Node::next(node) };
        Some(node)
    }
}

/// A chain a producer builds privately, newest first, and then publishes with
/// [`Inbox::push_batch`] (or [`Batch::publish`]) in one step.
///
/// ```
/// use core::ptr::NonNull;
/// use homing_deferred::{Batch, Node, Inbox};
///
/// let queue = Inbox::new();
/// let mut nodes = [Node::new(), Node::new(), Node::new()];
/// let mut batch = Batch::new();
/// for node in &mut nodes {
///     // SAFETY: each node is pushed once and outlives the queue's use of it.
///     unsafe { batch.push_front(NonNull::from(node)) };
/// }
/// assert_eq!(batch.len(), 3);
/// // SAFETY: the batch's nodes stay valid until taken.
/// unsafe { batch.publish(&queue) };
/// assert_eq!(queue.take().count(), 3);
/// ```
#[derive(Debug)]
pub struct Batch {
    first: Option<NonNull<Node>>,
    last: Option<NonNull<Node>>,
    len: usize,
}

impl Batch {
    /// An empty batch.
    ///
    /// ```
    /// use homing_deferred::Batch;
    ///
    /// let batch = Batch::new();
    /// assert!(batch.is_empty() && batch.len() == 0);
    /// ```
    pub const fn new() -> Self {
        Self {
            first: None,
            last: None,
            len: 0,
        }
    }

    /// Number of nodes in the batch.
    ///
    /// ```
    /// use homing_deferred::{Batch, Node};
    ///
    /// let mut nodes = [Node::new(), Node::new()];
    /// let mut batch = Batch::new();
    /// for node in &mut nodes {
    ///     // SAFETY: each node is ours, in no other chain, and outlives the batch.
    ///     unsafe { batch.push_front(node.into()) };
    /// }
    /// assert_eq!(batch.len(), 2);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` if the batch has no node.
    ///
    /// ```
    /// use homing_deferred::{Batch, Node, Inbox};
    ///
    /// let queue = Inbox::new();
    /// let mut node = Node::new();
    /// let mut batch = Batch::new();
    /// // SAFETY: the node is ours and outlives its time in the queue.
    /// unsafe { batch.push_front((&mut node).into()) };
    /// assert!(!batch.is_empty());
    /// // SAFETY: as above.
    /// unsafe { batch.publish(&queue) };
    /// assert!(batch.is_empty()); // publishing empties the batch
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Prepends `node` (plain stores only).
    ///
    /// ```
    /// use homing_deferred::{Batch, Node};
    ///
    /// let mut nodes = [Node::new(), Node::new()];
    /// let [a, b] = nodes.each_mut().map(Into::into);
    /// let mut batch = Batch::new();
    /// // SAFETY: the nodes are ours, in no other chain, and outlive the batch.
    /// unsafe {
    ///     batch.push_front(a);
    ///     batch.push_front(b);
    /// }
    /// assert_eq!(batch.into_chain().collect::<Vec<_>>(), [b, a]); // newest first
    /// ```
    ///
    /// # Safety
    ///
    /// `node` must be valid for a `Node`, owned by this thread, and in no
    /// other chain; it must stay valid until the batch is published and taken.
    #[inline]
    pub unsafe fn push_front(&mut self, node: NonNull<Node>) {
        // SAFETY: the caller hands us `node` exclusively.
        unsafe { Node::set_next(node, self.first) };
        if self.last.is_none() {
            self.last = Some(node);
        }
        self.first = Some(node);
        self.len += 1;
    }

    /// Publishes the whole batch to `queue` with one successful
    /// compare-exchange and leaves this batch empty. Does nothing if empty.
    ///
    /// ```
    /// use homing_deferred::{Batch, Node, Inbox};
    ///
    /// let inbox = Inbox::new();
    /// let mut nodes = [Node::new(), Node::new(), Node::new()];
    /// let mut batch = Batch::new();
    /// for node in &mut nodes {
    ///     // SAFETY: each node is ours, in no other chain, alive until taken.
    ///     unsafe { batch.push_front(node.into()) };
    /// }
    /// // SAFETY: the nodes stay valid until the owner takes them below.
    /// unsafe { batch.publish(&inbox) };
    /// assert_eq!(inbox.take().count(), 3);
    /// ```
    ///
    /// # Safety
    ///
    /// The nodes must stay valid until the queue's owner takes them.
    #[inline]
    pub unsafe fn publish(&mut self, queue: &Inbox) {
        if let (Some(first), Some(last)) = (self.first.take(), self.last.take()) {
            // SAFETY: `first` reaches `last` (we built the chain), every node
            // is ours and valid per `push_front`'s contract.
            unsafe { queue.push_batch(first, last) };
        }
        self.len = 0;
    }

    /// Turns the batch into a chain the caller walks itself (for example to
    /// free the blocks locally instead of posting them).
    ///
    /// ```
    /// use homing_deferred::{Batch, Node};
    ///
    /// let mut node = Node::new();
    /// let mut batch = Batch::new();
    /// // SAFETY: the node is ours and outlives the batch.
    /// unsafe { batch.push_front((&mut node).into()) };
    /// let mut local = batch.into_chain();
    /// assert_eq!(local.next(), Some((&mut node).into()));
    /// assert!(local.is_empty());
    /// ```
    pub fn into_chain(self) -> Chain {
        Chain { head: self.first }
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;
    use std::sync::Arc;
    use std::vec::Vec;

    /// A test node with a payload: the link first, as in a freed block.
    #[repr(C)]
    struct Item {
        node: Node,
        producer: usize,
        seq: usize,
    }

    fn item(producer: usize, seq: usize) -> NonNull<Node> {
        let boxed = Box::new(Item {
            node: Node::new(),
            producer,
            seq,
        });
        NonNull::from(Box::leak(boxed)).cast()
    }

    /// Frees a node made by `item` and returns its payload.
    unsafe fn unbox(node: NonNull<Node>) -> (usize, usize) {
        // SAFETY: every node in these tests came from `item`.
        let item = unsafe { Box::from_raw(node.cast::<Item>().as_ptr()) };
        (item.producer, item.seq)
    }

    #[test]
    fn empty_queue_takes_nothing() {
        let q = Inbox::new();
        assert!(q.is_empty());
        assert!(q.take().is_empty());
        assert_eq!(q.take().count(), 0);
    }

    #[test]
    fn single_pushes_come_back_newest_first() {
        let q = Inbox::new();
        for seq in 0..5 {
            // SAFETY: fresh node, pushed once.
            unsafe { q.push(item(0, seq)) };
        }
        assert!(!q.is_empty());
        // SAFETY: nodes from `item`.
        let got: Vec<_> = q.take().map(|n| unsafe { unbox(n) }.1).collect();
        assert_eq!(got, [4, 3, 2, 1, 0]);
        assert!(q.is_empty());
    }

    #[test]
    fn batch_counts_as_pushes_from_last_to_first() {
        let q = Inbox::new();
        // SAFETY: fresh nodes, each pushed once.
        unsafe { q.push(item(0, 0)) };
        let mut batch = Batch::new();
        for seq in 1..4 {
            // SAFETY: fresh node.
            unsafe { batch.push_front(item(0, seq)) };
        }
        // SAFETY: nodes live until taken.
        unsafe { batch.publish(&q) };
        assert!(batch.is_empty());
        // SAFETY: fresh node.
        unsafe { q.push(item(0, 4)) };
        // SAFETY: nodes from `item`.
        let got: Vec<_> = q.take().reversed().map(|n| unsafe { unbox(n) }.1).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn empty_batch_publishes_nothing() {
        let q = Inbox::new();
        let mut batch = Batch::new();
        // SAFETY: nothing to publish.
        unsafe { batch.publish(&q) };
        assert!(q.is_empty());
    }

    #[test]
    fn threads_lose_nothing_and_keep_per_producer_order() {
        const PRODUCERS: usize = 3;
        let per_producer = if cfg!(miri) { 60 } else { 20_000 };
        let q = Arc::new(Inbox::new());
        let handles: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    let mut batch = Batch::new();
                    for seq in 0..per_producer {
                        if seq % 3 == 0 {
                            // SAFETY: fresh node.
                            unsafe { batch.publish(&q) };
                            // SAFETY: fresh node.
                            unsafe { q.push(item(p, seq)) };
                        } else {
                            // SAFETY: fresh node.
                            unsafe { batch.push_front(item(p, seq)) };
                        }
                    }
                    // SAFETY: nodes live until taken.
                    unsafe { batch.publish(&q) };
                })
            })
            .collect();
        let mut next_seq = [0usize; PRODUCERS];
        let mut drain = |chain: Chain| {
            for node in chain.reversed() {
                // SAFETY: nodes from `item`.
                let (p, seq) = unsafe { unbox(node) };
                assert_eq!(seq, next_seq[p], "producer {p} reordered or lost");
                next_seq[p] += 1;
            }
        };
        while handles.iter().any(|h| !h.is_finished()) {
            drain(q.take());
            std::thread::yield_now();
        }
        for h in handles {
            h.join().unwrap();
        }
        drain(q.take());
        assert_eq!(next_seq, [per_producer; PRODUCERS]);
    }
}
