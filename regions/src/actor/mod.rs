//! Actors on regions: each actor owns its state in an [`Iso`] region, takes
//! messages from a lock-free mailbox, and runs on a [`Pool`] of workers, on
//! at most one worker at a time, a batch of messages per turn.
//!
//! # Glossary
//!
//! - **Mailbox**: the actor's `crossbeam_queue::SegQueue` of envelopes
//!   (a message, or a stop request). FIFO, so messages from one sender are
//!   handled in the order it sent them.
//! - **Schedule state**: `IDLE` (nobody runs the actor and it is in no run
//!   queue) or `SCHEDULED` (it is in the run queue or a worker is running
//!   it). Whoever moves it `IDLE → SCHEDULED` queues the actor's turn, so
//!   the actor is in the run queue at most once and run by one worker at a
//!   time.
//! - **Turn**: a worker pops up to [`BATCH`] envelopes and runs the handler
//!   on each, then sets `IDLE` and, if the mailbox is not empty, tries to
//!   schedule the actor again.
//!
//! A message is any `Send + 'static` value: plain data, a
//! [`Shared<T>`](homing_deferred::Shared), a [`Frozen`](crate::Frozen)
//! region, or an [`Iso`] moved from the sender (one pointer; its region
//! changes hands, nothing is copied).
//!
//! # The lost-wake-up race
//!
//! A sender pushes, then moves the state `IDLE → SCHEDULED`; a worker ending
//! a turn stores `IDLE`, then looks at the mailbox. Both sides put a SeqCst
//! fence between their write and their read, so at least one of them sees
//! the other: the sender finds `IDLE` and schedules, or the worker finds the
//! message and schedules. A message is never left in an idle mailbox.
//!
//! # Stopping
//!
//! [`ActorRef::stop`] queues a stop request behind the messages already
//! sent; the handler can also stop its actor ([`Context::stop`]). At stop
//! the actor and its `Iso` are dropped, so its region is freed whole
//! (O(chunks), no per-object free); later messages are refused or dropped,
//! and their `Ask`s resolve to [`Canceled`].
//!
//! # Example
//!
//! A counter whose total lives in its region, driven from outside the pool:
//!
//! ```
//! use homing_regions::actor::{Actor, Context, Pool, Reply};
//! use homing_regions::{Family, Iso, Region};
//!
//! struct Counter;
//! struct CountF;
//! impl Family for CountF { type Of<'r> = u64; }
//!
//! enum Msg { Add(u64), Get(Reply<u64>) }
//!
//! impl Actor for Counter {
//!     type State = CountF;
//!     type Msg = Msg;
//!     fn receive<'r>(&mut self, _: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
//!         match msg {
//!             Msg::Add(k) => *n += k,
//!             Msg::Get(reply) => reply.send(*n),
//!         }
//!     }
//! }
//!
//! let pool = Pool::new(1);
//! let counter = pool.spawn(Counter, Iso::new(|_| 0));
//! for k in 1..=3 {
//!     counter.tell(Msg::Add(k)).ok().unwrap();
//! }
//! assert_eq!(counter.ask(Msg::Get).wait(), Ok(6)); // one sender: in order
//! counter.stop().wait().unwrap();
//! assert!(counter.is_stopped());
//! ```

mod pool;
mod reply;

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use crossbeam_queue::SegQueue;

use crate::{Family, Iso, Region};
use pool::{Task, Turn};

pub use pool::{Pool, Spawner};
pub use reply::{reply, Ask, Canceled, Reply};

