//! The allocators of the C mode: the C library's own `malloc` (nothing
//! preloaded), homing's `libhoming.so`, and the Debian packages of the
//! peers, each put in front of the C library with `LD_PRELOAD`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The command that installs every peer on Debian or Ubuntu.
pub const INSTALL: &str = "sudo apt-get install libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4";

/// Where an allocator's library comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// Nothing preloaded: the C library's `malloc`.
    None,
    /// `libhoming.so`, built from this workspace (`homing-capi`).
    Homing,
    /// A shared library installed by a distribution package, looked up in
    /// the system library directories.
    Installed {
        /// Its file name, e.g. `libmimalloc.so.2`.
        file: &'static str,
        /// The Debian package that installs it.
        package: &'static str,
    },
}

/// One allocator of the C mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preload {
    /// The name used on the command line and in reports (shared with the
    /// Rust mode where it is the same allocator).
    pub name: &'static str,
    /// What is preloaded.
    pub library: Library,
}

/// Every allocator of the C mode, homing first (the ratios' baseline), then
/// the system allocator (the reference of the output check).
pub const PRELOADS: &[Preload] = &[
    Preload {
        name: super::allocators::HOMING,
        library: Library::Homing,
    },
    Preload {
        name: super::allocators::SYSTEM,
        library: Library::None,
    },
    Preload {
        name: "mimalloc",
        library: Library::Installed {
            file: "libmimalloc.so.2",
            package: "libmimalloc2.0",
        },
    },
    Preload {
        name: "jemalloc",
        library: Library::Installed {
            file: "libjemalloc.so.2",
            package: "libjemalloc2",
        },
    },
    Preload {
        name: "tcmalloc",
        library: Library::Installed {
            file: "libtcmalloc_minimal.so.4",
            package: "libtcmalloc-minimal4",
        },
    },
];

/// The C-mode allocator called `name`.
pub fn find(name: &str) -> Option<&'static Preload> {
    PRELOADS.iter().find(|p| p.name == name)
}

/// The directories searched for an installed library, in order: the
/// multiarch directories of Debian and Ubuntu first.
pub fn library_dirs() -> Vec<PathBuf> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    vec![
        Path::new("/usr/lib").join(&multiarch),
        Path::new("/lib").join(&multiarch),
        PathBuf::from("/usr/lib64"),
        PathBuf::from("/usr/lib"),
        PathBuf::from("/usr/local/lib"),
    ]
}

/// The first `dirs` entry holding `file`.
pub fn find_library(file: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(file)).find(|p| p.exists())
}

/// The installed version of Debian package `package`, if `dpkg-query` knows
/// it.
pub fn package_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !version.is_empty()).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_homing_and_system_come_first() {
        for (i, p) in PRELOADS.iter().enumerate() {
            assert!(PRELOADS[..i].iter().all(|o| o.name != p.name));
        }
        assert_eq!(PRELOADS[0].library, Library::Homing);
        assert_eq!(PRELOADS[1].library, Library::None);
        for p in &PRELOADS[2..] {
            let Library::Installed { package, .. } = p.library else {
                panic!("{} is not a package", p.name);
            };
            assert!(INSTALL.contains(package), "{package}");
        }
    }

    #[test]
    fn libraries_are_found_in_the_first_directory_that_has_them() {
        let root = std::env::temp_dir().join(format!("homing-preload-{}", std::process::id()));
        let (a, b) = (root.join("a"), root.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("libx.so.1"), b"").unwrap();
        let dirs = [a.clone(), b.clone()];
        assert_eq!(find_library("libx.so.1", &dirs), Some(b.join("libx.so.1")));
        std::fs::write(a.join("libx.so.1"), b"").unwrap();
        assert_eq!(find_library("libx.so.1", &dirs), Some(a.join("libx.so.1")));
        assert_eq!(find_library("liby.so.1", &dirs), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
