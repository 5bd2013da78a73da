//! The worker pool: threads that run actor turns and jobs from one shared
//! run queue.
//!
//! # Structure
//!
//! - **Run queue**: a `crossbeam_queue::SegQueue` of tasks (an actor's turn,
//!   or a one-off job). Any thread pushes; workers pop.
//! - **Parking**: a worker that finds the queue empty spins briefly, then
//!   counts itself in `sleepers` and waits on a condition variable (with a
//!   timeout as a backstop). A pusher wakes one sleeper if `sleepers > 0`.
//!   The pusher's push-then-read-`sleepers` and the worker's
//!   raise-`sleepers`-then-read-queue are separated by SeqCst fences, so at
//!   least one of them sees the other (no lost wake-up).
//! - **Next slot**: an actor turn scheduled by a worker itself (a handler
//!   sent to an idle actor) goes into that worker's one-task `NEXT` slot
//!   instead of the run queue, and the worker runs it as soon as the
//!   current task ends: no queue round trip, no wake-up of another worker
//!   (a message chain — ping-pong, a ring — stays on one warm worker). At
//!   most [`NEXT_BUDGET`] slot turns run in a row; then the slot's task goes
//!   to the run queue, so a chain cannot starve the queue.
//! - **Safe points**: after every task a worker calls
//!   `homing_deferred::collect()` (finishing `Shared` releases posted to
//!   it; one load when there are none), and before it parks,
//!   `homing::collect()` (its heap gives back what it does not need).
//!
//! # Shutdown
//!
//! Dropping the [`Pool`] (or [`Pool::shutdown`]) marks it closing, wakes
//! every worker, and joins them once the run queue is empty. Messages sent
//! after that are refused (`tell` returns them).

use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_queue::SegQueue;

use super::reply::{reply, Ask};

/// How often a worker polls the queue (yielding between polls) before it
/// parks: enough to catch the next message of a ping-pong without a
/// sleep/wake round trip, few enough that an idle pool stops burning CPU at
/// once.
const SPINS: usize = 64;

/// The longest a parked worker sleeps without being woken: a backstop only
/// (wake-ups are not lost, see the module doc), short enough that shutdown
/// never waits on it.
const PARK_TIMEOUT: Duration = Duration::from_millis(50);

/// Slot turns a worker runs in a row before it sends the slot's task to
/// the run queue (see the module doc): long enough to keep a message
/// chain on one worker, short enough that queued work waits little.
const NEXT_BUDGET: usize = 32;

std::thread_local! {
    /// The pool whose worker this thread is (null on other threads).
    static WORKER_OF: std::cell::Cell<*const Shared> = const { std::cell::Cell::new(std::ptr::null()) };
    /// The worker's next-slot task (see the module doc).
    static NEXT: std::cell::Cell<Option<Arc<dyn Turn>>> = const { std::cell::Cell::new(None) };
}

/// A unit of work for a worker.
pub(crate) enum Task {
    /// An actor's turn: a batch of its messages.
    Turn(Arc<dyn Turn>),
    /// A one-off closure.
    Job(Box<dyn FnOnce() + Send>),
}

/// Something a worker can run a turn of (an actor cell).
pub(crate) trait Turn: Send + Sync {
    /// Runs one batch; the caller holds the actor's `SCHEDULED` state.
    fn run(self: Arc<Self>);
}

/// The state shared by the pool's handle, its workers and its actors.
pub(crate) struct Shared {
    queue: SegQueue<Task>,
    /// Workers parked or about to park (see the module doc).
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    closing: AtomicBool,
}