/// Messages an actor handles per turn, at most: enough to amortise the
/// scheduling (one run-queue push and pop per batch), few enough that a
/// busy actor lets the others on its worker run.
///
/// ```
/// # use homing_regions::actor::{Actor, Context, Pool, Reply};
/// # use homing_regions::{Family, Iso, Region};
/// # struct Counter;
/// # struct CountF;
/// # impl Family for CountF { type Of<'r> = u64; }
/// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
/// # impl Actor for Counter {
/// #     type State = CountF;
/// #     type Msg = Msg;
/// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
/// #         match msg {
/// #             Msg::Add(k) => *n += k,
/// #             Msg::Get(reply) => reply.send(*n),
/// #             Msg::Stop => ctx.stop(),
/// #         }
/// #     }
/// # }
/// use homing_regions::actor::BATCH;
///
/// let pool = Pool::new(1);
/// let counter = pool.spawn(Counter, Iso::new(|_| 0));
/// for _ in 0..BATCH + 1 {
///     counter.tell(Msg::Add(1)).ok().unwrap();
/// }
/// // More than one turn's worth: all handled, in order, before the `Get`.
/// assert_eq!(counter.ask(Msg::Get).wait(), Ok(BATCH as u64 + 1));
/// ```
pub const BATCH: usize = 64;

const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;

/// An actor's behaviour: its message type, the [`Family`] of the state it
/// keeps in its region, and what it does with each message.
///
/// ```
/// use homing_regions::actor::{Actor, Context, Pool, Reply};
/// use homing_regions::{Family, Iso, Region};
///
/// /// A log of lines, kept in the actor's region.
/// struct Log;
/// struct LinesF;
/// impl Family for LinesF { type Of<'r> = Vec<&'r str>; }
///
/// enum Msg { Add(String), Count(Reply<usize>) }
///
/// impl Actor for Log {
///     type State = LinesF;
///     type Msg = Msg;
///     fn receive<'r>(&mut self, _: &mut Context<'_>, region: &'r Region,
///                    lines: &'r mut Vec<&'r str>, msg: Msg) {
///         match msg {
///             Msg::Add(line) => lines.push(region.alloc_str(&line)),
///             Msg::Count(reply) => reply.send(lines.len()),
///         }
///     }
/// }
///
/// let pool = Pool::new(2);
/// let log = pool.spawn(Log, Iso::new(|_| Vec::new()));
/// assert!(log.tell(Msg::Add("hello".into())).is_ok());
/// assert_eq!(log.ask(Msg::Count).wait(), Ok(1));
/// log.stop().wait().unwrap(); // the region is gone now
/// ```
pub trait Actor: Send + 'static {
    /// The root of the actor's region.
    type State: Family;
    /// What it receives.
    type Msg: Send + 'static;

    /// Handles one message, with the actor's region and its root (under the
    /// region's brand `'r`, as in [`Iso::with`]).
    fn receive<'r>(
        &mut self,
        ctx: &mut Context<'_>,
        region: &'r Region,
        state: &'r mut <Self::State as Family>::Of<'r>,
        msg: Self::Msg,
    );

    /// Called once when the actor stops, before its region is dropped.
    fn stopped<'r>(
        &mut self,
        _region: &'r Region,
        _state: &'r mut <Self::State as Family>::Of<'r>,
    ) {
    }
}

/// What a handler can do besides touching its state.
///
/// ```
/// # use homing_regions::actor::{Actor, Context, Pool, Reply};
/// # use homing_regions::{Family, Iso, Region};
/// # struct Counter;
/// # struct CountF;
/// # impl Family for CountF { type Of<'r> = u64; }
/// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
/// # impl Actor for Counter {
/// #     type State = CountF;
/// #     type Msg = Msg;
/// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
/// #         match msg {
/// #             Msg::Add(k) => *n += k,
/// #             Msg::Get(reply) => reply.send(*n),
/// #             Msg::Stop => ctx.stop(),
/// #         }
/// #     }
/// # }
/// let pool = Pool::new(1);
/// let counter = pool.spawn(Counter, Iso::new(|_| 0));
/// counter.tell(Msg::Add(2)).ok().unwrap();
/// counter.tell(Msg::Stop).ok().unwrap(); // the handler calls `ctx.stop()`
/// // Messages behind the stop are dropped: the reply never comes.
/// assert!(counter.ask(Msg::Get).wait().is_err());
/// ```
pub struct Context<'a> {
    spawner: &'a Spawner,
    stop: bool,
}

