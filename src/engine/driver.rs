//! The driver: worker threads ([`Runtime::run_worker`], [`Runtime::spawn_workers`]), the
//! single-threaded loop ([`Runtime::run_until_idle`]) and waiting for idle.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;

use crate::parts::clock::Timestamp;
use crate::parts::error::Error;
use crate::parts::run_queue::Sleeper;

use super::dispatch::BATCH;
use super::{Dispatched, FunctionShared, Inner, Runtime};

/// Tells worker loops to return. Clones share one signal; stopping is permanent.
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, Runtime, StopSignal};
///
/// let rt: Runtime<u32> = Runtime::new();
/// rt.register(Function::new("f", |_: &u32, _ctx| Ok(()))).unwrap();
/// let stop = StopSignal::new();
/// let worker = {
///     let (rt, stop) = (rt.clone(), stop.clone());
///     std::thread::spawn(move || rt.run_worker(&stop))
/// };
/// rt.invoke_async("f", 1).unwrap();
/// rt.wait_idle();
/// stop.stop();
/// assert_eq!(worker.join().unwrap(), 1);
/// ```
#[derive(Clone)]
pub struct StopSignal {
    inner: Arc<StopInner>,
}

struct StopInner {
    stopped: AtomicBool,
    /// The threads running a worker loop on this signal: `stop` unparks each. A worker joins
    /// before it first reads `stopped`, so either it reads `true` or `stop` finds it here.
    workers: Mutex<Vec<Sleeper>>,
}

impl StopSignal {
    /// A signal not yet given.
    pub fn new() -> Self {
        StopSignal {
            inner: Arc::new(StopInner {
                stopped: AtomicBool::new(false),
                workers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Asks every worker using this signal to return after its current step (one event, or a
    /// batch of a fast function's events).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        for worker in self.inner.workers.lock().iter() {
            worker.unpark();
        }
    }

    /// Counts `me` among the threads `stop` unparks, until the guard drops.
    fn listen(&self, me: &Sleeper) -> Listening<'_> {
        self.inner.workers.lock().push(me.clone());
        Listening {
            stop: &self.inner,
            me: me.clone(),
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }
}

/// A worker loop's place among the threads a [`StopSignal`] unparks; left when dropped (also
/// when the loop unwinds).
struct Listening<'a> {
    stop: &'a StopInner,
    me: Sleeper,
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        let mut workers = self.stop.workers.lock();
        if let Some(at) = workers.iter().position(|s| s.is(&self.me)) {
            workers.swap_remove(at);
        }
    }
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopSignal")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// What a worker thread runs: a [`Runtime::run_worker`] loop, boxed for the thread start.
type WorkerLoop = Box<dyn FnOnce() -> u64 + Send + 'static>;

/// Worker threads started by [`Runtime::spawn_workers`]. Dropping it stops and joins them, so
/// keep it for as long as the workers should run: `rt.spawn_workers(2)?;` alone starts two
/// workers and stops them at once. A worker that died is not hidden: stopping or dropping the
/// pool re-raises its panic (see [`stop`](Self::stop)).
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, Runtime};
///
/// let rt: Runtime<u32> = Runtime::new();
/// rt.register(Function::new("f", |_: &u32, _ctx| Ok(()))).unwrap();
/// let workers = rt.spawn_workers(2).unwrap(); // keep it: the pool lives as long as it does
/// rt.invoke_async("f", 1).unwrap();
/// rt.wait_idle();
/// assert_eq!(workers.stop(), 1);
/// ```
///
/// Dropping the pool at once is a compiler warning (`unused_must_use`):
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// # use event_invoke::Runtime;
/// # fn main() -> Result<(), event_invoke::Error> {
/// let rt: Runtime<u32> = Runtime::new();
/// rt.spawn_workers(2)?; // the workers stop as soon as they started
/// # Ok(())
/// # }
/// ```
#[must_use = "dropping Workers stops and joins the worker threads at once: bind it (`let workers = ...`) and call `stop` when done"]
pub struct Workers {
    stop: StopSignal,
    threads: Vec<JoinHandle<u64>>,
}

impl Workers {
    /// Stops the workers, waits for them, and returns how many events they dispatched.
    ///
    /// # Panics
    ///
    /// When a worker thread died, once every worker has been joined: with the panic of the
    /// first that died, like [`std::thread::scope`]. The engine catches the panics of handlers,
    /// destinations, observers, tracers and retry schedules, so a worker dies only of a panic
    /// outside them: a payload's, a response's or a panic payload's `Drop`, fault injection's
    /// duplicate filter or a payload's `Clone` on its way to a duplicate, or a
    /// [`Clock`](crate::Clock) of your own. Each such panic goes on once the event it came
    /// from has ended. Dropping `Workers` does the same, unless the thread is already
    /// panicking.
    pub fn stop(mut self) -> u64 {
        self.stop_and_join()
    }

