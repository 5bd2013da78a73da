//! `String<A>`: a growable UTF-8 string whose bytes live in an allocator,
//! typically a region: `String::new_in(&region)` (borrowed, many per
//! region) or `String::new_in(Region::new())` (owning its region, `Send`).
//!
//! It is a `Vec<u8, A>` that keeps the UTF-8 invariant: every method that
//! writes takes `&str` or `char`. Growth in a region happens in place while
//! the string is the region's most recent allocation (so building one
//! string at a time costs no copy), otherwise by copying into a new block.

use core::fmt;
use core::ops::{Deref, DerefMut};

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

use crate::Region;

/// A growable string in an allocator (see the module doc).
///
/// ```
/// use core::fmt::Write;
/// use homing_regions::{Region, String};
///
/// let region = Region::new();
/// let mut s = String::new_in(&region);
/// s.push_str("hello");
/// write!(s, ", {}", 42).unwrap();
/// assert_eq!(s, "hello, 42");
/// let kept: &str = s.into_str(); // lives as long as the region
/// assert_eq!(kept.len(), 9);
/// ```
pub struct String<A: Allocator> {
    bytes: Vec<u8, A>,
}

impl<A: Allocator> String<A> {
    /// An empty string that will allocate in `alloc`.
    ///
    /// ```
    /// use homing_regions::{Region, String};
    ///
    /// let region = Region::new();
    /// let mut s = String::new_in(&region);
    /// assert!(s.is_empty());
    /// assert_eq!(s.capacity(), 0); // nothing allocated yet
    /// s.push_str("hi");
    /// assert_eq!(s, "hi");
    /// ```
    pub fn new_in(alloc: A) -> Self {
        String {
            bytes: Vec::new_in(alloc),
        }
    }

    /// An empty string with room for `capacity` bytes.
    ///
    /// ```
    /// use homing_regions::{Region, String};
    ///
    /// let mut s = String::with_capacity_in(16, Region::new());
    /// assert!(s.is_empty());
    /// assert!(s.capacity() >= 16);
    /// let p = s.as_ptr();
    /// s.push_str("sixteen bytes!!!");
    /// assert_eq!(s.as_ptr(), p, "fits: no reallocation");
    /// ```
    pub fn with_capacity_in(capacity: usize, alloc: A) -> Self {
        String {
            bytes: Vec::with_capacity_in(capacity, alloc),
        }
    }

    /// A copy of `s` in `alloc`.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let s = homing_regions::String::from_str_in("abc", &region);
    /// assert_eq!(s.len(), 3);
    /// ```
    pub fn from_str_in(s: &str, alloc: A) -> Self {
        let mut out = Self::with_capacity_in(s.len(), alloc);
        out.push_str(s);
        out
    }

    /// Appends `s`.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let mut s = homing_regions::String::new_in(&region);
    /// s.push_str("grü");
    /// s.push_str("ße");
    /// assert_eq!(s, "grüße");
    /// assert_eq!(s.len(), 7); // bytes, not chars
    /// ```
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        self.bytes.extend_from_slice(s.as_bytes());
    }

    /// Appends `c`.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let mut s = homing_regions::String::new_in(&region);
    /// s.push('a');
    /// s.push('é'); // two bytes in UTF-8
    /// assert_eq!(s, "aé");
    /// assert_eq!(s.len(), 3);
    /// ```
    #[inline]
    pub fn push(&mut self, c: char) {
        let mut buf = [0; 4];
        self.push_str(c.encode_utf8(&mut buf));
    }

    /// The contents.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let s = homing_regions::String::from_str_in("a,b", &region);
    /// let parts: Vec<&str> = s.as_str().split(',').collect();
    /// assert_eq!(parts, ["a", "b"]);
    /// ```
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: the bytes are only ever written from `&str`s and `char`s,
        // and only truncated at char boundaries.
        unsafe { core::str::from_utf8_unchecked(&self.bytes) }
    }

    /// The contents, mutable (in place, keeping UTF-8).
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let mut s = homing_regions::String::from_str_in("shout", &region);
    /// s.as_mut_str().make_ascii_uppercase();
    /// assert_eq!(s, "SHOUT");
    /// ```
    #[inline]
    pub fn as_mut_str(&mut self) -> &mut str {
        // SAFETY: as in `as_str`; `&mut str` only allows UTF-8-keeping edits.
        unsafe { core::str::from_utf8_unchecked_mut(&mut self.bytes) }
    }

    /// Bytes held.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let mut s = homing_regions::String::new_in(&region);
    /// s.push_str("abc");
    /// assert!(s.capacity() >= s.len());
    /// s.clear();
    /// assert!(s.capacity() >= 3, "clearing keeps the memory");
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Empties the string, keeping its memory.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let mut s = homing_regions::String::from_str_in("old", &region);
    /// let p = s.as_ptr();
    /// s.clear();
    /// assert!(s.is_empty());
    /// s.push_str("new");
    /// assert_eq!(s, "new");
    /// assert_eq!(s.as_ptr(), p, "the same bytes are reused");
    /// ```
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Shortens the string to `len` bytes (nothing if it is shorter).
    ///
    /// Panics if `len` is not on a char boundary.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let mut s = homing_regions::String::from_str_in("naïve", &region);
    /// s.truncate(10); // longer than the string: nothing happens
    /// assert_eq!(s, "naïve");
    /// s.truncate(4); // 'ï' is two bytes: "na" + "ï" is 4
    /// assert_eq!(s, "naï");
    /// let inside_a_char = std::panic::AssertUnwindSafe(move || s.truncate(3));
    /// assert!(std::panic::catch_unwind(inside_a_char).is_err());
    /// ```
    pub fn truncate(&mut self, len: usize) {
        if len < self.bytes.len() {
            assert!(self.as_str().is_char_boundary(len), "not a char boundary");
            self.bytes.truncate(len);
        }
    }

    /// The allocator the string uses.
    ///
    /// ```
    /// use homing_regions::{Region, String};
    ///
    /// let region = Region::new();
    /// let s = String::new_in(&region);
    /// assert!(core::ptr::eq(*s.allocator(), &region));
    /// ```
    pub fn allocator(&self) -> &A {
        self.bytes.allocator()
    }

    /// The bytes, as a `Vec<u8, A>`.
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let s = homing_regions::String::from_str_in("hé", &region);
    /// let bytes = s.into_bytes();
    /// assert_eq!(&bytes[..], "hé".as_bytes());
    /// assert_eq!(bytes.len(), 3);
    /// ```
    pub fn into_bytes(self) -> Vec<u8, A> {
        self.bytes
    }
}