impl Context<'_> {
    /// Stops this actor after the current message.
    ///
    /// ```
    /// # use homing_regions::actor::{Actor, Context, Pool, Reply};
    /// # use homing_regions::{Family, Iso, Region};
    /// # struct Counter;
    /// # struct CountF;
    /// # impl Family for CountF { type Of<'r> = u64; }
    /// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
    /// # impl Actor for Counter {
    /// #     type State = CountF;
    /// #     type Msg = Msg;
    /// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
    /// #         match msg {
    /// #             Msg::Add(k) => *n += k,
    /// #             Msg::Get(reply) => reply.send(*n),
    /// #             Msg::Stop => ctx.stop(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = Pool::new(1);
    /// let counter = pool.spawn(Counter, Iso::new(|_| 0));
    /// assert_eq!(counter.ask(Msg::Get).wait(), Ok(0));
    /// counter.tell(Msg::Stop).ok().unwrap(); // `Msg::Stop => ctx.stop()`
    /// assert!(counter.ask(Msg::Get).wait().is_err());
    /// assert!(counter.is_stopped());
    /// ```
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// The pool the actor runs on, to start jobs (say, a CPU-heavy one with
    /// its data moved in an `Iso`) or other actors.
    ///
    /// ```
    /// use homing_regions::actor::{Actor, Context, Pool, Reply};
    /// use homing_regions::{Family, Iso, Region};
    ///
    /// /// Hands each squaring to a job, so it takes its next message at once.
    /// struct Offload;
    /// struct NoState;
    /// impl Family for NoState { type Of<'r> = (); }
    ///
    /// impl Actor for Offload {
    ///     type State = NoState;
    ///     type Msg = (u64, Reply<u64>);
    ///     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, _: &'r mut (),
    ///                    (n, reply): (u64, Reply<u64>)) {
    ///         assert!(ctx.spawner().execute(move || reply.send(n * n)));
    ///     }
    /// }
    ///
    /// let pool = Pool::new(1);
    /// let squarer = pool.spawn(Offload, Iso::new(|_| ()));
    /// assert_eq!(squarer.ask(|reply| (12, reply)).wait(), Ok(144));
    /// ```
    pub fn spawner(&self) -> &Spawner {
        self.spawner
    }
}

/// What travels in a mailbox.
enum Envelope<M> {
    Msg(M),
    Stop(Option<Reply<()>>),
}

/// The actor's behaviour and state, present until it stops.
struct Body<A: Actor> {
    actor: A,
    state: Iso<A::State>,
}

/// An actor: mailbox, schedule state, and (touched only by the worker that
/// holds `SCHEDULED`) its body.
struct Cell<A: Actor> {
    mailbox: SegQueue<Envelope<A::Msg>>,
    state: AtomicU8,
    stopped: AtomicBool,
    body: UnsafeCell<Option<Body<A>>>,
    spawner: Spawner,
}

// SAFETY: the body is touched only by the one worker holding `SCHEDULED`
// (module doc), and hand-offs between workers go through the state's
// SeqCst operations and the run queue (which publish and acquire); the
// actor, its `Iso` and its messages are `Send`. The other fields are
// thread-safe.
unsafe impl<A: Actor> Sync for Cell<A> {}

/// The typed face of a cell, for `ActorRef<M>`.
trait Mailbox<M>: Send + Sync {
    /// Queues `e`; returns `true` if the caller must schedule the actor.
    fn post(&self, e: Envelope<M>) -> bool;
    fn is_stopped(&self) -> bool;
    fn spawner(&self) -> &Spawner;
    fn into_turn(self: Arc<Self>) -> Arc<dyn Turn>;
}

