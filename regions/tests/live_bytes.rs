//! `live_chunk_bytes` counts what regions hold and returns to zero when
//! they are all dropped, whatever kinds of chunk they took (small, pooled,
//! huge) and on whichever thread they are dropped.
//!
//! Alone in its own test binary: the count is process-wide.

use homing_regions::{live_chunk_bytes, Iso, Region, LARGE_OBJECT};

struct BytesF;
impl homing_regions::Family for BytesF {
    type Of<'r> = &'r [u8];
}

#[test]
fn every_chunk_is_counted_and_given_back() {
    assert_eq!(live_chunk_bytes(), 0);
    let small = Region::new();
    small.alloc_str("a few bytes");
    let tiny = live_chunk_bytes();
    assert!(
        tiny > 0 && tiny <= 1024,
        "a young region holds one small chunk: {tiny}"
    );

    let grown = Region::new();
    let n = if cfg!(miri) { 2_000 } else { 200_000 };
    for i in 0..n {
        grown.alloc(i as u64);
    }
    grown.alloc_slice_fill_with(LARGE_OBJECT, |i| i as u8);
    assert!(live_chunk_bytes() > tiny + LARGE_OBJECT + 8 * n);

    let iso = Iso::<BytesF>::new(|r| &*r.alloc_slice_copy(&[7u8; 5000]));
    let before_iso = live_chunk_bytes();
    std::thread::spawn(move || drop(iso)).join().unwrap();
    assert!(live_chunk_bytes() < before_iso);

    drop(grown);
    assert_eq!(live_chunk_bytes(), tiny);
    drop(small);
    assert_eq!(live_chunk_bytes(), 0);
}
