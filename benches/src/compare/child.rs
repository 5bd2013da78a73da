//! Running one `wl-*` child process and reading what it used.
//!
//! The child prints its own timed section (see [`Report`]), so process
//! start-up and exit are not in the time. Its peak resident set comes from the kernel's resource
//! usage for that child alone: we reap it ourselves with `wait4`, which
//! returns the rusage of exactly the process waited for (`ru_maxrss`, in KiB
//! on Linux), instead of `getrusage(RUSAGE_CHILDREN)`, which would mix all
//! children reaped so far.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::workloads::Report;

/// What one child run produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// The child's own report (time of the workload, checksum).
    pub report: Report,
    /// The child's peak resident set size, in KiB.
    pub peak_rss_kib: u64,
}

/// Runs `binary` with `args`, waits for it, and returns its report and peak
/// RSS. The child's standard error passes through to ours.
pub fn measure(binary: &Path, args: &[String]) -> Result<Measurement, String> {
    let mut command = Command::new(binary);
    command.args(args);
    measure_command(command)
}

/// Runs `command` (its program, arguments and environment as set, standard
/// input closed), waits for it, and returns its report and peak RSS; the C
/// mode uses this with `LD_PRELOAD` set. The child's standard error passes
/// through to ours.
pub fn measure_command(mut command: Command) -> Result<Measurement, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let mut stdout = String::new();
    let read = child
        .stdout
        .take()
        .expect("stdout was piped")
        .read_to_string(&mut stdout);
    let pid = libc::pid_t::try_from(child.id()).map_err(|_| "child pid out of range")?;
    let (status, usage) = wait4(pid).map_err(|e| format!("wait4 failed: {e}"))?;
    read.map_err(|e| format!("cannot read the child's output: {e}"))?;
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(describe_failure(status));
    }
    let report = Report::parse(&stdout)?;
    Ok(Measurement {
        report,
        peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    })
}

/// Reaps child `pid`, retrying on `EINTR`; returns its wait status and its
/// own resource usage.
fn wait4(pid: libc::pid_t) -> std::io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers, for which all zero
    // bytes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std's `Child` is
        // never waited on); both out-pointers are valid, exclusive locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Words for a wait status that is not a clean exit.
fn describe_failure(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended with wait status {status:#x}")
    }
}
