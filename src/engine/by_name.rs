//! The functions this thread invoked by name last: a by-name invoke that finds its name here
//! skips the registry's lock and its hash look-up.
//!
//! Each entry holds its runtime and its function weakly. The weak runtime keeps that
//! allocation's address from being reused, so a pointer compare tells runtimes apart; the
//! weak function keeps nothing alive (a dropped runtime's functions drop as before). An entry
//! can be stale only one way: its function was deleted (and its name perhaps registered again).
//! The invoke finds that out at once, since admission refuses a deleted function first, and
//! then looks the name up afresh.

use std::any::Any;
use std::cell::RefCell;
use std::sync::{Arc, Weak};

use super::{FunctionShared, Inner};

/// The most names a thread keeps: a handler alternating between a few functions stays on the
/// fast path, and a miss scans no more than this.
const ENTRIES: usize = 4;

struct Entry<P, R> {
    runtime: Weak<Inner<P, R>>,
    name: String,
    function: Weak<FunctionShared<P, R>>,
}

thread_local! {
    /// Type-erased entries (a thread may invoke runtimes of several payload types), the most
    /// recently remembered last.
    static RECENT: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// The function `name` of `runtime` if this thread remembers it and it is still alive.
#[inline]
pub(crate) fn recall<P: Send + 'static, R: Send + 'static>(
    runtime: &Arc<Inner<P, R>>,
    name: &str,
) -> Option<Arc<FunctionShared<P, R>>> {
    RECENT
        .try_with(|recent| {
            // A hook running inside `remember` cannot reach here (nothing there calls user
            // code), but a failed borrow only means a miss.
            let recent = recent.try_borrow().ok()?;
            recent.iter().rev().find_map(|entry| {
                let entry = entry.downcast_ref::<Entry<P, R>>()?;
                if std::ptr::eq(entry.runtime.as_ptr(), Arc::as_ptr(runtime)) && entry.name == name
                {
                    entry.function.upgrade()
                } else {
                    None
                }
            })
        })
        .ok()
        .flatten()
}

/// Remembers that `name` of `runtime` is `function`, dropping the oldest entry when full.
#[inline(never)]
pub(crate) fn remember<P: Send + 'static, R: Send + 'static>(
    runtime: &Arc<Inner<P, R>>,
    name: &str,
    function: &Arc<FunctionShared<P, R>>,
) {
    let _ = RECENT.try_with(|recent| {
        let Ok(mut recent) = recent.try_borrow_mut() else {
            return;
        };
        // The same name of the same runtime again (registered anew): replace it in place.
        let same = recent.iter().position(|entry| {
            entry.downcast_ref::<Entry<P, R>>().is_some_and(|e| {
                std::ptr::eq(e.runtime.as_ptr(), Arc::as_ptr(runtime)) && e.name == name
            })
        });
        let entry: Box<dyn Any> = Box::new(Entry {
            runtime: Arc::downgrade(runtime),
            name: name.to_owned(),
            function: Arc::downgrade(function),
        });
        match same {
            Some(i) => {
                recent.remove(i);
            }
            None if recent.len() == ENTRIES => {
                recent.remove(0);
            }
            None => {}
        }
        recent.push(entry);
    });
}
