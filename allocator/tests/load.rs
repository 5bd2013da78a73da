//! What homing does when it is loaded, before any allocation asks for it.
#![cfg(all(target_os = "linux", not(miri)))]

#[global_allocator]
static GLOBAL: homing::Homing = homing::Homing;

/// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: fails with `EPERM`
/// unless the process registered for it.
fn private_expedited_barrier() -> Result<(), i32> {
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    // SAFETY: `membarrier` takes no pointer.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, CMD_PRIVATE_EXPEDITED, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// A steal of a stranded outbox runs `membarrier(PRIVATE_EXPEDITED)`, which
/// needs the process registered. Registering once the process has several
/// threads makes the kernel wait for an RCU grace period (11 ms seen here),
/// and the first stealer used to register from its own allocation slow path,
/// stalling there. homing registers when it is loaded instead: by the time
/// this test runs (the harness already has threads, no outbox has been
/// stolen), the barrier is allowed.
#[test]
fn the_process_is_registered_for_membarrier_when_homing_is_loaded() {
    match private_expedited_barrier() {
        Ok(()) => {}
        // Kernels without `membarrier` (or without the expedited command):
        // homing does not steal there, and nothing was registered.
        Err(libc::ENOSYS) | Err(libc::EINVAL) => {}
        Err(e) => panic!(
            "membarrier(PRIVATE_EXPEDITED) failed with errno {e}: homing did not register \
             the process when it was loaded, so its first steal would register (and stall) \
             on an allocation slow path"
        ),
    }
}
