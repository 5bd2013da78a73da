//! The actor workloads, each written three ways: homing's actors
//! (`homing_regions::actor`), `std::thread` + `crossbeam-channel`, and tokio
//! tasks + `tokio::sync::mpsc` (multi-threaded runtime). Each system is
//! built once per benchmark and driven by the bench thread; an iteration is
//! one full run of the workload. The three alternate within each group.
//!
//! - **ping-pong**: two parties bounce a counter [`PING_PONG`] times.
//! - **thread-ring**: [`RING`] parties in a ring pass a token [`HOPS`] times.
//! - **fan-out/fan-in**: the bench thread sends [`FAN`] messages round-robin
//!   to [`FAN_WORKERS`] workers, which forward a result each to one
//!   collector; the run ends when the collector has them all.
//!
//! Peak RSS: before the first measured run of each system the kernel's
//! high-water mark is reset (`/proc/self/clear_refs`), one run is made, and
//! the growth of `VmHWM` over the RSS before it is printed.

use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use homing_regions::actor::{Actor, ActorRef, Context, Pool};
use homing_regions::{Family, Iso, Region};

/// Round trips of the ping-pong.
pub const PING_PONG: u32 = 20_000;
/// Parties in the thread-ring (Savina's classic 100... here as actors,
/// threads, or tasks).
pub const RING: usize = 100;
/// Hops of the token around the ring.
pub const HOPS: u32 = 100_000;
/// Messages of the fan-out (and as many results of the fan-in).
pub const FAN: u64 = 1_000_000;
/// Workers of the fan-out.
pub const FAN_WORKERS: usize = 4;

pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
}

/// Worker threads of the actor pool and of the tokio runtime.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `(VmRSS, VmHWM)` in KiB.
fn rss_hwm() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs `run` once with the high-water mark reset, and prints its growth.
fn peak_rss(label: &str, run: &mut dyn FnMut()) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (before, _) = rss_hwm();
    run();
    let (_, hwm) = rss_hwm();
    eprintln!(
        "peak-rss {label}: +{} KiB over {} KiB",
        hwm.saturating_sub(before),
        before
    );
}

fn bench(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    name: &str,
    mut run: impl FnMut(),
) {
    peak_rss(&format!("{label}/{name}"), &mut run);
    group.bench_function(name, |b| b.iter(&mut run));
}

/// Actors here keep no region state.
struct NoState;
impl Family for NoState {
    type Of<'r> = ();
}

fn spawn<A: Actor<State = NoState>>(pool: &Pool, a: A) -> ActorRef<A::Msg> {
    pool.spawn(a, Iso::new(|_| ()))
}

// ---------------------------------------------------------------- ping-pong

enum Pp {
    Peer(ActorRef<Pp>),
    Start(u32),
    Ball(u32),
}

struct PpActor {
    peer: Option<ActorRef<Pp>>,
    done: Option<Sender<()>>,
}

impl Actor for PpActor {
    type State = NoState;
    type Msg = Pp;
    fn receive<'r>(&mut self, _: &mut Context<'_>, _: &'r Region, _: &'r mut (), msg: Pp) {
        fn peer(s: &PpActor) -> &ActorRef<Pp> {
            s.peer.as_ref().expect("peer set")
        }
        match msg {
            Pp::Peer(p) => self.peer = Some(p),
            Pp::Start(n) => {
                let _ = peer(self).tell(Pp::Ball(n));
            }
            Pp::Ball(0) => match &self.done {
                Some(d) => d.send(()).unwrap(),
                None => {
                    let _ = peer(self).tell(Pp::Ball(0));
                }
            },
            Pp::Ball(k) => {
                let next = if self.done.is_some() { k - 1 } else { k };
                let _ = peer(self).tell(Pp::Ball(next));
            }
        }
    }
}

