//! A chat service on actors and regions, after the chat workflow of the
//! article this project grew from.
//!
//! - 100 **room** actors, each keeping its transcript in its own region
//!   (an `Iso`): every line is a `&str` in the room's region.
//! - **Clients** on several threads post lines (as `Shared<String>`, made on
//!   the client's thread and released wherever the last room drops it) and
//!   read the latest lines (a room answers with a new `Iso` holding a copy,
//!   moved to the client, never copied again).
//! - Room 0 is the **broadcast** room: it forwards every line to the 99
//!   others (the same `Shared`, cloned).
//! - **Compression** of a room's transcript is CPU-heavy: the room moves a
//!   copy of its transcript into an `Iso` and hands it to a job on the
//!   worker pool, which answers the client directly; the client waits for
//!   (or could `.await`) the result.
//!
//! At the end it prints message counts, latency percentiles and memory
//! figures, stops every room (each region is dropped whole), and checks
//! that no region memory is held and homing's live bytes are back at
//! their baseline.
//!
//! Run: `cargo run --release -p homing-regions --example chat_rooms`
//! (`CHAT_CLIENTS` and `CHAT_OPS` set the number of client threads and the
//! operations per client).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use homing::Homing;
use homing_deferred::{collect, Shared};
use homing_regions::actor::{Actor, ActorRef, Context, Pool, Reply};
use homing_regions::{live_chunk_bytes, Family, Iso, Region};

#[global_allocator]
static GLOBAL: Homing = Homing;

const ROOMS: usize = 100;
const BROADCAST: usize = 0;
/// Lines a read returns.
const READ_LINES: usize = 20;
/// LZ77 window of the compression job, in bytes.
const WINDOW: usize = 2048;

/// A room's state, in its region.
struct Room<'r> {
    lines: Vec<&'r str>,
    bytes: usize,
    /// Post-to-handled latencies, in microseconds.
    latencies: Vec<u32>,
}

struct RoomF;
impl Family for RoomF {
    type Of<'r> = Room<'r>;
}

/// Lines handed to a client or a job, in a region of their own.
struct LinesF;
impl Family for LinesF {
    type Of<'r> = Vec<&'r str>;
}

enum Msg {
    Post { text: Shared<String>, sent: Instant },
    Read(Reply<Iso<LinesF>>),
    Compress(Reply<Compressed>),
    Stats(Reply<RoomStats>),
}

struct RoomStats {
    lines: usize,
    bytes: usize,
    capacity: usize,
    latencies: Vec<u32>,
}

#[derive(Debug)]
struct Compressed {
    input: usize,
    output: usize,
}

struct RoomActor {
    /// The other rooms, for the broadcast room; empty for the others.
    others: Vec<ActorRef<Msg>>,
    forwarded: &'static AtomicU64,
}

impl Actor for RoomActor {
    type State = RoomF;
    type Msg = Msg;

