//! Actors: every message delivered exactly once and in order per sender; an
//! actor never runs on two workers at once; stopping drops the region whole;
//! `ask` answers blocking and awaited; region data lives across `.await` in
//! a `Send` future.
#![cfg(not(loom))]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};

use homing_deferred::Shared;
use homing_regions::actor::{Actor, Canceled, Context, Pool, Reply};
use homing_regions::{Family, Iso, Region, String as RString};

const SENDERS: usize = 4;
fn per_sender() -> usize {
    if cfg!(miri) {
        30
    } else {
        20_000
    }
}

/// Records, per sender, the sequence numbers it got, in the actor's region.
struct Recorder {
    /// Set while a handler of this actor runs: two at once is a failure.
    running: Arc<AtomicBool>,
    overlaps: Arc<AtomicUsize>,
}

/// Per sender, the numbers received, each a value in the region (the
/// root's vectors hold references into it).
struct SeqsF;
impl Family for SeqsF {
    type Of<'r> = Vec<Vec<&'r u32>>;
}

enum Msg {
    Seq(usize, u32),
    /// A shared value: only its contents are read.
    Note(Shared<u64>),
    /// A region moved in from the sender (read, then dropped whole there).
    Gift(Iso<GiftF>),
    Dump(Reply<Vec<Vec<u32>>>),
}

struct GiftF;
impl Family for GiftF {
    type Of<'r> = &'r mut u64;
}

impl Actor for Recorder {
    type State = SeqsF;
    type Msg = Msg;

    fn receive<'r>(
        &mut self,
        _ctx: &mut Context<'_>,
        region: &'r Region,
        seqs: &'r mut Vec<Vec<&'r u32>>,
        msg: Msg,
    ) {
        if self.running.swap(true, Ordering::AcqRel) {
            self.overlaps.fetch_add(1, Ordering::Relaxed);
        }
        match msg {
            Msg::Seq(sender, n) => {
                while seqs.len() <= sender {
                    seqs.push(Vec::new());
                }
                seqs[sender].push(region.alloc(n));
            }
            Msg::Note(shared) => assert_eq!(*shared, 99),
            Msg::Gift(mut gift) => assert_eq!(gift.with(|_, v| **v), 7),
            Msg::Dump(reply) => reply.send(
                seqs.iter()
                    .map(|v| v.iter().map(|&&n| n).collect())
                    .collect(),
            ),
        }
        self.running.store(false, Ordering::Release);
    }
}

#[test]
fn exactly_once_in_order_per_sender_and_never_on_two_workers() {
    let pool = Pool::new(3);
    let running = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let actor = pool.spawn(
        Recorder {
            running: Arc::clone(&running),
            overlaps: Arc::clone(&overlaps),
        },
        Iso::new(|_| Vec::new()),
    );
    let n = per_sender();
    std::thread::scope(|s| {
        for sender in 0..SENDERS {
            let actor = actor.clone();
            s.spawn(move || {
                let shared = Shared::new(99u64);
                for i in 0..n as u32 {
                    assert!(actor.tell(Msg::Seq(sender, i)).is_ok());
                    if i % 1000 == 0 {
                        assert!(actor.tell(Msg::Note(shared.clone())).is_ok());
                        let gift = Iso::<GiftF>::new(|r| r.alloc(7u64));
                        assert!(actor.tell(Msg::Gift(gift)).is_ok());
                    }
                }
            });
        }
    });
    let got = actor.ask(Msg::Dump).wait().unwrap();
    assert_eq!(got.len(), SENDERS);
    for (sender, seqs) in got.iter().enumerate() {
        assert_eq!(seqs.len(), n, "sender {sender}: lost or duplicated");
        assert!(
            seqs.iter().enumerate().all(|(i, &s)| s == i as u32),
            "sender {sender}: out of order"
        );
    }
    assert_eq!(
        overlaps.load(Ordering::Relaxed),
        0,
        "ran on two workers at once"
    );
    actor.stop().wait().unwrap();
}