impl Shared {
    /// Queues `task` (in the calling worker's next slot if it is a turn and
    /// the slot is free) and wakes a parked worker if there is one.
    pub(crate) fn schedule(&self, task: Task) {
        let task = match task {
            Task::Turn(turn) if std::ptr::eq(WORKER_OF.with(|w| w.get()), self) => {
                // The slot keeps the first turn put in it; a second one
                // goes to the run queue.
                let rejected = NEXT.with(|n| match n.take() {
                    None => {
                        n.set(Some(turn));
                        None
                    }
                    Some(first) => {
                        n.set(Some(first));
                        Some(turn)
                    }
                });
                match rejected {
                    None => return,
                    Some(turn) => Task::Turn(turn),
                }
            }
            other => other,
        };
        self.push_global(task);
    }

    fn push_global(&self, task: Task) {
        self.queue.push(task);
        // SeqCst fence: pairs with the worker's fence after it raises
        // `sleepers` (module doc): either we see it parked, or it sees our
        // task before it waits.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_one();
        }
    }

    /// `true` once the pool is shutting down.
    pub(crate) fn is_closing(&self) -> bool {
        // Acquire: pairs with the Release in `close`; a hint for senders.
        self.closing.load(Ordering::Acquire)
    }

    fn close(&self) {
        // Release: workers that see it also see everything queued before.
        self.closing.store(true, Ordering::Release);
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.notify_all();
    }

    /// Runs the turns handlers put in this worker's next slot, up to the
    /// budget; what is left goes to the run queue.
    fn run_next_slot(&self) {
        for _ in 0..NEXT_BUDGET {
            match NEXT.with(|n| n.take()) {
                Some(turn) => turn.run(),
                None => return,
            }
        }
        if let Some(turn) = NEXT.with(|n| n.take()) {
            self.push_global(Task::Turn(turn));
        }
    }

    /// A worker's life.
    fn work(&self) {
        WORKER_OF.with(|w| w.set(self as *const Shared));
        loop {
            if let Some(task) = self.queue.pop() {
                match task {
                    Task::Turn(t) => t.run(),
                    Task::Job(job) => job(),
                }
                self.run_next_slot();
                homing_deferred::collect();
                continue;
            }
            if self.is_closing() && self.queue.is_empty() {
                return;
            }
            if (0..SPINS).any(|_| {
                std::thread::yield_now();
                !self.queue.is_empty()
            }) {
                continue;
            }
            homing::collect();
            let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            // Relaxed increment, then the SeqCst fence that pairs with
            // `schedule`'s (module doc).
            self.sleepers.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if self.queue.is_empty() && !self.is_closing() {
                let _ = self
                    .wake
                    .wait_timeout(guard, PARK_TIMEOUT)
                    .unwrap_or_else(|e| e.into_inner());
            } else {
                drop(guard);
            }
            // Relaxed: a count only; a stale value costs one spurious wake.
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A pool of worker threads that run actors (each on at most one worker at
/// a time) and jobs.
///
/// ```
/// use homing_regions::actor::Pool;
///
/// let pool = Pool::new(2);
/// let sum = pool.run(|| (1..=10u64).sum::<u64>());
/// assert_eq!(sum.wait(), Ok(55));
/// ```
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `threads` workers (at least one).
    ///
    /// ```
    /// use homing_regions::actor::Pool;
    ///
    /// let pool = Pool::new(0); // rounded up
    /// assert_eq!(pool.threads(), 1);
    /// assert_eq!(pool.run(|| "ran").wait(), Ok("ran"));
    /// ```
    pub fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            queue: SegQueue::new(),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            closing: AtomicBool::new(false),
        });
        let workers = (0..threads.max(1))
            .map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("homing-actor-{i}"))
                    .spawn(move || shared.work())
                    .expect("spawn an actor worker")
            })
            .collect();
        Pool { shared, workers }
    }

    /// Number of worker threads.
    ///
    /// ```
    /// let pool = homing_regions::actor::Pool::new(2);
    /// assert_eq!(pool.threads(), 2);
    /// ```
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Runs `job` on a worker; the result can be waited on or awaited.
    /// Move the job's data in (an [`Iso`](crate::Iso) moves a whole region
    /// as one pointer).
    ///
    /// ```
    /// use homing_regions::actor::Pool;
    ///
    /// let pool = Pool::new(1);
    /// let words = vec!["one", "two", "three"];
    /// let total = pool.run(move || words.iter().map(|w| w.len()).sum::<usize>());
    /// assert_eq!(total.wait(), Ok(11));
    /// ```
    pub fn run<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> Ask<R> {
        run_on(&self.shared, job)
    }

    /// A handle that can start jobs and actors on this pool from anywhere
    /// (a handler, another thread), without keeping the workers alive.
    ///
    /// ```
    /// use homing_regions::actor::Pool;
    ///
    /// let pool = Pool::new(1);
    /// let spawner = pool.spawner();
    /// let answer = std::thread::spawn(move || spawner.run(|| 6 * 7).wait());
    /// assert_eq!(answer.join().unwrap(), Ok(42));
    /// ```
    pub fn spawner(&self) -> Spawner {
        Spawner {
            shared: Arc::clone(&self.shared),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Lets the workers finish what is queued, then stops and joins them.
    ///
    /// ```
    /// use homing_regions::actor::{Canceled, Pool};
    ///
    /// let pool = Pool::new(1);
    /// let spawner = pool.spawner();
    /// let queued = pool.run(|| 1);
    /// pool.shutdown();
    /// assert_eq!(queued.wait(), Ok(1)); // finished before the workers stopped
    /// assert_eq!(spawner.run(|| 2).wait(), Err(Canceled)); // refused afterwards
    /// ```
    pub fn shutdown(mut self) {
        self.stop_workers();
    }

    fn stop_workers(&mut self) {
        self.shared.close();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.workers.len())
            .finish()
    }
}