    fn receive<'r>(
        &mut self,
        ctx: &mut Context<'_>,
        region: &'r Region,
        room: &'r mut Room<'r>,
        msg: Msg,
    ) {
        match msg {
            Msg::Post { text, sent } => {
                room.lines.push(region.alloc_str(&text));
                room.bytes += text.len();
                let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                room.latencies.push(micros);
                for other in &self.others {
                    let fwd = Msg::Post {
                        text: text.clone(),
                        sent,
                    };
                    if other.tell(fwd).is_ok() {
                        self.forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Msg::Read(reply) => {
                let from = room.lines.len().saturating_sub(READ_LINES);
                let recent = &room.lines[from..];
                reply.send(Iso::new(|r| {
                    recent.iter().map(|l| &*r.alloc_str(l)).collect()
                }));
            }
            Msg::Compress(reply) => {
                // Copy the transcript into a region of its own and move it
                // to a job: the room goes on serving while the job runs.
                let lines = &room.lines;
                let copy = Iso::<LinesF>::new(|r| lines.iter().map(|l| &*r.alloc_str(l)).collect());
                let _started = ctx.spawner().execute(move || {
                    let mut copy = copy;
                    reply.send(copy.with(|_, lines| compress(lines)));
                });
            }
            Msg::Stats(reply) => reply.send(RoomStats {
                lines: room.lines.len(),
                bytes: room.bytes,
                capacity: region.capacity(),
                latencies: std::mem::take(&mut room.latencies),
            }),
        }
    }
}

/// A small greedy LZ77 (window [`WINDOW`], matches of 4 to 255 bytes):
/// returns the input and output sizes. Deliberately CPU-heavy.
fn compress(lines: &[&str]) -> Compressed {
    let text: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.bytes().chain([b'\n']))
        .collect();
    let mut out = 0usize;
    let mut i = 0;
    while i < text.len() {
        let start = i.saturating_sub(WINDOW);
        let (mut best, mut best_len) = (0, 0);
        for j in start..i {
            let mut len = 0;
            while i + len < text.len() && len < 255 && text[j + len] == text[i + len] {
                len += 1;
            }
            if len > best_len {
                (best, best_len) = (j, len);
            }
        }
        if best_len >= 4 {
            out += 3; // (distance, length)
            i += best_len;
            let _ = best;
        } else {
            out += 1;
            i += 1;
        }
    }
    Compressed {
        input: text.len(),
        output: out,
    }
}

/// A xorshift generator, so the run needs no crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size (VmHWM) in KiB.
fn peak_rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentiles(name: &str, mut v: Vec<u32>) {
    if v.is_empty() {
        return;
    }
    v.sort_unstable();
    let at = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
    println!(
        "{name:<28} n={:<8} p50={:>6} us  p90={:>6} us  p99={:>6} us  max={:>7} us",
        v.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        v[v.len() - 1]
    );
}

fn main() {
    let clients = env("CHAT_CLIENTS", 6);
    let ops = env("CHAT_OPS", 20_000);
    let workers = env("CHAT_WORKERS", 4);
    static FORWARDED: AtomicU64 = AtomicU64::new(0);

    // Print once first, so stdout's buffer is part of the baseline.
    println!("chat_rooms: starting");
    homing::collect();
    let baseline = homing::stats().live_bytes;
    let start = Instant::now();
    {
        let pool = Pool::new(workers);
        let new_room = |others: Vec<ActorRef<Msg>>| {
            pool.spawn(
                RoomActor {
                    others,
                    forwarded: &FORWARDED,
                },
                Iso::new(|_| Room {
                    lines: Vec::new(),
                    bytes: 0,
                    latencies: Vec::new(),
                }),
            )
        };
        let mut rooms: Vec<ActorRef<Msg>> = (1..ROOMS).map(|_| new_room(Vec::new())).collect();
        rooms.insert(BROADCAST, new_room(rooms.clone()));

        let peak_region_bytes = AtomicU64::new(0);
        let (posts, reads, read_lat, compress_lat, compressed) = std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    let rooms = &rooms;
                    let peak = &peak_region_bytes;
                    s.spawn(move || {
                        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((c as u64 + 1) * 0x1000_0001));
                        let (mut posts, mut reads) = (0u64, 0u64);
                        let mut read_lat = Vec::new();
                        for op in 0..ops {
                            let room = if rng.below(100) == 0 {
                                BROADCAST
                            } else {
                                1 + rng.below(ROOMS - 1)
                            };
                            if op % 10 == 9 {
                                let t = Instant::now();
                                let mut lines = rooms[room].ask(Msg::Read).wait().unwrap();
                                assert!(lines.with(|_, l| l.len()) <= READ_LINES);
                                read_lat.push(t.elapsed().as_micros() as u32);
                                reads += 1;
                            } else {
                                let text = format!("client {c} says {op}: {}", rng.next() % 1000);
                                let msg = Msg::Post {
                                    text: Shared::new(text),
                                    sent: Instant::now(),
                                };
                                assert!(rooms[room].tell(msg).is_ok());
                                posts += 1;
                            }
                            if op % 1000 == 0 {
                                collect(); // finish our `Shared` lines released by rooms
                                let held = live_chunk_bytes() as u64;
                                peak.fetch_max(held, Ordering::Relaxed);
                            }
                        }
                        // Offload two compressions and wait for them.
                        let mut compress_lat = Vec::new();
                        let mut results = Vec::new();
                        for _ in 0..2 {
                            let t = Instant::now();
                            let room = 1 + rng.below(ROOMS - 1);
                            results.push(rooms[room].ask(Msg::Compress).wait().unwrap());
                            compress_lat.push(t.elapsed().as_micros() as u32);
                        }
                        (posts, reads, read_lat, compress_lat, results)
                    })
                })
                .collect();
            let mut totals = (0, 0, Vec::new(), Vec::new(), Vec::new());
            for h in handles {
                let (p, r, rl, cl, res) = h.join().unwrap();
                totals.0 += p;
                totals.1 += r;
                totals.2.extend(rl);
                totals.3.extend(cl);
                totals.4.extend(res);
            }
            totals
        });
        let elapsed = start.elapsed();

        // Gather the rooms' figures, then stop them: each region goes whole.
        let mut lines = 0;
        let mut bytes = 0;
        let mut capacity = 0;
        let mut post_lat = Vec::new();
        for room in &rooms {
            let st = room.ask(Msg::Stats).wait().unwrap();
            lines += st.lines;
            bytes += st.bytes;
            capacity += st.capacity;
            post_lat.extend(st.latencies);
        }
        let held_before_stop = live_chunk_bytes();
        let stats_running = homing::stats();
        for room in &rooms {
            room.stop().wait().unwrap();
        }
        drop(rooms);
        pool.shutdown();

        let forwarded = FORWARDED.load(Ordering::Relaxed);
        println!(
            "chat_rooms: {ROOMS} rooms, {clients} clients x {ops} ops, {workers} workers, {:.2} s",
            elapsed.as_secs_f64()
        );
        println!(
            "messages: {posts} posts, {forwarded} broadcast forwards, {reads} reads, {} compressions; {:.0} msgs/s",
            compressed.len(),
            (posts + forwarded + reads) as f64 / elapsed.as_secs_f64()
        );
        assert_eq!(
            lines as u64,
            posts + forwarded,
            "every post and forward delivered once"
        );
        let (cin, cout) = compressed
            .iter()
            .fold((0, 0), |(i, o), c| (i + c.input, o + c.output));
        println!("compression: {cin} bytes -> {cout} bytes");
        percentiles("post -> handled", post_lat);
        percentiles("read (ask round trip)", read_lat);
        percentiles("compress (ask + job)", compress_lat);
        println!(
            "memory: {lines} lines, {} KiB of text in {} KiB of region chunks (peak seen {} KiB); \
             homing live {} KiB, mapped {} MiB; peak RSS {} MiB",
            bytes >> 10,
            capacity >> 10,
            held_before_stop.max(peak_region_bytes.load(Ordering::Relaxed) as usize) >> 10,
            stats_running.live_bytes >> 10,
            stats_running.os_mapped >> 20,
            peak_rss_kib() >> 10
        );
    }
    // Everything is dropped: the rooms' regions, the lines, the pool.
    collect();
    homing::collect();
    std::thread::sleep(Duration::from_millis(20));
    homing::collect();
    let held = live_chunk_bytes();
    let live = homing::stats().live_bytes;
    println!(
        "after: region chunks held {held} B; homing live bytes {live} B (baseline {baseline} B, {:+} B)",
        live as i64 - baseline as i64
    );
    assert_eq!(held, 0, "a region was not released");
    // Nothing may stay: `Shared` thread records come from a static table
    // and are recycled (see homing-deferred's `record`), not from the heap.
    assert_eq!(
        live,
        baseline,
        "live bytes did not come back to baseline ({:+} B)",
        live as i64 - baseline as i64
    );
}
