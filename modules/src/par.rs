//! Splitting work on a large host over two threads (the machines berth targets have
//! at least two CPUs). Results come back in order, so the outcome is the same as one
//! pass; small inputs stay on the calling thread.

/// Below this many items, work stays on the calling thread.
const PARALLEL_MIN: usize = 2048;

/// `f` over the two halves of `0..n`, the second half on another thread when `n` is
/// large (and a thread can be started); the results in order.
pub(crate) fn halves<T: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    if n < PARALLEL_MIN {
        return vec![f(0..n)];
    }
    let mid = n / 2;
    std::thread::scope(|s| {
        let other = std::thread::Builder::new().spawn_scoped(s, || f(mid..n));
        let first = f(0..mid);
        let second = match other {
            Ok(handle) => match handle.join() {
                Ok(second) => second,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(_) => f(mid..n),
        };
        vec![first, second]
    })
}

/// `a()` and `b()`, `b` on another thread when `n` (the size of the work) is large (and
/// a thread can be started).
pub(crate) fn both<A: Send, B: Send + Default>(
    n: usize,
    a: impl FnOnce() -> A,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if n < PARALLEL_MIN {
        return (a(), b());
    }
    // Taken by the thread, or by this one if no thread can be started.
    let b = std::sync::Mutex::new(Some(b));
    let run_b = || b.lock().ok().and_then(|mut f| f.take()).map(|f| f());
    std::thread::scope(|s| {
        let other = std::thread::Builder::new().spawn_scoped(s, run_b);
        let first = a();
        let second = match other {
            Ok(handle) => match handle.join() {
                Ok(second) => second,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(_) => run_b(),
        };
        // `b` runs exactly once, on one thread or the other: never the default.
        (first, second.unwrap_or_default())
    })
}