/// Starts jobs and actors on a [`Pool`]; cheap to clone, `Send + Sync`.
///
/// ```
/// use homing_regions::actor::{Pool, Spawner};
///
/// let pool = Pool::new(1);
/// let spawner: Spawner = pool.spawner();
/// let other = spawner.clone();
/// let from_thread = std::thread::spawn(move || other.run(|| 3).wait());
/// assert_eq!(from_thread.join().unwrap(), Ok(3));
/// drop(pool); // a spawner does not keep the workers alive
/// assert!(!spawner.execute(|| {}));
/// ```
#[derive(Clone)]
pub struct Spawner {
    pub(crate) shared: Arc<Shared>,
}

impl Spawner {
    /// As [`Pool::run`].
    ///
    /// ```
    /// let pool = homing_regions::actor::Pool::new(1);
    /// let spawner = pool.spawner();
    /// assert_eq!(spawner.run(|| [1, 2, 3].len()).wait(), Ok(3));
    /// ```
    pub fn run<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> Ask<R> {
        run_on(&self.shared, job)
    }

    /// Runs `job` on a worker, with no reply (the job answers through
    /// whatever it carries, say a [`Reply`](super::Reply)). Returns `false`,
    /// dropping the job, if the pool is shutting down.
    ///
    /// ```
    /// use homing_regions::actor::{reply, Pool};
    ///
    /// let pool = Pool::new(1);
    /// let (tx, rx) = reply();
    /// assert!(pool.spawner().execute(move || tx.send(5)));
    /// assert_eq!(rx.wait(), Ok(5));
    /// ```
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) -> bool {
        if self.shared.is_closing() {
            return false;
        }
        self.shared.schedule(Task::Job(Box::new(job)));
        true
    }
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spawner")
    }
}

fn run_on<R: Send + 'static>(shared: &Shared, job: impl FnOnce() -> R + Send + 'static) -> Ask<R> {
    let (tx, rx) = reply();
    if !shared.is_closing() {
        shared.schedule(Task::Job(Box::new(move || tx.send(job()))));
    }
    // If closing, `tx` was dropped with the closure: the Ask is canceled.
    rx
}
