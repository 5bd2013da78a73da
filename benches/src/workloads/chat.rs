//! `chat`: the chat service of `regions/examples/chat_rooms.rs` as a
//! workload: actors on regions, shared lines, offloaded compression.
//!
//! [`ROOMS`] room actors on a pool of [`WORKERS`] worker threads, each room
//! keeping its transcript in its own region (an `Iso`). `threads` client
//! threads post lines (a `Shared<String>` of random length in
//! `min_size..=max_size`, made on the client and released wherever the last
//! room drops it) to random rooms, and every tenth operation read the
//! latest lines of one (the room answers with a new `Iso` holding a copy).
//! One post in a hundred goes to the broadcast room, which forwards the
//! same `Shared` to the other rooms. At the end each client offloads the
//! compression of a room's latest lines: the room moves a copy into an `Iso`
//! and hands it to a job on the pool, and the client waits for the result.
//! Every allocation goes to the global allocator: the lines, the mailboxes'
//! blocks, the regions' first chunks, the copies.
//!
//! Parameters: `threads` (clients), `min_size`/`max_size` (line lengths),
//! `work` = client operations in total. It prints `msgs_per_s=` (posts,
//! forwards and reads per second) on a line of its own before the report.
//! Checksum: the bytes posted, plus the lines the rooms hold at the end
//! (posts and forwards, each delivered once), plus the compressions: the
//! same for every allocator (what reads return depends on timing, so it is
//! not part of it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use homing_deferred::{collect, Shared};
use homing_regions::actor::{Actor, ActorRef, Context, Pool, Reply};
use homing_regions::{Family, Iso, Region};

use super::{share, Params, Workload, DEFAULT_SEED};
use crate::rng::Rng;

/// Room actors, the broadcast room included.
pub const ROOMS: usize = 100;

/// The broadcast room's index.
const BROADCAST: usize = 0;

/// Worker threads running the rooms and the compression jobs.
pub const WORKERS: usize = 2;

/// Lines a read returns at most.
const READ_LINES: usize = 20;

/// LZ77 window of the compression job, in bytes.
const WINDOW: usize = 512;

/// Lines of the transcript (the latest) a compression job gets.
const COMPRESS_LINES: usize = 256;

/// The registry entry: name, summary and the defaults of a full run on a
/// 2-core machine.
pub const WORKLOAD: Workload = Workload {
    name: "chat",
    summary: "chat service: 100 room actors on regions, client threads post Shared lines, broadcast, offloaded compression",
    run,
    defaults: Params {
        threads: 4,
        min_size: 8,
        max_size: 120,
        work: 800_000,
        seed: DEFAULT_SEED,
    },
    oversubscribed: false,
};

/// A room's state, in its region: the transcript.
struct Room<'r> {
    lines: Vec<&'r str>,
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
    Post(Shared<String>),
    Read(Reply<Iso<LinesF>>),
    Compress(Reply<usize>),
    Lines(Reply<usize>),
}

struct RoomActor {
    /// The other rooms, for the broadcast room; empty for the others.
    others: Vec<ActorRef<Msg>>,
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
            Msg::Post(text) => {
                room.lines.push(region.alloc_str(&text));
                for other in &self.others {
                    // A stopped room refuses; none is stopped while clients run.
                    let _ = other.tell(Msg::Post(text.clone()));
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
                let lines = &room.lines[room.lines.len().saturating_sub(COMPRESS_LINES)..];
                let copy = Iso::<LinesF>::new(|r| lines.iter().map(|l| &*r.alloc_str(l)).collect());
                let _ = ctx.spawner().execute(move || {
                    let mut copy = copy;
                    reply.send(copy.with(|_, lines| compressed_size(lines)));
                });
            }
            Msg::Lines(reply) => reply.send(room.lines.len()),
        }
    }
}

/// A small greedy LZ77 over the lines (window [`WINDOW`]): the output
/// size in bytes. CPU-heavy on purpose.
fn compressed_size(lines: &[&str]) -> usize {
    let text: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.bytes().chain([b'\n']))
        .collect();
    let (mut out, mut i) = (0, 0);
    while i < text.len() {
        let mut best = 0;
        for j in i.saturating_sub(WINDOW)..i {
            let mut len = 0;
            while i + len < text.len() && len < 255 && text[j + len] == text[i + len] {
                len += 1;
            }
            best = best.max(len);
        }
        if best >= 4 {
            out += 3;
            i += best;
        } else {
            out += 1;
            i += 1;
        }
    }
    out
}

