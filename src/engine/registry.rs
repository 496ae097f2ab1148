//! The registry of functions: registering, looking up by name, and the reservations
//! carved out of the account.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::parts::error::Error;
use crate::parts::limiter::ConcurrencyLimiter;
use crate::parts::queue::{InvocationQueue, RunToken};
use crate::parts::rng::SeededRng;

use super::{
    Counters, FnState, Function, FunctionConfig, FunctionHandle, FunctionShared, Runtime, Version,
};

/// The functions by name, every function ever registered, and the account's reservations:
/// the books that registering, deleting and changing limits keep together, behind the
/// runtime's registry lock.
pub(crate) struct Registry<P, R> {
    by_name: HashMap<Arc<str>, Arc<FunctionShared<P, R>>, Names>,
    /// Every function ever registered, deleted ones included, in registration order.
    all: Vec<Arc<FunctionShared<P, R>>>,
    /// Names deleted and not registered again, so that invoking them says "deleted".
    deleted: HashSet<Arc<str>, Names>,
    reserved_sum: u32,
    account_limit: u32,
}

/// How the registry hashes function names: [`NameHasher`].
type Names = BuildHasherDefault<NameHasher>;

/// A hash for function names, eight bytes per multiplication: the by-name invoke looks a name
/// up on every call, where the standard SipHash took a quarter of the lookup's time. Names
/// are the program's own (registered by its code, at most 64 characters), so the resistance
/// to chosen collisions that SipHash buys is not needed here: an unknown name only misses.
#[derive(Default)]
pub(crate) struct NameHasher {
    hash: u64,
}

impl NameHasher {
    /// An odd constant with its bits spread (from the golden ratio).
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    #[inline]
    fn mix(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in words.by_ref() {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiplication leaves its best-mixed bits at the top; the table indexes by the
        // low ones.
        self.hash.rotate_left(26)
    }
}

impl<P, R> Registry<P, R> {
    /// No function yet, under an account limit of `account_limit`.
    pub(crate) fn new(account_limit: u32) -> Self {
        Registry {
            by_name: HashMap::default(),
            all: Vec::new(),
            deleted: HashSet::default(),
            reserved_sum: 0,
            account_limit,
        }
    }

    /// Whether `f` is the function registered under its name now (not a deleted namesake).
    pub(crate) fn is_live(&self, f: &Arc<FunctionShared<P, R>>) -> bool {
        self.by_name
            .get(&*f.name)
            .is_some_and(|g| Arc::ptr_eq(g, f))
    }

    /// The function registered under `name` now.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<FunctionShared<P, R>>> {
        self.by_name.get(name)
    }

    /// Whether `name` was deleted and not registered again.
    pub(crate) fn was_deleted(&self, name: &str) -> bool {
        self.deleted.contains(name)
    }

    /// How many functions are registered now.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Every function ever registered, deleted ones included, in registration order.
    pub(crate) fn all(&self) -> &[Arc<FunctionShared<P, R>>] {
        &self.all
    }

    /// Concurrency reserved by all functions together.
    pub(crate) fn reserved_sum(&self) -> u32 {
        self.reserved_sum
    }

    /// The account concurrency limit.
    pub(crate) fn account_limit(&self) -> u32 {
        self.account_limit
    }

    /// What is left of the account for functions without a reservation.
    pub(crate) fn unreserved(&self) -> usize {
        (self.account_limit - self.reserved_sum) as usize
    }

    /// Adds `f`, reserving `reserved` of the account for it.
    fn insert(&mut self, f: &Arc<FunctionShared<P, R>>, reserved: u32) {
        self.reserved_sum += reserved;
        self.deleted.remove(&f.name);
        self.by_name.insert(Arc::clone(&f.name), Arc::clone(f));
        self.all.push(Arc::clone(f));
    }

    /// Removes `f` (it stays in [`all`](Self::all)), giving back its `reserved` concurrency.
    pub(crate) fn remove(&mut self, f: &Arc<FunctionShared<P, R>>, reserved: u32) {
        self.by_name.remove(&*f.name);
        self.deleted.insert(Arc::clone(&f.name));
        self.reserved_sum -= reserved;
    }

    /// A function's reservation changes from `old` to `new`.
    pub(crate) fn reserve(&mut self, old: u32, new: u32) {
        self.reserved_sum = self.reserved_sum - old + new;
    }

    /// The account concurrency limit becomes `n`.
    pub(crate) fn set_account_limit(&mut self, n: u32) {
        self.account_limit = n;
    }
}

