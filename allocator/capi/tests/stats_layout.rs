//! The C statistics structs mirror the Rust ones by hand, so this test
//! checks them field by field: `homing_stats_t` and `homing_heap_stats_t`
//! in `include/homing.h` declare, in order, exactly the fields of the
//! `#[repr(C)]` structs the library writes (`HomingStats`,
//! `HomingHeapStats`), and those carry every field of the allocator's
//! `Stats` and `HeapStats`. (It once drifted: `os_cached` was missing.)

use std::collections::BTreeSet;

/// The field names of a `{:?}`-formatted struct, in order.
fn debug_fields(debug: &str) -> Vec<String> {
    let body = &debug[debug.find('{').expect("a struct") + 1..debug.rfind('}').expect("a struct")];
    body.split(", ")
        .map(|field| field.split(':').next().unwrap().trim().to_owned())
        .filter(|name| !name.is_empty() && name != "..")
        .collect()
}

/// The field names of `typedef struct NAME { ... } ...;` in `homing.h`.
fn header_fields(name: &str) -> Vec<String> {
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/homing.h"))
        .expect("homing.h");
    let start = header
        .find(&format!("typedef struct {name} {{"))
        .unwrap_or_else(|| panic!("no struct {name} in homing.h"));
    let body = &header[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    // Drop comments, then take the last word of each declaration.
    let mut code = String::new();
    let mut rest = body;
    while let Some(open) = rest.find("/*") {
        code.push_str(&rest[..open]);
        rest = &rest[rest[open..].find("*/").expect("a closed comment") + open + 2..];
    }
    code.push_str(rest);
    code.split(';')
        .filter_map(|decl| decl.split_whitespace().last().map(str::to_owned))
        .collect()
}

#[test]
fn homing_stats_t_matches_stats_field_by_field() {
    let c = debug_fields(&format!("{:?}", homing::stats::HomingStats::default()));
    assert_eq!(header_fields("homing_stats"), c, "homing.h vs HomingStats");
    let rust = debug_fields(&format!("{:?}", allocator::stats()));
    let (c_set, rust_set): (BTreeSet<_>, BTreeSet<_>) = (c.iter().collect(), rust.iter().collect());
    assert_eq!(c_set, rust_set, "HomingStats vs allocator::Stats");
}

#[test]
fn homing_heap_stats_t_matches_heap_stats_field_by_field() {
    let c = debug_fields(&format!("{:?}", homing::heap::HomingHeapStats::default()));
    assert_eq!(
        header_fields("homing_heap_stats"),
        c,
        "homing.h vs HomingHeapStats"
    );
    let heap = allocator::Heap::new();
    let rust = debug_fields(&format!("{:?}", heap.stats()));
    let (c_set, rust_set): (BTreeSet<_>, BTreeSet<_>) = (c.iter().collect(), rust.iter().collect());
    assert_eq!(c_set, rust_set, "HomingHeapStats vs allocator::HeapStats");
}
