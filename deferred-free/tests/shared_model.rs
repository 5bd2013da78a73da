//! Random sequences of clone / drop / hand-over / collect / owner exit on
//! `Shared` handles spread over an owner and two foreign threads, checked
//! against a model that counts live handles: the value is never dropped
//! while a handle lives, never twice, and it is dropped as soon as the
//! protocol promises (the owner's `collect` or exit, or the releasing
//! thread once the owner has exited).
#![cfg(all(not(loom), feature = "std"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use homing_deferred::{collect, Shared};
use proptest::prelude::*;

struct Probe(Arc<AtomicUsize>);
impl Drop for Probe {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

type Handle = Shared<Probe>;

/// What a thread is told to do with its handles (`usize`s pick one modulo
/// how many it holds).
enum Cmd {
    Clone(usize),
    Drop(usize),
    /// Take a handle out and send it back to the driver.
    Give(usize),
    Take(Handle),
    Collect,
    /// Drop every handle and end the thread.
    Exit,
}

/// A thread running commands one at a time and acknowledging each.
struct Worker {
    cmds: Sender<Cmd>,
    acks: Receiver<Option<Handle>>,
    thread: Option<JoinHandle<()>>,
    live: usize,
}

impl Worker {
    fn spawn(first: Option<Arc<AtomicUsize>>) -> Worker {
        let (cmds, rx) = channel::<Cmd>();
        let (ack_tx, acks) = channel();
        let thread = std::thread::spawn(move || {
            let mut held: Vec<Handle> = Vec::new();
            if let Some(drops) = first {
                held.push(Shared::new(Probe(drops)));
            }
            ack_tx.send(None).unwrap();
            for cmd in rx {
                let mut reply = None;
                let n = held.len();
                match cmd {
                    Cmd::Clone(i) if n > 0 => {
                        let c = held[i % n].clone();
                        held.push(c);
                    }
                    Cmd::Drop(i) if n > 0 => drop(held.swap_remove(i % n)),
                    Cmd::Give(i) if n > 0 => reply = Some(held.swap_remove(i % n)),
                    Cmd::Take(h) => held.push(h),
                    Cmd::Collect => collect(),
                    Cmd::Exit => {
                        drop(std::mem::take(&mut held));
                        ack_tx.send(None).unwrap();
                        return;
                    }
                    _ => {}
                }
                ack_tx.send(reply).unwrap();
            }
        });
        let w = Worker {
            cmds,
            acks,
            thread: Some(thread),
            live: 0,
        };
        w.acks.recv().unwrap();
        w
    }

    fn run(&self, cmd: Cmd) -> Option<Handle> {
        self.cmds.send(cmd).unwrap();
        self.acks.recv().unwrap()
    }

    fn exit(&mut self) {
        self.run(Cmd::Exit);
        self.thread.take().unwrap().join().unwrap();
        self.live = 0;
    }
}

#[derive(Debug, Clone)]
enum Op {
    Clone(usize, usize),
    Drop(usize, usize),
    Move(usize, usize, usize),
    Collect(usize),
    ExitOwner,
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..3usize;
    prop_oneof![
        4 => (t.clone(), any::<usize>()).prop_map(|(t, i)| Op::Clone(t, i)),
        4 => (t.clone(), any::<usize>()).prop_map(|(t, i)| Op::Drop(t, i)),
        4 => (t.clone(), any::<usize>(), t.clone()).prop_map(|(f, i, to)| Op::Move(f, i, to)),
        2 => t.prop_map(Op::Collect),
        1 => Just(Op::ExitOwner),
    ]
}

fn config() -> ProptestConfig {
    if cfg!(miri) {
        ProptestConfig {
            cases: 4,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    } else {
        ProptestConfig::with_cases(256)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn counts_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let drops = Arc::new(AtomicUsize::new(0));
        let dropped = || drops.load(Ordering::SeqCst);
        // Thread 0 is the owner.
        let mut w = [
            Worker::spawn(Some(Arc::clone(&drops))),
            Worker::spawn(None),
            Worker::spawn(None),
        ];
        w[0].live = 1;
        let mut owner_alive = true;
        let alive = |t: usize, owner_alive: bool| t != 0 || owner_alive;
        for op in ops {
            match op {
                Op::Clone(t, i) if alive(t, owner_alive) && w[t].live > 0 => {
                    w[t].run(Cmd::Clone(i));
                    w[t].live += 1;
                }
                Op::Drop(t, i) if alive(t, owner_alive) && w[t].live > 0 => {
                    w[t].run(Cmd::Drop(i));
                    w[t].live -= 1;
                }
                Op::Move(f, i, to) if alive(f, owner_alive) && alive(to, owner_alive)
                    && w[f].live > 0 => {
                    let h = w[f].run(Cmd::Give(i)).expect("a handle");
                    w[f].live -= 1;
                    w[to].run(Cmd::Take(h));
                    w[to].live += 1;
                }
                Op::Collect(t) if alive(t, owner_alive) => {
                    w[t].run(Cmd::Collect);
                }
                Op::ExitOwner if owner_alive => {
                    // Hand the owner's handles to thread 1, then end it.
                    while w[0].live > 0 {
                        let h = w[0].run(Cmd::Give(0)).expect("a handle");
                        w[0].live -= 1;
                        w[1].run(Cmd::Take(h));
                        w[1].live += 1;
                    }
                    w[0].exit();
                    owner_alive = false;
                }
                _ => continue,
            }
            let live: usize = w.iter().map(|w| w.live).sum();
            prop_assert!(dropped() <= 1, "dropped twice");
            if live > 0 {
                prop_assert_eq!(dropped(), 0, "dropped with {} handles live", live);
            } else if !owner_alive {
                // Finished by whoever released last (or by the exit).
                prop_assert_eq!(dropped(), 1, "an exited owner's object leaked");
            } else {
                w[0].run(Cmd::Collect);
                prop_assert_eq!(dropped(), 1, "the owner's collect did not finish it");
            }
            if live == 0 {
                break;
            }
        }
        // Drop what is left, foreign threads first, then the owner.
        for t in [1, 2, 0] {
            if alive(t, owner_alive) {
                w[t].exit();
            }
        }
        prop_assert_eq!(dropped(), 1);
    }
}