impl<P: Send + 'static, R: Send + 'static> Runtime<P, R> {
    /// Registers a function and returns a handle to it. Checks its settings, its destinations
    /// and its reserved concurrency against the account; on error nothing changes.
    pub fn register(&self, function: Function<P, R>) -> Result<FunctionHandle<P, R>, Error> {
        let Function {
            name,
            handler,
            config,
        } = function;
        config.validate(&name)?;
        self.check_cost(&config)?;
        let mut reg = self.inner.registry.write();
        if reg.get(name.as_str()).is_some() {
            return Err(Error::FunctionExists(name));
        }
        self.check_destinations(&reg, &name, &config)?;
        let reserved = config.reserved_concurrency.unwrap_or(0);
        self.check_reservation(&reg, &name, reserved, 0)?;
        let index = u32::try_from(reg.all().len())
            .ok()
            .filter(|i| *i < (1 << 24))
            .ok_or(Error::InvalidConfig {
                field: "name",
                value: "one more function".into(),
                accepted: "at most 16,777,216 functions registered over a runtime's life",
            })?;
        let queue = InvocationQueue::new(config.queue_capacity)?;
        let limit = config
            .reserved_concurrency
            .map_or(usize::MAX, |n| n as usize);
        let name: Arc<str> = Arc::from(name);
        let shared = Arc::new(FunctionShared {
            index,
            name: Arc::clone(&name),
            state: Mutex::new(FnState {
                queue,
                seq: 0,
                received: 0,
                token: RunToken::new(),
                paused: false,
                deleted: false,
                arriving: 0,
                #[cfg(feature = "model")]
                poller_until: None,
                current: Arc::new(Version::new(handler, 1, config)),
            }),
            limiter: Arc::new(ConcurrencyLimiter::new(limit)),
            counters: Counters::default(),
            epoch: AtomicU64::new(0),
            recent_ns: AtomicU64::new(u64::MAX),
            rng: Mutex::new(SeededRng::new(
                self.inner
                    .settings
                    .seed
                    .wrapping_add(u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            )),
            environments: AtomicU64::new(0),
            #[cfg(feature = "model")]
            cost_rng: Mutex::new(SeededRng::new(
                (self.inner.settings.seed ^ 0x6D6F_6465_6C00_0000)
                    .wrapping_add(u64::from(index).wrapping_mul(0xD1B5_4A32_D192_ED03)),
            )),
        });
        reg.insert(&shared, reserved);
        self.inner.account.set_unreserved_limit(reg.unreserved());
        Ok(FunctionHandle {
            runtime: self.clone(),
            shared,
        })
    }

    pub(crate) fn check_cost(&self, config: &FunctionConfig<P, R>) -> Result<(), Error> {
        #[cfg(not(feature = "model"))]
        let _ = config;
        #[cfg(feature = "model")]
        if config.cost.is_some() && !self.inner.executor.is_virtual() {
            return Err(Error::InvalidConfig {
                field: "cost",
                value: "a cost model".into(),
                accepted: "no cost model outside model mode: build the runtime with RuntimeBuilder::model, or drop Function::cost",
            });
        }
        Ok(())
    }

    pub(crate) fn check_destinations(
        &self,
        reg: &Registry<P, R>,
        name: &str,
        config: &FunctionConfig<P, R>,
    ) -> Result<(), Error> {
        for dest in [&config.on_success, &config.on_failure]
            .into_iter()
            .flatten()
        {
            if let Some(target) = dest.function_name() {
                if target != name && reg.get(target).is_none() {
                    return Err(Error::UnknownDestination {
                        function: name.to_string(),
                        destination: target.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    pub(crate) fn check_reservation(
        &self,
        reg: &Registry<P, R>,
        name: &str,
        requested: u32,
        current: u32,
    ) -> Result<(), Error> {
        let elsewhere = reg.reserved_sum() - current;
        let available = reg
            .account_limit()
            .saturating_sub(self.inner.settings.unreserved_floor)
            .saturating_sub(elsewhere);
        if requested > available {
            return Err(Error::ReservedConcurrencyExceeded {
                function: name.to_string(),
                requested,
                available,
                account_limit: reg.account_limit(),
                reserved_elsewhere: elsewhere,
                unreserved_floor: self.inner.settings.unreserved_floor,
            });
        }
        Ok(())
    }

    /// A handle to function `name`.
    pub fn function(&self, name: &str) -> Option<FunctionHandle<P, R>> {
        self.lookup(name).map(|shared| FunctionHandle {
            runtime: self.clone(),
            shared,
        })
    }

    /// The names of the registered functions, in registration order.
    pub fn function_names(&self) -> Vec<String> {
        let reg = self.inner.registry.read();
        reg.all()
            .iter()
            .filter(|f| reg.is_live(f))
            .map(|f| f.name.to_string())
            .collect()
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<Arc<FunctionShared<P, R>>> {
        self.inner.registry.read().get(name).cloned()
    }

    pub(crate) fn was_deleted(&self, name: &str) -> bool {
        self.inner.registry.read().was_deleted(name)
    }

    pub(crate) fn require(&self, name: &str) -> Result<Arc<FunctionShared<P, R>>, Error> {
        self.lookup(name)
            .ok_or_else(|| Error::UnknownFunction(name.to_string()))
    }
}