impl<A: Actor> Mailbox<A::Msg> for Cell<A> {
    fn post(&self, e: Envelope<A::Msg>) -> bool {
        self.mailbox.push(e);
        // SeqCst fence: the sender's half of the lost-wake-up race (module
        // doc): orders the push before the state read below.
        fence(Ordering::SeqCst);
        // Relaxed check first (most sends find the actor scheduled), then
        // the SeqCst compare-exchange that claims the right to queue it.
        self.state.load(Ordering::Relaxed) == IDLE
            && self
                .state
                .compare_exchange(IDLE, SCHEDULED, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
    }

    fn is_stopped(&self) -> bool {
        // Acquire: a hint; pairs with the Release store at stop.
        self.stopped.load(Ordering::Acquire)
    }

    fn spawner(&self) -> &Spawner {
        &self.spawner
    }

    fn into_turn(self: Arc<Self>) -> Arc<dyn Turn> {
        self
    }
}

impl<A: Actor> Cell<A> {
    /// Drops the body (the region with it) and tells the stop's waiter.
    fn finish(&self, body: &mut Option<Body<A>>, reply: Option<Reply<()>>) {
        if let Some(mut b) = body.take() {
            let actor = &mut b.actor;
            let _ = catch_unwind(AssertUnwindSafe(|| {
                b.state.with(|region, state| actor.stopped(region, state))
            }));
            // Release: senders that see `stopped` refuse new messages.
            self.stopped.store(true, Ordering::Release);
            drop(b);
        }
        if let Some(r) = reply {
            r.send(());
        }
    }
}

impl<A: Actor> Turn for Cell<A> {
    fn run(self: Arc<Self>) {
        // SAFETY: we hold SCHEDULED, so no other thread touches the body
        // until we store IDLE below (module doc).
        let body = unsafe { &mut *self.body.get() };
        for _ in 0..BATCH {
            let Some(envelope) = self.mailbox.pop() else {
                break;
            };
            match envelope {
                Envelope::Msg(msg) => {
                    let Some(b) = body.as_mut() else {
                        continue; // stopped: the message is dropped
                    };
                    let mut ctx = Context {
                        spawner: &self.spawner,
                        stop: false,
                    };
                    let actor = &mut b.actor;
                    let ok = catch_unwind(AssertUnwindSafe(|| {
                        b.state
                            .with(|region, state| actor.receive(&mut ctx, region, state, msg))
                    }))
                    .is_ok();
                    if ctx.stop || !ok {
                        self.finish(body, None);
                    }
                }
                Envelope::Stop(reply) => self.finish(body, reply),
            }
        }
        // SeqCst store, then a SeqCst fence: the worker's half of the
        // lost-wake-up race (module doc). The store also releases our
        // writes to the body to the next worker, which acquires through
        // the sender's compare-exchange and the run queue.
        self.state.store(IDLE, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.mailbox.is_empty()
            && self
                .state
                .compare_exchange(IDLE, SCHEDULED, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            let spawner = self.spawner.clone();
            spawner.shared.schedule(Task::Turn(self));
        }
    }
}

/// A handle to an actor: send it messages, ask it questions, stop it.
/// Cheap to clone; `Send + Sync`.
///
/// ```
/// # use homing_regions::actor::{Actor, Context, Pool, Reply};
/// # use homing_regions::{Family, Iso, Region};
/// # struct Counter;
/// # struct CountF;
/// # impl Family for CountF { type Of<'r> = u64; }
/// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
/// # impl Actor for Counter {
/// #     type State = CountF;
/// #     type Msg = Msg;
/// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
/// #         match msg {
/// #             Msg::Add(k) => *n += k,
/// #             Msg::Get(reply) => reply.send(*n),
/// #             Msg::Stop => ctx.stop(),
/// #         }
/// #     }
/// # }
/// let pool = Pool::new(1);
/// let counter = pool.spawn(Counter, Iso::new(|_| 0));
/// let other = counter.clone();
/// std::thread::spawn(move || other.tell(Msg::Add(5)).ok().unwrap()).join().unwrap();
/// assert_eq!(counter.ask(Msg::Get).wait(), Ok(5));
/// ```
pub struct ActorRef<M> {
    cell: Arc<dyn Mailbox<M>>,
}

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        ActorRef {
            cell: Arc::clone(&self.cell),
        }
    }
}