    pub(crate) fn stop_and_join(&mut self) -> u64 {
        self.stop.stop();
        let mut dispatched = 0;
        let mut died = None;
        for thread in self.threads.drain(..) {
            match thread.join() {
                Ok(n) => dispatched += n,
                Err(panic) => {
                    died.get_or_insert(panic);
                }
            }
        }
        // A second panic while one unwinds would abort the process.
        if let Some(panic) = died.filter(|_| !std::thread::panicking()) {
            std::panic::resume_unwind(panic);
        }
        dispatched
    }

    /// How many worker threads run.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether no worker thread runs.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Runs what is due at `now` (virtual time's arrivals and ends, then the timers) and
    /// returns the reading a step starts at: `now`, or a fresh one when anything came due,
    /// since a record it delivered may have run code of the user's (a destination closure),
    /// whose time is no handler's.
    #[inline]
    fn fire_due(&self, now: Timestamp) -> Timestamp {
        if self.due_in_virtual_time(now) | self.fire_timers(now) {
            self.inner.clock.now()
        } else {
            now
        }
    }

    /// Runs what virtual time has due at `now` (nothing in real time); returns whether
    /// anything was.
    #[inline]
    fn due_in_virtual_time(&self, now: Timestamp) -> bool {
        #[cfg(feature = "model")]
        return self.virtual_due(now);
        #[cfg(not(feature = "model"))]
        {
            let _ = now;
            false
        }
    }

    /// Runs events on the calling thread until `stop` is given; returns how many events it
    /// dispatched. Any number of threads may run it at once.
    ///
    /// When nothing is due it blocks without spinning: it wakes for a new event, for the next
    /// retry's due time (real clock), when a [`ManualClock`](crate::ManualClock) moves, and when
    /// stopped.
    ///
    /// For a function whose handler is fast (under 20 µs on average lately, in real time even
    /// under a [`ManualClock`](crate::ManualClock)), a worker runs up to 16 ready events back
    /// to back under one execution slot. It takes each next one only when the previous one
    /// ended, so the unstarted rest stays in the queue, where an idle worker takes it (none
    /// waits behind an event that turns out slow). The run stops early when an operator call
    /// (pause, delete, new code or settings) reaches the function, an event is throttled, or
    /// the handler turns slow.
    ///
    /// A worker that finds no free execution slot for a function takes none of its events:
    /// the function waits for a slot to be given back, and the worker runs other functions or
    /// parks ([`ConcurrencyLimitExceeded`](crate::ConcurrencyLimitExceeded)).
    ///
    /// In model mode ([`RuntimeBuilder::model`](crate::RuntimeBuilder::model)) a worker never
    /// moves virtual time, so executions waiting for their virtual end wait for whoever moves
    /// the clock, and the run is no longer deterministic: drive a model with
    /// [`run_until_idle`](Self::run_until_idle) on one thread instead.
    pub fn run_worker(&self, stop: &StopSignal) -> u64 {
        let _worker = WorkerThread::enter();
        let me = Sleeper::current();
        let _listening = stop.listen(&me);
        let inner = &self.inner;
        let mut dispatched = 0;
        let mut batch = Vec::with_capacity(BATCH);
        // The last step's ending reading, when nothing but the engine ran since (real time
        // only: a virtual clock is cheap to read, and another thread may have moved it); see
        // `step_batch`.
        let mut fresh = None;
        loop {
            if stop.is_stopped() {
                return dispatched;
            }
            let mut now = match fresh.take() {
                Some(ended) => ended,
                None => inner.clock.now(),
            };
            now = self.fire_due(now);
            if inner.is_virtual {
                // Another thread may have moved a virtual clock since: a fresh reading.
                now = inner.clock.now();
            }
            if let Some(f) = inner.run_queue.pop_or_park(&me) {
                let (n, ended) = self.step_batch(&f, &mut batch, now);
                dispatched += n;
                fresh = ended.filter(|_| !inner.is_virtual);
                continue;
            }
            // Counted as parked, in the same lock that saw the run queue empty: a function
            // scheduled from now on unparks us. Re-check the timers: whoever arms an earlier
            // timer or moves the virtual clock after the count was published unparks a parked
            // thread, and `stop` unparks every listening one, so no wake-up is lost.
            let next = inner.timers.next_nanos();
            let now = inner.clock.now();
            if next > now.as_nanos() && !stop.is_stopped() {
                if inner.is_virtual || next == u64::MAX {
                    me.park();
                } else {
                    me.park_timeout(Timestamp::from_nanos(next) - now);
                }
            }
            inner.run_queue.unparked(&me);
        }
    }

