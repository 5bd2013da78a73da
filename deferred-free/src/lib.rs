#![doc = include_str!("../README.md")]
#![no_std]

mod queue;
mod sync;

pub use queue::{Batch, Chain, Node, Queue};