impl<M: Send + 'static> ActorRef<M> {
    /// Sends `msg`. Returns it if the actor has stopped or its pool is
    /// shutting down.
    ///
    /// ```
    /// # use homing_regions::actor::{Actor, Context, Pool, Reply};
    /// # use homing_regions::{Family, Iso, Region};
    /// # struct Counter;
    /// # struct CountF;
    /// # impl Family for CountF { type Of<'r> = u64; }
    /// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
    /// # impl Actor for Counter {
    /// #     type State = CountF;
    /// #     type Msg = Msg;
    /// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
    /// #         match msg {
    /// #             Msg::Add(k) => *n += k,
    /// #             Msg::Get(reply) => reply.send(*n),
    /// #             Msg::Stop => ctx.stop(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = Pool::new(1);
    /// let counter = pool.spawn(Counter, Iso::new(|_| 0));
    /// assert!(counter.tell(Msg::Add(3)).is_ok());
    /// assert_eq!(counter.ask(Msg::Get).wait(), Ok(3));
    /// counter.stop().wait().unwrap();
    /// // Refused once stopped: the message comes back.
    /// assert!(matches!(counter.tell(Msg::Add(1)), Err(Msg::Add(1))));
    /// ```
    pub fn tell(&self, msg: M) -> Result<(), M> {
        if self.cell.is_stopped() || self.cell.spawner().shared.is_closing() {
            return Err(msg);
        }
        self.send(Envelope::Msg(msg));
        Ok(())
    }

    /// Sends the message `make` builds around a [`Reply`], and returns the
    /// other half. If the actor has stopped, the `Ask` resolves to
    /// [`Canceled`].
    ///
    /// ```
    /// # use homing_regions::actor::{Actor, Context, Pool, Reply};
    /// # use homing_regions::{Family, Iso, Region};
    /// # struct Counter;
    /// # struct CountF;
    /// # impl Family for CountF { type Of<'r> = u64; }
    /// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
    /// # impl Actor for Counter {
    /// #     type State = CountF;
    /// #     type Msg = Msg;
    /// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
    /// #         match msg {
    /// #             Msg::Add(k) => *n += k,
    /// #             Msg::Get(reply) => reply.send(*n),
    /// #             Msg::Stop => ctx.stop(),
    /// #         }
    /// #     }
    /// # }
    /// use homing_regions::actor::Canceled;
    ///
    /// let pool = Pool::new(1);
    /// let counter = pool.spawn(Counter, Iso::new(|_| 40));
    /// counter.tell(Msg::Add(2)).ok().unwrap();
    /// assert_eq!(counter.ask(Msg::Get).wait(), Ok(42));
    /// counter.stop().wait().unwrap();
    /// assert_eq!(counter.ask(Msg::Get).wait(), Err(Canceled));
    /// ```
    pub fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> M) -> Ask<T> {
        let (tx, rx) = reply();
        let _ = self.tell(make(tx));
        rx
    }

    /// Asks the actor to stop after the messages already sent; the `Ask`
    /// resolves once it has stopped and its region is dropped.
    ///
    /// ```
    /// # use homing_regions::actor::{Actor, Context, Pool, Reply};
    /// # use homing_regions::{Family, Iso, Region};
    /// # struct Counter;
    /// # struct CountF;
    /// # impl Family for CountF { type Of<'r> = u64; }
    /// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
    /// # impl Actor for Counter {
    /// #     type State = CountF;
    /// #     type Msg = Msg;
    /// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
    /// #         match msg {
    /// #             Msg::Add(k) => *n += k,
    /// #             Msg::Get(reply) => reply.send(*n),
    /// #             Msg::Stop => ctx.stop(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = Pool::new(1);
    /// let counter = pool.spawn(Counter, Iso::new(|_| 0));
    /// counter.tell(Msg::Add(1)).ok().unwrap(); // handled before the stop
    /// let stopped = counter.stop();
    /// assert_eq!(stopped.wait(), Ok(()));
    /// assert!(counter.is_stopped());
    /// ```
    pub fn stop(&self) -> Ask<()> {
        let (tx, rx) = reply();
        self.send(Envelope::Stop(Some(tx)));
        rx
    }

    /// `true` once the actor has stopped.
    ///
    /// ```
    /// # use homing_regions::actor::{Actor, Context, Pool, Reply};
    /// # use homing_regions::{Family, Iso, Region};
    /// # struct Counter;
    /// # struct CountF;
    /// # impl Family for CountF { type Of<'r> = u64; }
    /// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
    /// # impl Actor for Counter {
    /// #     type State = CountF;
    /// #     type Msg = Msg;
    /// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
    /// #         match msg {
    /// #             Msg::Add(k) => *n += k,
    /// #             Msg::Get(reply) => reply.send(*n),
    /// #             Msg::Stop => ctx.stop(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = Pool::new(1);
    /// let counter = pool.spawn(Counter, Iso::new(|_| 0));
    /// assert!(!counter.is_stopped());
    /// counter.stop().wait().unwrap();
    /// assert!(counter.is_stopped());
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.cell.is_stopped()
    }

    fn send(&self, e: Envelope<M>) {
        if self.cell.post(e) {
            let turn = Arc::clone(&self.cell).into_turn();
            self.cell.spawner().shared.schedule(Task::Turn(turn));
        }
    }
}

