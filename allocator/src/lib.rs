//! homing: a multithreaded memory allocator (being built; see the issues).
#![no_std]

extern crate std;

pub mod os;
mod sync;