/// Many actors on few workers, each a counter, all fed at once: the guard
/// per actor catches any double scheduling.
#[test]
fn many_actors_each_run_alone() {
    struct Counter {
        running: Arc<AtomicBool>,
        overlaps: Arc<AtomicUsize>,
    }
    struct CountF;
    impl Family for CountF {
        type Of<'r> = &'r mut u64;
    }
    enum CMsg {
        Add,
        Get(Reply<u64>),
    }
    impl Actor for Counter {
        type State = CountF;
        type Msg = CMsg;
        fn receive<'r>(
            &mut self,
            _: &mut Context<'_>,
            _: &'r Region,
            n: &'r mut &'r mut u64,
            msg: CMsg,
        ) {
            if self.running.swap(true, Ordering::AcqRel) {
                self.overlaps.fetch_add(1, Ordering::Relaxed);
            }
            match msg {
                CMsg::Add => **n += 1,
                CMsg::Get(r) => r.send(**n),
            }
            self.running.store(false, Ordering::Release);
        }
    }
    let pool = Pool::new(4);
    let overlaps = Arc::new(AtomicUsize::new(0));
    let actors: Vec<_> = (0..16)
        .map(|_| {
            pool.spawn(
                Counter {
                    running: Arc::new(AtomicBool::new(false)),
                    overlaps: Arc::clone(&overlaps),
                },
                Iso::new(|r| r.alloc(0u64)),
            )
        })
        .collect();
    let rounds = if cfg!(miri) { 10 } else { 5_000 };
    std::thread::scope(|s| {
        for _ in 0..3 {
            let actors = &actors;
            s.spawn(move || {
                for _ in 0..rounds {
                    for a in actors {
                        assert!(a.tell(CMsg::Add).is_ok());
                    }
                }
            });
        }
    });
    for a in &actors {
        assert_eq!(a.ask(CMsg::Get).wait(), Ok(3 * rounds as u64));
    }
    assert_eq!(overlaps.load(Ordering::Relaxed), 0);
}

/// Dropped when the actor's region is.
struct Witness(Arc<AtomicUsize>);
impl Drop for Witness {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Keeper;
struct WitnessF;
impl Family for WitnessF {
    type Of<'r> = &'r mut Witness;
}
enum KMsg {
    Ping(Reply<()>),
    Quit,
}
impl Actor for Keeper {
    type State = WitnessF;
    type Msg = KMsg;
    fn receive<'r>(
        &mut self,
        ctx: &mut Context<'_>,
        _: &'r Region,
        _: &'r mut &'r mut Witness,
        msg: KMsg,
    ) {
        match msg {
            KMsg::Ping(r) => r.send(()),
            KMsg::Quit => ctx.stop(),
        }
    }
}

#[test]
fn stop_drops_the_region_and_refuses_later_messages() {
    let pool = Pool::new(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&drops);
    let a = pool.spawn(Keeper, Iso::new(move |r| r.alloc(Witness(d))));
    assert_eq!(a.ask(KMsg::Ping).wait(), Ok(()));
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    a.stop().wait().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1, "region dropped at stop");
    assert!(a.is_stopped());
    assert!(a.tell(KMsg::Quit).is_err());
    assert_eq!(a.ask(KMsg::Ping).wait(), Err(Canceled));

    // Stopping from inside the handler.
    let d = Arc::clone(&drops);
    let b = pool.spawn(Keeper, Iso::new(move |r| r.alloc(Witness(d))));
    assert!(b.tell(KMsg::Quit).is_ok());
    b.stop().wait().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// A minimal executor: polls a future on this thread, parking in between.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread, AtomicBool);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.1.store(true, Ordering::Release);
            self.0.unpark();
        }
    }
    let unpark = Arc::new(Unpark(std::thread::current(), AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = TaskContext::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        while !unpark.1.swap(false, Ordering::Acquire) {
            std::thread::park();
        }
    }
}

/// Yields once (`Pending`, waking itself) so a future really suspends.
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[test]
fn ask_can_be_awaited_with_region_data_held_across_the_await() {
    let pool = Pool::new(2);
    let d = Arc::new(AtomicUsize::new(0));
    let a = pool.spawn(
        Keeper,
        Iso::new({
            let d = Arc::clone(&d);
            move |r| r.alloc(Witness(d))
        }),
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let log = Arc::clone(&log);
        // An owned region: the future holding it is Send, so it could be a
        // spawned task on a multi-threaded executor.
        assert_send(async move {
            let mut line = RString::new_in(Region::new());
            line.push_str("before");
            YieldOnce(false).await;
            a.ask(KMsg::Ping).await.unwrap();
            line.push_str(", after");
            log.lock().unwrap().push(line.as_str().to_owned());
            a.stop().await.unwrap();
        })
    };
    std::thread::spawn(move || block_on(task)).join().unwrap();
    assert_eq!(*log.lock().unwrap(), ["before, after"]);
    assert_eq!(d.load(Ordering::SeqCst), 1);
}

#[test]
fn jobs_take_an_iso_and_answer() {
    struct NumsF;
    impl Family for NumsF {
        type Of<'r> = &'r [u64];
    }
    let pool = Pool::new(2);
    let data = Iso::<NumsF>::new(|r| &*r.alloc_slice_fill_with(1000, |i| i as u64));
    let sum = pool.run(move || {
        let mut data = data;
        data.with(|_, nums| nums.iter().sum::<u64>())
    });
    assert_eq!(block_on(sum), Ok(999 * 1000 / 2));
}