fn ping_pong(c: &mut Criterion, label: &str) {
    let mut group = c.benchmark_group(format!("{label}/ping-pong"));
    group.throughput(Throughput::Elements(2 * PING_PONG as u64));
    for round in 0..2 {
        {
            let pool = Pool::new(threads());
            let (tx, rx) = bounded(1);
            let a = spawn(
                &pool,
                PpActor {
                    peer: None,
                    done: Some(tx),
                },
            );
            let b = spawn(
                &pool,
                PpActor {
                    peer: None,
                    done: None,
                },
            );
            let _ = a.tell(Pp::Peer(b.clone()));
            let _ = b.tell(Pp::Peer(a.clone()));
            bench(&mut group, label, &format!("homing-actors/{round}"), || {
                let _ = a.tell(Pp::Start(PING_PONG));
                rx.recv().unwrap();
            });
            let _ = a.stop().wait();
            let _ = b.stop().wait();
        }
        {
            let (start_tx, start_rx) = unbounded::<u32>();
            let (to_b, b_rx) = unbounded::<u32>();
            let (to_a, a_rx) = unbounded::<u32>();
            let (done_tx, done_rx) = bounded::<()>(1);
            let ta = std::thread::spawn(move || {
                while let Ok(n) = start_rx.recv() {
                    to_b.send(n).unwrap();
                    loop {
                        let k = a_rx.recv().unwrap();
                        if k == 0 {
                            done_tx.send(()).unwrap();
                            break;
                        }
                        to_b.send(k - 1).unwrap();
                    }
                }
            });
            let tb = std::thread::spawn(move || {
                while let Ok(k) = b_rx.recv() {
                    if to_a.send(k).is_err() {
                        break;
                    }
                }
            });
            bench(
                &mut group,
                label,
                &format!("threads+crossbeam/{round}"),
                || {
                    start_tx.send(PING_PONG).unwrap();
                    done_rx.recv().unwrap();
                },
            );
            drop(start_tx);
            ta.join().unwrap();
            tb.join().unwrap();
        }
        {
            let rt = tokio_runtime();
            let (start_tx, mut start_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let (to_b, mut b_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let (to_a, mut a_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let (done_tx, done_rx) = bounded::<()>(1);
            rt.spawn(async move {
                while let Some(n) = start_rx.recv().await {
                    to_b.send(n).unwrap();
                    loop {
                        let k = a_rx.recv().await.unwrap();
                        if k == 0 {
                            done_tx.send(()).unwrap();
                            break;
                        }
                        to_b.send(k - 1).unwrap();
                    }
                }
            });
            rt.spawn(async move {
                while let Some(k) = b_rx.recv().await {
                    if to_a.send(k).is_err() {
                        break;
                    }
                }
            });
            bench(&mut group, label, &format!("tokio/{round}"), || {
                start_tx.send(PING_PONG).unwrap();
                done_rx.recv().unwrap();
            });
            drop(start_tx);
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
    group.finish();
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads())
        .build()
        .expect("a tokio runtime")
}

// -------------------------------------------------------------- thread-ring

enum Ring {
    Next(ActorRef<Ring>),
    Token(u32),
}

struct RingActor {
    next: Option<ActorRef<Ring>>,
    done: Sender<()>,
}

impl Actor for RingActor {
    type State = NoState;
    type Msg = Ring;
    fn receive<'r>(&mut self, _: &mut Context<'_>, _: &'r Region, _: &'r mut (), msg: Ring) {
        match msg {
            Ring::Next(n) => self.next = Some(n),
            Ring::Token(0) => self.done.send(()).unwrap(),
            Ring::Token(k) => {
                let _ = self
                    .next
                    .as_ref()
                    .expect("next set")
                    .tell(Ring::Token(k - 1));
            }
        }
    }
}

fn thread_ring(c: &mut Criterion, label: &str) {
    let mut group = c.benchmark_group(format!("{label}/thread-ring"));
    group.throughput(Throughput::Elements(HOPS as u64));
    for round in 0..2 {
        {
            let pool = Pool::new(threads());
            let (tx, rx) = bounded(1);
            let ring: Vec<_> = (0..RING)
                .map(|_| {
                    spawn(
                        &pool,
                        RingActor {
                            next: None,
                            done: tx.clone(),
                        },
                    )
                })
                .collect();
            for (i, a) in ring.iter().enumerate() {
                let _ = a.tell(Ring::Next(ring[(i + 1) % RING].clone()));
            }
            bench(&mut group, label, &format!("homing-actors/{round}"), || {
                let _ = ring[0].tell(Ring::Token(HOPS));
                rx.recv().unwrap();
            });
            for a in &ring {
                let _ = a.stop().wait();
            }
        }
        {
            let (done_tx, done_rx) = bounded::<()>(1);
            let chans: Vec<_> = (0..RING).map(|_| unbounded::<u32>()).collect();
            let first = chans[0].0.clone();
            let handles: Vec<_> = (0..RING)
                .map(|i| {
                    let rx: Receiver<u32> = chans[i].1.clone();
                    let next = chans[(i + 1) % RING].0.clone();
                    let done = done_tx.clone();
                    std::thread::spawn(move || {
                        while let Ok(k) = rx.recv() {
                            if k == u32::MAX {
                                let _ = next.send(u32::MAX);
                                break;
                            }
                            if k == 0 {
                                done.send(()).unwrap();
                            } else {
                                next.send(k - 1).unwrap();
                            }
                        }
                    })
                })
                .collect();
            drop(chans);
            bench(
                &mut group,
                label,
                &format!("threads+crossbeam/{round}"),
                || {
                    first.send(HOPS).unwrap();
                    done_rx.recv().unwrap();
                },
            );
            first.send(u32::MAX).unwrap(); // a stop token goes round once
            for h in handles {
                h.join().unwrap();
            }
        }
        {
            let rt = tokio_runtime();
            let (done_tx, done_rx) = bounded::<()>(1);
            let mut txs = Vec::new();
            let mut rxs = Vec::new();
            for _ in 0..RING {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
                txs.push(tx);
                rxs.push(rx);
            }
            for (i, mut rx) in rxs.into_iter().enumerate() {
                let next = txs[(i + 1) % RING].clone();
                let done = done_tx.clone();
                rt.spawn(async move {
                    while let Some(k) = rx.recv().await {
                        if k == 0 {
                            done.send(()).unwrap();
                        } else if next.send(k - 1).is_err() {
                            break;
                        }
                    }
                });
            }
            let first = txs[0].clone();
            drop(txs);
            bench(&mut group, label, &format!("tokio/{round}"), || {
                first.send(HOPS).unwrap();
                done_rx.recv().unwrap();
            });
            drop(first);
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
    group.finish();
}

// ----------------------------------------------------------- fan-out/fan-in

enum Fan {
    Work(u64),
}

struct FanWorker {
    collector: ActorRef<Collect>,
}

impl Actor for FanWorker {
    type State = NoState;
    type Msg = Fan;
    fn receive<'r>(&mut self, _: &mut Context<'_>, _: &'r Region, _: &'r mut (), msg: Fan) {
        let Fan::Work(x) = msg;
        let _ = self.collector.tell(Collect::Result(x.wrapping_mul(2) + 1));
    }
}

enum Collect {
    Result(u64),
}

struct Collector {
    seen: u64,
    sum: u64,
    done: Sender<u64>,
}

impl Actor for Collector {
    type State = NoState;
    type Msg = Collect;
    fn receive<'r>(&mut self, _: &mut Context<'_>, _: &'r Region, _: &'r mut (), msg: Collect) {
        let Collect::Result(v) = msg;
        self.seen += 1;
        self.sum = self.sum.wrapping_add(v);
        if self.seen == FAN {
            self.done.send(self.sum).unwrap();
            self.seen = 0;
            self.sum = 0;
        }
    }
}

/// What the collector must add up to.
fn fan_sum() -> u64 {
    (0..FAN).fold(0u64, |s, x| s.wrapping_add(x.wrapping_mul(2) + 1))
}

fn fan(c: &mut Criterion, label: &str) {
    let mut group = c.benchmark_group(format!("{label}/fan-out-in-1M"));
    group.throughput(Throughput::Elements(FAN));
    let expect = fan_sum();
    for round in 0..2 {
        {
            let pool = Pool::new(threads());
            let (tx, rx) = bounded(1);
            let collector = spawn(
                &pool,
                Collector {
                    seen: 0,
                    sum: 0,
                    done: tx,
                },
            );
            let workers: Vec<_> = (0..FAN_WORKERS)
                .map(|_| {
                    spawn(
                        &pool,
                        FanWorker {
                            collector: collector.clone(),
                        },
                    )
                })
                .collect();
            bench(&mut group, label, &format!("homing-actors/{round}"), || {
                for x in 0..FAN {
                    let _ = workers[x as usize % FAN_WORKERS].tell(Fan::Work(x));
                }
                assert_eq!(rx.recv().unwrap(), expect);
            });
            for w in &workers {
                let _ = w.stop().wait();
            }
            let _ = collector.stop().wait();
        }
        {
            let (res_tx, res_rx) = unbounded::<u64>();
            let (done_tx, done_rx) = bounded::<u64>(1);
            let collector = std::thread::spawn(move || {
                let (mut seen, mut sum) = (0, 0u64);
                while let Ok(v) = res_rx.recv() {
                    seen += 1;
                    sum = sum.wrapping_add(v);
                    if seen == FAN {
                        done_tx.send(sum).unwrap();
                        (seen, sum) = (0, 0);
                    }
                }
            });
            let (txs, handles): (Vec<_>, Vec<_>) = (0..FAN_WORKERS)
                .map(|_| {
                    let (tx, rx) = unbounded::<u64>();
                    let out = res_tx.clone();
                    let h = std::thread::spawn(move || {
                        while let Ok(x) = rx.recv() {
                            out.send(x.wrapping_mul(2) + 1).unwrap();
                        }
                    });
                    (tx, h)
                })
                .unzip();
            drop(res_tx);
            bench(
                &mut group,
                label,
                &format!("threads+crossbeam/{round}"),
                || {
                    for x in 0..FAN {
                        txs[x as usize % FAN_WORKERS].send(x).unwrap();
                    }
                    assert_eq!(done_rx.recv().unwrap(), expect);
                },
            );
            drop(txs);
            for h in handles {
                h.join().unwrap();
            }
            collector.join().unwrap();
        }
        {
            let rt = tokio_runtime();
            let (res_tx, mut res_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            let (done_tx, done_rx) = bounded::<u64>(1);
            rt.spawn(async move {
                let (mut seen, mut sum) = (0, 0u64);
                while let Some(v) = res_rx.recv().await {
                    seen += 1;
                    sum = sum.wrapping_add(v);
                    if seen == FAN {
                        done_tx.send(sum).unwrap();
                        (seen, sum) = (0, 0);
                    }
                }
            });
            let txs: Vec<_> = (0..FAN_WORKERS)
                .map(|_| {
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
                    let out = res_tx.clone();
                    rt.spawn(async move {
                        while let Some(x) = rx.recv().await {
                            if out.send(x.wrapping_mul(2) + 1).is_err() {
                                break;
                            }
                        }
                    });
                    tx
                })
                .collect();
            drop(res_tx);
            bench(&mut group, label, &format!("tokio/{round}"), || {
                for x in 0..FAN {
                    txs[x as usize % FAN_WORKERS].send(x).unwrap();
                }
                assert_eq!(done_rx.recv().unwrap(), expect);
            });
            drop(txs);
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
    group.finish();
}

/// Every workload, labelled with the global allocator.
fn all(c: &mut Criterion, label: &str) {
    ping_pong(c, label);
    thread_ring(c, label);
    fan(c, label);
}

#[allow(dead_code)] // each bench binary uses one of the two
pub fn all_homing(c: &mut Criterion) {
    all(c, "actors-homing");
}

#[allow(dead_code)]
pub fn all_system(c: &mut Criterion) {
    all(c, "actors-system");
}