impl<'r> String<&'r Region> {
    /// Gives the string to its region: it lives (unchanged, without
    /// destructor) as long as the region.
    ///
    /// ```
    /// use homing_regions::{Region, String};
    ///
    /// let region = Region::new();
    /// let mut names: Vec<&str> = Vec::new();
    /// for i in 0..3 {
    ///     let mut s = String::new_in(&region);
    ///     s.push_str("user");
    ///     s.push(char::from(b'0' + i));
    ///     names.push(s.into_str()); // outlives `s`, not the region
    /// }
    /// assert_eq!(names, ["user0", "user1", "user2"]);
    /// ```
    pub fn into_str(self) -> &'r mut str {
        let bytes = self.bytes.leak();
        // SAFETY: UTF-8, as in `as_str`.
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }
}

impl Region {
    /// Formats `args` into the region (an `alloc_str` for `format_args!`).
    ///
    /// ```
    /// let region = homing_regions::Region::new();
    /// let s = region.alloc_fmt(format_args!("room {}: {} users", 7, 3));
    /// assert_eq!(s, "room 7: 3 users");
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_fmt(&self, args: fmt::Arguments<'_>) -> &mut str {
        if let Some(s) = args.as_str() {
            return self.alloc_str(s);
        }
        let mut out = String::new_in(self);
        fmt::Write::write_fmt(&mut out, args).expect("formatting into a region failed");
        out.into_str()
    }
}

impl<A: Allocator> Deref for String<A> {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<A: Allocator> DerefMut for String<A> {
    #[inline]
    fn deref_mut(&mut self) -> &mut str {
        self.as_mut_str()
    }
}

impl<A: Allocator> fmt::Write for String<A> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl<A: Allocator> fmt::Display for String<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl<A: Allocator> fmt::Debug for String<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<A: Allocator> PartialEq<str> for String<A> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<A: Allocator> PartialEq<&str> for String<A> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<A: Allocator, B: Allocator> PartialEq<String<B>> for String<A> {
    fn eq(&self, other: &String<B>) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<A: Allocator> Eq for String<A> {}

impl<A: Allocator> core::hash::Hash for String<A> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl<A: Allocator> Extend<char> for String<A> {
    fn extend<I: IntoIterator<Item = char>>(&mut self, iter: I) {
        for c in iter {
            self.push(c);
        }
    }
}

impl<'a, A: Allocator> Extend<&'a str> for String<A> {
    fn extend<I: IntoIterator<Item = &'a str>>(&mut self, iter: I) {
        for s in iter {
            self.push_str(s);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn builds_in_place_and_keeps_utf8() {
        let region = Region::new();
        let mut s = String::new_in(&region);
        s.push_str("grüße");
        s.push('!');
        s.extend(["a", "b"]);
        s.extend("cd".chars());
        assert_eq!(s, "grüße!abcd");
        let p = s.as_ptr();
        for _ in 0..100 {
            s.push('x');
        }
        assert_eq!(s.as_ptr(), p, "grew in place: nothing else was allocated");
        s.truncate(7);
        assert_eq!(s, "grüße");
        s.make_ascii_uppercase();
        assert_eq!(s, "GRüßE");
    }

    #[test]
    #[should_panic(expected = "not a char boundary")]
    fn truncate_inside_a_char_panics() {
        let region = Region::new();
        let mut s = String::from_str_in("ü", &region);
        s.truncate(1);
    }

    #[test]
    fn an_owned_string_moves_with_its_region() {
        let mut s = String::new_in(Region::new());
        s.push_str("made here");
        let len = std::thread::spawn(move || {
            s.push_str(", grown there");
            s.len()
        })
        .join()
        .unwrap();
        assert_eq!(len, "made here, grown there".len());
    }
}