    /// Starts `n` threads running [`run_worker`](Self::run_worker) (at least one).
    ///
    /// Refused with [`Error::ModelMode`] for a runtime in model mode, which runs on the
    /// calling thread ([`RuntimeBuilder::model`](crate::RuntimeBuilder::model)), and with
    /// [`Error::ThreadSpawn`] when the operating system refuses a thread; the threads already
    /// started are then stopped and joined.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Error, Function, Runtime};
    ///
    /// fn run() -> Result<(), Error> {
    ///     let rt: Runtime<u32> = Runtime::new();
    ///     rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))?;
    ///     let workers = rt.spawn_workers(2)?;
    ///     rt.invoke_async("f", 1).unwrap();
    ///     rt.wait_idle();
    ///     assert_eq!(workers.stop(), 1);
    ///     Ok(())
    /// }
    /// run().unwrap();
    /// ```
    pub fn spawn_workers(&self, n: usize) -> Result<Workers, Error> {
        self.spawn_workers_with(n, |builder, work| builder.spawn(work))
    }

    /// [`spawn_workers`](Self::spawn_workers) with the thread start passed in, so that a test
    /// can make the operating system's refusal happen.
    fn spawn_workers_with(
        &self,
        n: usize,
        mut spawn: impl FnMut(thread::Builder, WorkerLoop) -> io::Result<JoinHandle<u64>>,
    ) -> Result<Workers, Error> {
        #[cfg(feature = "model")]
        if self.inner.executor.is_virtual() {
            return Err(Error::ModelMode {
                call: "spawn_workers",
            });
        }
        let requested = n.max(1);
        let mut workers = Workers {
            stop: StopSignal::new(),
            threads: Vec::with_capacity(requested),
        };
        for index in 0..requested {
            let rt = self.clone();
            let stop = workers.stop.clone();
            let builder = thread::Builder::new().name(format!("event-invoke-worker-{index}"));
            // On an error, `workers` drops here: the threads started so far stop and join.
            let thread = spawn(builder, Box::new(move || rt.run_worker(&stop))).map_err(|e| {
                Error::ThreadSpawn {
                    index,
                    requested,
                    source: e.into(),
                }
            })?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Dispatches at most one event that is due now, on the calling thread: the single step.
    /// `None` when nothing is due.
    pub fn try_dispatch(&self) -> Option<Dispatched> {
        let now = self.fire_due(self.inner.clock.now());
        while let Some(f) = self.inner.run_queue.pop() {
            // The time read above: one clock read per step, not two.
            if let Some(d) = self.step_at(&f, now) {
                return Some(d);
            }
        }
        None
    }

    /// Runs every event on the calling thread until nothing is left to run, and returns how
    /// many dispatch steps it took (attempts, throttles and events ended without running).
    ///
    /// Under a [`ManualClock`](crate::ManualClock) it jumps virtual time to the next retry or
    /// backoff whenever nothing is due, so hours of retries take milliseconds. Under the system
    /// clock it waits for them. Events held by a paused function do not keep it running (it
    /// does not jump time to age them out: use [`run_for`](Self::run_for)).
    ///
    /// Meant for one driving thread. Alongside worker threads it may return while their
    /// executions are still running; use [`wait_idle`](Self::wait_idle) there.
    pub fn run_until_idle(&self) -> u64 {
        self.run_inner(None)
    }

    /// Runs events on the calling thread until the clock reaches `deadline`, then returns how
    /// many it dispatched. Under a [`ManualClock`](crate::ManualClock) it moves time to each due
    /// point and finally to `deadline`, ageing out held events on the way: this is how to
    /// "wait for events to age out" in a test.
    pub fn run_until(&self, deadline: Timestamp) -> u64 {
        self.run_inner(Some(deadline))
    }

    /// [`run_until`](Self::run_until) `now + d`.
    pub fn run_for(&self, d: Duration) -> u64 {
        self.run_until(self.now() + d)
    }

    pub(crate) fn run_inner(&self, deadline: Option<Timestamp>) -> u64 {
        let inner = &self.inner;
        let mut dispatched = 0;
        let mut batch = Vec::with_capacity(BATCH);
        // The calling thread's handle, read the first time it parks.
        let mut me: Option<Sleeper> = None;
        loop {
            let now = self.fire_due(inner.clock.now());
            if let Some(f) = inner.run_queue.pop() {
                dispatched += self.step_batch(&f, &mut batch, now).0;
                continue;
            }
            // Nothing is runnable now.
            if deadline.is_some_and(|d| now >= d) {
                return dispatched;
            }
            let (any, unheld) = self.next_wake();
            // Virtual time: arrivals and execution ends are work that keeps the run going.
            let (any, unheld) = match inner.executor.next_at() {
                None => (any, unheld),
                Some(m) => (
                    Some(any.map_or(m, |a| a.min(m))),
                    Some(unheld.map_or(m, |u| u.min(m))),
                ),
            };
            let timers_seen = inner.timers.next_nanos();
            let target = match (deadline, unheld) {
                // Time passes up to the deadline, held events' age deadlines included.
                (Some(d), _) => any.map_or(d, |w| w.min(d)),
                // Only work that can run keeps us going; but on the way to it, time stops at
                // each held event's age deadline, so it ages out when `run_for` would have
                // ended it.
                (None, Some(w)) => any.map_or(w, |a| a.min(w)),
                (None, None) => return dispatched,
            };
            if inner.clock.advance_to(target) {
                continue;
            }
            // A real clock: wait for the target, or for a function another thread schedules.
            // Counted as parked so that a thread arming an earlier timer unparks us too.
            let me = me.get_or_insert_with(Sleeper::current);
            if let Some(f) = inner.run_queue.pop_or_park(me) {
                // Scheduled after the reading above, perhaps long after: a fresh start.
                let now = inner.clock.now();
                dispatched += self.step_batch(&f, &mut batch, now).0;
                continue;
            }
            // Unless a timer was armed meanwhile: then look again at once.
            if inner.timers.next_nanos() == timers_seen {
                me.park_timeout(target - now);
            }
            inner.run_queue.unparked(&*me);
        }
    }

    /// Events accepted and not yet ended (queued, delayed, held or running), over all
    /// functions.
    pub fn outstanding(&self) -> u64 {
        self.inner.outstanding.load(Ordering::SeqCst)
    }

    /// Blocks until every accepted event has ended ([`outstanding`](Self::outstanding) is 0).
    /// Events held by a paused function, or delayed under a manual clock nobody advances,
    /// keep it waiting: use [`wait_idle_timeout`](Self::wait_idle_timeout) then.
    pub fn wait_idle(&self) {
        self.wait_idle_inner(None);
    }

    /// Like [`wait_idle`](Self::wait_idle), for at most `timeout` of real time. Returns whether
    /// the runtime became idle.
    pub fn wait_idle_timeout(&self, timeout: Duration) -> bool {
        self.wait_idle_inner(Some(timeout))
    }

    pub(crate) fn wait_idle_inner(&self, timeout: Option<Duration>) -> bool {
        let inner = &self.inner;
        if inner.outstanding.load(Ordering::SeqCst) == 0 {
            return true;
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        inner.idle.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = inner.idle.lock.lock();
        let mut idle = true;
        while inner.outstanding.load(Ordering::SeqCst) > 0 {
            match deadline {
                None => inner.idle.cv.wait(&mut guard),
                Some(d) => {
                    if inner.idle.cv.wait_until(&mut guard, d).timed_out() {
                        idle = inner.outstanding.load(Ordering::SeqCst) == 0;
                        break;
                    }
                }
            }
        }
        drop(guard);
        inner.idle.waiters.fetch_sub(1, Ordering::SeqCst);
        idle
    }
}

impl<P, R> Inner<P, R> {
    /// Puts `f` in the run queue, unparking a parked worker if there is one. Called by whoever
    /// claimed `f`'s run token ([`RunToken`](crate::parts::queue::RunToken)), so `f` is in the
    /// queue at most once.
    #[inline]
    pub(crate) fn schedule(&self, f: &Arc<FunctionShared<P, R>>) {
        self.run_queue.push(Arc::clone(f));
    }
}

thread_local! {
    /// Whether this thread is inside [`Runtime::run_worker`]: batching judges speed on real
    /// time there (see `step_batch`), and only there.
    static ON_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread runs a worker loop ([`Runtime::run_worker`]).
#[inline]
pub(crate) fn on_worker_thread() -> bool {
    ON_WORKER.with(|w| w.get())
}

/// Marks the thread as a worker's while alive; restores the mark it found (a worker loop
/// driven from inside a handler's `run_worker` call stays a worker's).
struct WorkerThread(bool);

impl WorkerThread {
    fn enter() -> Self {
        WorkerThread(ON_WORKER.with(|w| w.replace(true)))
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        ON_WORKER.with(|w| w.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::io;
    use std::sync::Arc;

    use crate::{Error, Function, ManualClock, Runtime};

    #[test]
    fn a_thread_the_os_refuses_is_reported_and_the_started_ones_are_stopped_and_joined() {
        let rt: Runtime<u32> = Runtime::builder()
            .clock(ManualClock::new())
            .build()
            .unwrap();
        rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
            .unwrap();
        let handles_before = Arc::strong_count(&rt.inner);
        let mut started = 0;
        let err = rt
            .spawn_workers_with(3, |builder, work| {
                if started == 1 {
                    return Err(io::Error::new(io::ErrorKind::WouldBlock, "no more threads"));
                }
                started += 1;
                builder.spawn(work)
            })
            .unwrap_err();
        match &err {
            Error::ThreadSpawn {
                index,
                requested,
                source,
            } => {
                assert_eq!((*index, *requested), (1, 3));
                assert_eq!(source.kind(), io::ErrorKind::WouldBlock);
            }
            other => panic!("expected ThreadSpawn, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "the operating system refused to start worker thread 1 (of 3): no more threads; \
             start fewer workers, or raise the process's thread or memory limits"
        );
        let source = err.source().expect("the OS error is the source");
        assert_eq!(source.to_string(), "no more threads");
        // Thread 0 was started with a clone of the runtime; it has been stopped and joined,
        // so its clone is gone.
        assert_eq!(started, 1);
        assert_eq!(Arc::strong_count(&rt.inner), handles_before);
        // The runtime still works on the calling thread.
        rt.invoke_async("f", 1).unwrap();
        assert_eq!(rt.run_until_idle(), 1);
    }
}