impl<M> std::fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActorRef")
    }
}

impl Spawner {
    /// Starts an actor with its behaviour and its state.
    ///
    /// ```
    /// # use homing_regions::actor::{Actor, Context, Pool, Reply};
    /// # use homing_regions::{Family, Iso, Region};
    /// # struct Counter;
    /// # struct CountF;
    /// # impl Family for CountF { type Of<'r> = u64; }
    /// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
    /// # impl Actor for Counter {
    /// #     type State = CountF;
    /// #     type Msg = Msg;
    /// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
    /// #         match msg {
    /// #             Msg::Add(k) => *n += k,
    /// #             Msg::Get(reply) => reply.send(*n),
    /// #             Msg::Stop => ctx.stop(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = Pool::new(1);
    /// let spawner = pool.spawner();
    /// // From any thread (or a handler, through `ctx.spawner()`).
    /// let counter = std::thread::spawn(move || spawner.spawn(Counter, Iso::new(|_| 7)))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(counter.ask(Msg::Get).wait(), Ok(7));
    /// ```
    pub fn spawn<A: Actor>(&self, actor: A, state: Iso<A::State>) -> ActorRef<A::Msg> {
        let cell: Arc<Cell<A>> = Arc::new(Cell {
            mailbox: SegQueue::new(),
            state: AtomicU8::new(IDLE),
            stopped: AtomicBool::new(false),
            body: UnsafeCell::new(Some(Body { actor, state })),
            spawner: self.clone(),
        });
        ActorRef { cell }
    }
}

impl Pool {
    /// Starts an actor with its behaviour and its state.
    ///
    /// ```
    /// # use homing_regions::actor::{Actor, Context, Pool, Reply};
    /// # use homing_regions::{Family, Iso, Region};
    /// # struct Counter;
    /// # struct CountF;
    /// # impl Family for CountF { type Of<'r> = u64; }
    /// # enum Msg { Add(u64), Get(Reply<u64>), Stop }
    /// # impl Actor for Counter {
    /// #     type State = CountF;
    /// #     type Msg = Msg;
    /// #     fn receive<'r>(&mut self, ctx: &mut Context<'_>, _: &'r Region, n: &'r mut u64, msg: Msg) {
    /// #         match msg {
    /// #             Msg::Add(k) => *n += k,
    /// #             Msg::Get(reply) => reply.send(*n),
    /// #             Msg::Stop => ctx.stop(),
    /// #         }
    /// #     }
    /// # }
    /// let pool = Pool::new(1);
    /// let counter = pool.spawn(Counter, Iso::new(|_| 0));
    /// counter.tell(Msg::Add(4)).ok().unwrap();
    /// assert_eq!(counter.ask(Msg::Get).wait(), Ok(4));
    /// ```
    pub fn spawn<A: Actor>(&self, actor: A, state: Iso<A::State>) -> ActorRef<A::Msg> {
        Spawner {
            shared: Arc::clone(self.shared()),
        }
        .spawn(actor, state)
    }
}
