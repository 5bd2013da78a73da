//! Error output: the checked build's report of misuse, then abort.

/// Writes `homing: <parts...> (<what> 0x<addr>)` to standard error and
/// aborts: the checked build's report of misuse (`what` names the address:
/// `pointer`, `heap`). Allocates nothing: a stack buffer and `write(2)`.
#[cold]
pub fn fatal(parts: &[&str], what: &str, addr: usize) -> ! {
    let mut buf = [0u8; 256];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
    };
    put(b"homing: ");
    for part in parts {
        put(part.as_bytes());
    }
    put(b" (");
    put(what.as_bytes());
    put(b" 0x");
    for shift in (0..16).rev() {
        put(&[b"0123456789abcdef"[(addr >> (shift * 4)) & 0xF]]);
    }
    put(b")\n");
    #[cfg(not(any(miri, loom)))]
    // SAFETY: writing our own stack buffer to fd 2, then aborting.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
        libc::abort()
    }
    #[cfg(any(miri, loom))]
    {
        let _ = n;
        std::process::abort()
    }
}
