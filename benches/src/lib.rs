#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! Bottom up: [`rng`] and [`cli`] use nothing else here; [`workloads`] uses
//! both; [`compare`] uses all of them. The `wl-*` binaries set a global
//! allocator and call [`workloads::main`]; the `compare` binary calls
//! [`compare::main`].

pub mod cli;
pub mod compare;
pub mod rng;
pub mod workloads;
