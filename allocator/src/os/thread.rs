//! Threads: a token for the calling thread, the thread-exit key, yielding,
//! and the background thread the purger runs on.

use crate::sync::plain::{AtomicPtr, AtomicUsize, Ordering};

/// A token of the calling thread, never 0 and unique among live threads
/// (its `pthread_t`).
pub(crate) fn thread_token() -> usize {
    #[cfg(not(any(miri, loom)))]
    // SAFETY: `pthread_self` has no precondition.
    let t = unsafe { libc::pthread_self() } as usize;
    #[cfg(any(miri, loom))]
    let t = {
        std::thread_local! { static TOKEN: u8 = const { 0 }; }
        TOKEN.with(|t| t as *const u8 as usize)
    };
    t.max(1)
}

/// The thread-exit key: a `pthread` key whose destructor glibc runs when a
/// thread that set a value exits (never Rust's TLS destructors, which may
/// allocate). Created on first use; racing creators each make one and the
/// loser deletes its own.
#[cfg(not(any(miri, loom)))]
pub(crate) mod exit_key {
    use crate::sync::plain::{AtomicUsize, Ordering};

    /// The key plus one (0: not created yet).
    static KEY: AtomicUsize = AtomicUsize::new(0);

    /// Arranges for `destructor(value)` to run when the calling thread
    /// exits. All callers pass the same destructor (the first one wins).
    /// `false` if no key could be created.
    pub(crate) fn watch(
        value: *mut u8,
        destructor: unsafe extern "C" fn(*mut core::ffi::c_void),
    ) -> bool {
        crate::os::errno::keeping_errno(|| {
            let Some(key) = key(destructor) else {
                return false;
            };
            // SAFETY: a valid key; the value is only handed back to us.
            unsafe { libc::pthread_setspecific(key, value.cast()) == 0 }
        })
    }

    fn key(
        destructor: unsafe extern "C" fn(*mut core::ffi::c_void),
    ) -> Option<libc::pthread_key_t> {
        // Acquire: pairs with the Release publish below (the key value is
        // all that travels, but it must be a created key).
        let k = KEY.load(Ordering::Acquire);
        if k != 0 {
            return Some((k - 1) as libc::pthread_key_t);
        }
        let mut new: libc::pthread_key_t = 0;
        // SAFETY: valid out-pointer and an `extern "C"` destructor.
        if unsafe { libc::pthread_key_create(&mut new, Some(destructor)) } != 0 {
            return None;
        }
        // Release/Acquire: publish the created key; on failure read the
        // winner's.
        match KEY.compare_exchange(0, new as usize + 1, Ordering::Release, Ordering::Acquire) {
            Ok(_) => Some(new),
            Err(theirs) => {
                // SAFETY: our key was never used.
                unsafe { libc::pthread_key_delete(new) };
                Some((theirs - 1) as libc::pthread_key_t)
            }
        }
    }
}

/// Gives the CPU to another thread (a spinning waiter's back-off).
pub fn yield_now() {
    #[cfg(not(any(miri, loom)))]
    // SAFETY: no preconditions.
    unsafe {
        libc::sched_yield();
    }
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Registers handlers `fork` runs in the forking thread: `prepare` before
/// the fork, `parent` and `child` after it, in the parent and the child
/// (`pthread_atfork`). `false` if the C library could not register them.
#[cfg(not(any(miri, loom)))]
pub(crate) fn at_fork(
    prepare: extern "C" fn(),
    parent: extern "C" fn(),
    child: extern "C" fn(),
) -> bool {
    // SAFETY: three `extern "C" fn()` with no preconditions.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) == 0 }
}

/// The calling process's id (to notice a `fork`).
#[cfg(not(any(miri, loom)))]
pub(crate) fn process_id() -> usize {
    // SAFETY: no preconditions; never fails.
    unsafe { libc::getpid() as usize }
}

/// Starts a detached thread that, forever, sleeps `every_ms` milliseconds
/// and calls `f`. The thread is a plain `pthread`: it allocates nothing
/// itself (its stack is mapped by the C library). `false` if it could not
/// be started.
#[cfg(not(any(miri, loom)))]
pub(crate) fn spawn_periodic(every_ms: usize, f: extern "C" fn()) -> bool {
    /// What the thread runs: the period and the function, packed in the
    /// thread argument (no allocation to carry them).
    static PERIODIC: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
    static PERIOD_MS: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
        // Acquire: pairs with the Release stores before the thread started.
        let f = PERIODIC.load(Ordering::Acquire);
        let every = PERIOD_MS.load(Ordering::Acquire).max(1);
        // SAFETY: only an `extern "C" fn()` is stored in PERIODIC.
        let f: extern "C" fn() = unsafe { core::mem::transmute::<*mut (), extern "C" fn()>(f) };
        let pause = libc::timespec {
            tv_sec: (every / 1000) as libc::time_t,
            tv_nsec: ((every % 1000) * 1_000_000) as libc::c_long,
        };
        loop {
            // SAFETY: a valid timespec; an interrupted sleep just ends early.
            unsafe { libc::nanosleep(&pause, core::ptr::null_mut()) };
            f();
        }
    }

    // Release: the thread's Acquire loads see both.
    PERIOD_MS.store(every_ms, Ordering::Release);
    PERIODIC.store(f as *mut (), Ordering::Release);
    // SAFETY: `attr` is initialised before use and destroyed after; the
    // thread runs `run`, which needs no argument.
    crate::os::errno::keeping_errno(|| unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_attr_init(&mut attr) != 0 {
            return false;
        }
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut thread: libc::pthread_t = 0;
        let rc = libc::pthread_create(&mut thread, &attr, run, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        rc == 0
    })
}
