//! `dlopen` without `RTLD_DEEPBIND` (x86-64 Linux, feature `malloc`).
//!
//! # The problem
//!
//! A library opened with `RTLD_DEEPBIND` resolves its symbols in its own
//! scope first: itself and its dependencies, among them libc, and only then
//! the global scope where `LD_PRELOAD=libhoming.so` (or an executable
//! linking homing) put `malloc` and `free`. So its `free` is glibc's, and
//! the first block from homing it frees (one the program or another
//! library allocated) crashes glibc. PHP opens every extension so (Debian's
//! `php -r ''` with `USE_ZEND_ALLOC=0` dies at start); jemalloc, tcmalloc
//! and mimalloc fail the same way.
//!
//! # The fix, and what it changes
//!
//! `libhoming.so` defines `dlopen`: it clears `RTLD_DEEPBIND` from the mode
//! and jumps to the C library's `dlopen` (found with
//! `dlsym(RTLD_NEXT, "dlopen")` on the first call). The loaded library then
//! binds like any other: `malloc`/`free` to homing, and every other symbol
//! that both it (or its dependencies) and an object already loaded define
//! to the already loaded one, the usual ELF rule, instead of its own. That
//! is what `RTLD_DEEPBIND` exists to prevent (a plugin bundling its own
//! copy of a library the host also has, at another version); a process
//! that needs that isolation and replaces its allocator cannot have both,
//! as deep binding hands the plugin glibc's `free` for blocks glibc did
//! not allocate. Stripping is the default, since keeping the flag under an
//! interposed allocator is a crash for any library that frees memory it did
//! not allocate; `HOMING_DEEPBIND=keep` keeps the flag (for a process that
//! knows its deep-bound libraries never free such memory).
//!
//! The wrapper is a naked function that ends in a tail jump, so the C
//! library's `dlopen` sees the original caller's return address: the
//! calling object's namespace, `RPATH`/`RUNPATH` and `$ORIGIN` apply as if
//! homing were not there (a wrapper that called `dlopen` would make the
//! search use libhoming's). Only `dlopen` is wrapped (`dlmopen` opens into
//! a new namespace with its own libc and allocator, where the flag is
//! harmless).

use core::ffi::c_char;
use homing_deferred::sync::plain::{AtomicU32, AtomicUsize, Ordering};

/// The C library's `dlopen`, once resolved (0 before).
static REAL: AtomicUsize = AtomicUsize::new(0);
/// Anded into the mode: `!RTLD_DEEPBIND`, or all ones to keep the flag.
static MASK: AtomicU32 = AtomicU32::new(!(libc::RTLD_DEEPBIND as u32));

/// Finds the C library's `dlopen` and reads `HOMING_DEEPBIND`. Returns the
/// function's address (0 if there is none). Racing first calls each store
/// the same values.
extern "C" fn resolve() -> usize {
    // SAFETY: a NUL-terminated name; `getenv` reads the environment.
    let keep = unsafe {
        let v = libc::getenv(c"HOMING_DEEPBIND".as_ptr());
        !v.is_null() && libc::strcmp(v, c"keep".as_ptr()) == 0
    };
    let mask = if keep {
        u32::MAX
    } else {
        !(libc::RTLD_DEEPBIND as u32)
    };
    // Relaxed: published by the Release store of `REAL` below.
    MASK.store(mask, Ordering::Relaxed);
    // SAFETY: `RTLD_NEXT` from this object: the next definition after ours.
    let real = unsafe { libc::dlsym(libc::RTLD_NEXT, c"dlopen".as_ptr()) } as usize;
    // Release: a thread that reads `REAL` non-zero reads this `MASK` (the
    // wrapper's two loads are in that order, and x86-64 keeps loads in
    // order, so a plain load there is an acquire).
    REAL.store(real, Ordering::Release);
    real
}

/// `dlopen(file, mode)` with `RTLD_DEEPBIND` cleared from `mode` (see the
/// module doc): `mode &= MASK`, then a tail jump to the C library's
/// `dlopen`, so it sees our caller's return address. Returns null (with no
/// `dlerror` set) only if there is no `dlopen` to forward to.
///
/// # Safety
///
/// As for `dlopen`.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlopen(file: *const c_char, mode: i32) -> *mut core::ffi::c_void {
    core::arch::naked_asm!(
        "mov rax, qword ptr [rip + {real}]",
        "test rax, rax",
        "jz 2f",
        "3:",
        "and esi, dword ptr [rip + {mask}]",
        "jmp rax",
        // First call: resolve, keeping the arguments. At entry rsp is 8
        // past a 16-byte boundary; two pushes and 8 more realign it.
        "2:",
        "push rdi",
        "push rsi",
        "sub rsp, 8",
        "call {resolve}",
        "add rsp, 8",
        "pop rsi",
        "pop rdi",
        "test rax, rax",
        "jnz 3b",
        "xor eax, eax",
        "ret",
        real = sym REAL,
        mask = sym MASK,
        resolve = sym resolve,
    )
}