/// A line of exactly `len` bytes (printable, from `rng`).
fn line(rng: &mut Rng, client: usize, len: usize) -> String {
    let mut s = String::with_capacity(len);
    s.push_str(&format!("c{client}:"));
    while s.len() < len {
        s.push((b'a' + rng.below(26) as u8) as char);
    }
    s.truncate(len);
    s
}

/// What one client thread did.
#[derive(Default)]
struct Client {
    posts: u64,
    broadcasts: u64,
    reads: u64,
    bytes: u64,
    compressions: u64,
}

fn client(p: &Params, index: usize, rooms: &[ActorRef<Msg>]) -> Client {
    let mut rng = Rng::for_thread(p.seed, index as u64);
    let mut c = Client::default();
    for op in 0..share(p.work, p.threads, index) {
        let room = if rng.percent(1) {
            BROADCAST
        } else {
            1 + rng.index(ROOMS - 1)
        };
        if op % 10 == 9 {
            let mut lines = rooms[room].ask(Msg::Read).wait().expect("room alive");
            assert!(lines.with(|_, l| l.len()) <= READ_LINES);
            c.reads += 1;
        } else {
            let len = rng.range_inclusive(p.min_size, p.max_size);
            let text = line(&mut rng, index, len);
            c.bytes += text.len() as u64;
            c.posts += 1;
            c.broadcasts += u64::from(room == BROADCAST);
            assert!(rooms[room].tell(Msg::Post(Shared::new(text))).is_ok());
        }
        if op % 256 == 255 {
            collect(); // finish our lines released by the rooms
        }
    }
    let room = 1 + rng.index(ROOMS - 1);
    rooms[room].ask(Msg::Compress).wait().expect("room alive");
    c.compressions += 1;
    c
}

/// Runs the workload; see the module documentation.
pub fn run(p: &Params) -> u64 {
    let start = Instant::now();
    let pool = Pool::new(WORKERS);
    let new_room = |others: Vec<ActorRef<Msg>>| {
        pool.spawn(
            RoomActor { others },
            Iso::new(|_| Room { lines: Vec::new() }),
        )
    };
    let mut rooms: Vec<ActorRef<Msg>> = (1..ROOMS).map(|_| new_room(Vec::new())).collect();
    rooms.insert(BROADCAST, new_room(rooms.clone()));

    let total = std::thread::scope(|s| {
        let handles: Vec<_> = (0..p.threads)
            .map(|i| {
                let rooms = &rooms;
                s.spawn(move || client(p, i, rooms))
            })
            .collect();
        let mut t = Client::default();
        for h in handles {
            let c = h.join().expect("client panicked");
            t.posts += c.posts;
            t.broadcasts += c.broadcasts;
            t.reads += c.reads;
            t.bytes += c.bytes;
            t.compressions += c.compressions;
        }
        t
    });
    // Every post and forward is in exactly one room's transcript.
    let held = AtomicU64::new(0);
    for room in &rooms {
        let n = room.ask(Msg::Lines).wait().expect("room alive");
        held.fetch_add(n as u64, Ordering::Relaxed);
    }
    let forwards = total.broadcasts * (ROOMS as u64 - 1);
    let held = held.into_inner();
    assert_eq!(held, total.posts + forwards, "a line was lost or doubled");
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "msgs_per_s={:.0}",
        (total.posts + forwards + total.reads) as f64 / elapsed
    );
    for room in &rooms {
        room.stop().wait().expect("room stops once");
    }
    drop(rooms);
    pool.shutdown();
    collect();
    total.bytes + held + total.compressions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_asked_length() {
        let mut rng = Rng::new(1);
        for len in [1, 3, 8, 120] {
            assert_eq!(line(&mut rng, 12, len).len(), len);
        }
    }

    #[test]
    fn compression_finds_repeats() {
        let lines = ["abcdabcdabcdabcd"; 8];
        let out = compressed_size(&lines);
        assert!(out < lines.len() * 17 / 2, "{out}");
        assert_eq!(compressed_size(&[]), 0);
    }
}
