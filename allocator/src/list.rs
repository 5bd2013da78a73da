//! Intrusive doubly linked lists, written once: the heap's page queues
//! (class bins, the full list, the purge queue) and its segment lists
//! (segments with a free page slot, all segments) are all a [`List`].
//!
//! An element keeps the links of each list it can be on in a [`Links`]
//! field; an [`Adapter`] names that field, so one element type can be on
//! several lists at once (a segment is on the "all" list and maybe on an
//! "avail" list). Unlinked elements have null links.
//!
//! # Who touches what
//!
//! Lists and links belong to whoever owns the structure holding them (a
//! heap's owner; the purge queue under its lock): no atomics here.
//!
//! # Invariant
//!
//! `first` and `last` are both null or both members; following `next` from
//! `first` reaches `last`, and `prev` is its mirror.

use core::marker::PhantomData;
use core::ptr;

/// The links of one list in an element.
pub(crate) struct Links<T> {
    pub(crate) next: *mut T,
    pub(crate) prev: *mut T,
}

impl<T> Links<T> {
    /// The links of an element on no list.
    pub(crate) const NONE: Links<T> = Links {
        next: ptr::null_mut(),
        prev: ptr::null_mut(),
    };
}

/// Finds the [`Links`] a list uses inside its elements.
pub(crate) trait Adapter<T> {
    /// The links of `item`.
    ///
    /// # Safety
    ///
    /// `item` points to a live `T`.
    unsafe fn links(item: *mut T) -> *mut Links<T>;
}

/// An intrusive doubly linked list of `T`s, linked through the field `A`
/// names.
pub(crate) struct List<T, A> {
    first: *mut T,
    last: *mut T,
    _adapter: PhantomData<A>,
}

impl<T, A: Adapter<T>> List<T, A> {
    /// An empty list.
    pub(crate) const EMPTY: List<T, A> = List {
        first: ptr::null_mut(),
        last: ptr::null_mut(),
        _adapter: PhantomData,
    };

    /// The first element, or null.
    #[inline]
    pub(crate) fn first(&self) -> *mut T {
        self.first
    }

    /// `true` if the list has no element.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_null()
    }

    /// The element after `item` on this list, or null.
    ///
    /// # Safety
    ///
    /// `item` is a member.
    #[inline]
    pub(crate) unsafe fn next(item: *mut T) -> *mut T {
        // SAFETY: a member is live.
        unsafe { (*A::links(item)).next }
    }

    /// Links `item` first.
    ///
    /// # Safety
    ///
    /// `item` is live and on no list of this adapter.
    pub(crate) unsafe fn push_front(&mut self, item: *mut T) {
        // SAFETY: `item` and the members are live (caller and invariant).
        unsafe {
            let links = A::links(item);
            (*links).prev = ptr::null_mut();
            (*links).next = self.first;
            if self.first.is_null() {
                self.last = item;
            } else {
                (*A::links(self.first)).prev = item;
            }
        }
        self.first = item;
    }

    /// Links `item` last.
    ///
    /// # Safety
    ///
    /// As for [`List::push_front`].
    pub(crate) unsafe fn push_back(&mut self, item: *mut T) {
        // SAFETY: as in `push_front`.
        unsafe {
            let links = A::links(item);
            (*links).next = ptr::null_mut();
            (*links).prev = self.last;
            if self.last.is_null() {
                self.first = item;
            } else {
                (*A::links(self.last)).next = item;
            }
        }
        self.last = item;
    }

    /// Unlinks `item`.
    ///
    /// # Safety
    ///
    /// `item` is a member of this list.
    pub(crate) unsafe fn remove(&mut self, item: *mut T) {
        // SAFETY: `item` and its neighbours are live members.
        unsafe {
            let links = A::links(item);
            let (prev, next) = ((*links).prev, (*links).next);
            if prev.is_null() {
                self.first = next;
            } else {
                (*A::links(prev)).next = next;
            }
            if next.is_null() {
                self.last = prev;
            } else {
                (*A::links(next)).prev = prev;
            }
            *links = Links::NONE;
        }
    }

    /// The members, first to last. Each element's successor is read before
    /// the element is yielded, so the caller may unlink (or even free) the
    /// element it was given.
    ///
    /// # Safety
    ///
    /// The list is not changed during the walk except by unlinking the
    /// element last yielded.
    pub(crate) unsafe fn iter(&self) -> impl Iterator<Item = *mut T> {
        let mut cur = self.first;
        core::iter::from_fn(move || {
            if cur.is_null() {
                return None;
            }
            let item = cur;
            // SAFETY: a member, still linked (the caller's contract).
            cur = unsafe { Self::next(item) };
            Some(item)
        })
    }

    /// Checks the invariant (O(n): tests and debug builds).
    ///
    /// # Safety
    ///
    /// Every member is live.
    pub(crate) unsafe fn check(&self) -> bool {
        if self.first.is_null() != self.last.is_null() {
            return false;
        }
        let mut prev = ptr::null_mut();
        let mut cur = self.first;
        // SAFETY: members are live.
        unsafe {
            while !cur.is_null() {
                if (*A::links(cur)).prev != prev {
                    return false;
                }
                prev = cur;
                cur = (*A::links(cur)).next;
            }
        }
        prev == self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Node {
        value: u32,
        links: Links<Node>,
    }

    struct ByLinks;
    impl Adapter<Node> for ByLinks {
        unsafe fn links(item: *mut Node) -> *mut Links<Node> {
            // SAFETY: the caller passes a live node.
            unsafe { ptr::addr_of_mut!((*item).links) }
        }
    }

    fn values(list: &List<Node, ByLinks>) -> std::vec::Vec<u32> {
        // SAFETY: the test's nodes live on its stack for the whole test.
        unsafe { list.iter().map(|n| (*n).value).collect() }
    }

    #[test]
    fn push_remove_and_walk() {
        let mut nodes: std::vec::Vec<Node> = (0..5)
            .map(|value| Node {
                value,
                links: Links::NONE,
            })
            .collect();
        let p: std::vec::Vec<*mut Node> = nodes.iter_mut().map(|n| n as *mut Node).collect();
        let mut list: List<Node, ByLinks> = List::EMPTY;
        assert!(list.is_empty());
        // SAFETY: every node is live and linked at most once.
        unsafe {
            list.push_back(p[1]);
            list.push_back(p[2]);
            list.push_front(p[0]);
            list.push_back(p[3]);
            assert!(list.check());
            assert_eq!(values(&list), [0, 1, 2, 3]);
            list.remove(p[2]);
            list.remove(p[0]);
            assert!(list.check());
            assert_eq!(values(&list), [1, 3]);
            assert_eq!((list.first(), list.last), (p[1], p[3]));
            // Unlinking the element just yielded is allowed.
            for n in list.iter() {
                if (*n).value == 1 {
                    list.remove(n);
                }
            }
            assert_eq!(values(&list), [3]);
            list.remove(p[3]);
            assert!(list.is_empty() && list.check());
            assert!((*p[3]).links.next.is_null() && (*p[3]).links.prev.is_null());
        }
    }
}
