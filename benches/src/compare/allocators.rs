//! The allocators `compare` measures: one `wl-<name>` binary each, with
//! that allocator as its `#[global_allocator]`.

/// One allocator under comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocator {
    /// The name used on the command line and in reports.
    pub name: &'static str,
    /// The binary (next to `compare`) whose global allocator it is.
    pub binary: &'static str,
    /// Where it comes from.
    pub source: &'static str,
    /// `false` if this build of the crate leaves its binary out.
    pub built: bool,
}

/// The baseline of the ratios when it is measured: the project's allocator.
pub const HOMING: &str = "homing";

/// The baseline when homing is not measured.
pub const SYSTEM: &str = "system";

/// Every allocator, homing first.
pub const ALLOCATORS: &[Allocator] = &[
    Allocator {
        name: HOMING,
        binary: "wl-homing",
        source: "this workspace (`homing::Homing`)",
        built: true,
    },
    Allocator {
        name: SYSTEM,
        binary: "wl-system",
        source: "the C library's malloc (`std::alloc::System`)",
        built: true,
    },
    Allocator {
        name: "mimalloc",
        binary: "wl-mimalloc",
        source: "crate `mimalloc`",
        built: true,
    },
    Allocator {
        name: "jemalloc",
        binary: "wl-jemalloc",
        source: "crate `tikv-jemallocator`",
        built: true,
    },
    Allocator {
        name: "snmalloc",
        binary: "wl-snmalloc",
        source: "crate `snmalloc-rs` (built with `cc`)",
        built: true,
    },
    Allocator {
        name: "rpmalloc",
        binary: "wl-rpmalloc",
        source: "crate `rpmalloc`",
        built: true,
    },
];

/// The allocator called `name`, built or not.
pub fn find(name: &str) -> Option<&'static Allocator> {
    ALLOCATORS.iter().find(|a| a.name == name)
}

/// The allocators this build can run.
pub fn built() -> impl Iterator<Item = &'static Allocator> {
    ALLOCATORS.iter().filter(|a| a.built)
}

/// The ratios' baseline among `names`: homing if present, else the system
/// allocator, else the first one.
pub fn baseline<'a>(names: &[&'a str]) -> Option<&'a str> {
    [HOMING, SYSTEM]
        .into_iter()
        .find_map(|b| names.iter().copied().find(|&n| n == b))
        .or_else(|| names.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_prefers_homing_then_system() {
        assert_eq!(baseline(&["mimalloc", "system", "homing"]), Some("homing"));
        assert_eq!(baseline(&["mimalloc", "system"]), Some("system"));
        assert_eq!(baseline(&["jemalloc", "mimalloc"]), Some("jemalloc"));
        assert_eq!(baseline(&[]), None);
    }

    #[test]
    fn names_and_binaries_are_unique() {
        for (i, a) in ALLOCATORS.iter().enumerate() {
            assert!(ALLOCATORS[..i]
                .iter()
                .all(|o| o.name != a.name && o.binary != a.binary));
            assert_eq!(a.binary, format!("wl-{}", a.name));
        }
    }
}
