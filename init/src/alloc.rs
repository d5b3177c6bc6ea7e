//! The `berth` binary's global allocator: mimalloc, called through its plain
//! `mi_malloc` family whenever that already gives the alignment asked for, or the C
//! library's malloc for short commands ([`use_system`]).
//!
//! mimalloc pays off where berth allocates a lot (`eval` of a big host) or for long (a
//! resident berth, whose heap it keeps small), but starting it costs a short command:
//! it reserves and sets up an arena and faults in fresh pages, and `berth run` of
//! `/bin/true` took 4.4 ms with it against 3.7 ms with the C library's malloc
//! (BENCHMARKS.md, Runtime).
//!
//! `mimalloc::MiMalloc` sends every allocation through `mi_malloc_aligned`. In mimalloc
//! v3 that path is fast only while the free list of the size's page happens to start
//! at an aligned block; otherwise (a fresh page, any block over 1 KiB) it takes the
//! generic path, which over-allocates by the alignment for sizes that are not powers of
//! two. `berth eval` of 10,000 containers spent about 100 instructions per allocation
//! there (68M of the main thread's 648M, BENCHMARKS.md, Evaluation). `mi_malloc`
//! returns blocks aligned to 16 bytes (8 for an 8-byte block), which is what the
//! standard library's `System` allocator relies on from `malloc` under the same test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, Ordering};

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

/// Which allocator serves the process; decided once, before the first block.
static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Makes the C library's malloc serve this process instead of mimalloc. Call it before
/// anything allocates (berth does, from an `.init_array` entry); once a block was
/// allocated the choice is made (mimalloc) and this returns false.
pub fn use_system() -> bool {
    CHOICE
        .compare_exchange(UNDECIDED, SYSTEM, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
}

/// The allocator's choice, making it (mimalloc) if it was not made yet.
#[inline]
fn system() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        SYSTEM => true,
        MIMALLOC => false,
        _ => {
            // The first block decides; a racing `use_system` may still win, which the
            // result of the exchange tells.
            match CHOICE.compare_exchange(UNDECIDED, MIMALLOC, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    start_mimalloc();
                    false
                }
                Err(choice) => choice == SYSTEM,
            }
        }
    }
}

/// Starts mimalloc as its C constructor would have. berth builds mimalloc without that
/// constructor (`MI_PRIM_HAS_PROCESS_ATTACH`, .cargo/config.toml), because it ran in
/// every process, also the short commands that never use mimalloc: ~70 µs of `berth
/// run`'s start (reading options from the environment and two /proc and /sys files,
/// reserving its page map). Called once, by whoever decides for mimalloc, before its
/// first block. Without it mimalloc would still work (it starts itself lazily), but
/// would consider the process not started yet and never create arenas or purge.
/// If mimalloc was built with its constructor anyway (a CFLAGS of the builder's own
/// replaces berth's), that constructor already did this and it is not done twice.
fn start_mimalloc() {
    // SAFETY: both take no arguments; `_mi_auto_process_init` is meant to run once, at
    // the process's start, which the check ensures (mimalloc sets the flag first).
    unsafe {
        if _mi_preloading() {
            _mi_auto_process_init();
        }
    }
}

/// The alignment `mi_malloc` guarantees for blocks of at least that size
/// (`MI_MAX_ALIGN_SIZE` in mimalloc's types.h, v2 and v3).
const MIN_ALIGN: usize = 16;

unsafe extern "C" {
    // mimalloc (mimalloc.h, and below two of its internal functions), linked in through
    // the `mimalloc` crate.
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_zalloc(size: usize) -> *mut c_void;
    fn mi_realloc(p: *mut c_void, newsize: usize) -> *mut c_void;
    // mimalloc's own start (src/init.c, v2 and v3): what its constructor calls.
    fn _mi_auto_process_init();
    // True until `_mi_auto_process_init` ran.
    fn _mi_preloading() -> bool;
}

/// mimalloc with plain (not aligned) calls where they suffice, or the C library's
/// malloc.
#[derive(Debug)]
pub struct Alloc;

/// Whether a plain `mi_malloc` of `size` bytes is aligned to `align`.
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: the choice is made before the first block and never changes, so every block
// goes back to the allocator it came from; mimalloc's blocks go back to it (`mi_free`
// takes blocks of both families); the alignment is checked above or left to the
// aligned calls.
unsafe impl GlobalAlloc for Alloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if system() {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        } else if plain(layout.align(), layout.size()) {
            // SAFETY: any size is valid; null reports failure as `alloc` must.
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if system() {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        } else if plain(layout.align(), layout.size()) {
            // SAFETY: as in `alloc`.
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if system() {
            // SAFETY: `ptr` came from this allocator, which is `System`.
            unsafe { System.dealloc(ptr, layout) }
        } else {
            // SAFETY: `ptr` came from this allocator, i.e. from mimalloc.
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if system() {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.realloc(ptr, layout, new_size) }
        } else if plain(layout.align(), new_size) {
            // SAFETY: `ptr` is a live mimalloc block; `mi_realloc` keeps the first
            // `min(old, new)` bytes and returns null (leaving `ptr` alone) on failure.
            unsafe { mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The first block decides for mimalloc; a later `use_system` is refused, so no
    /// block can go back to the other allocator. (The test binaries' global allocator
    /// is the standard one; this drives `Alloc` directly.)
    #[test]
    fn the_first_block_decides_and_blocks_go_back_where_they_came_from() {
        let layout = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: a non-zero size; the block is written within its size and freed once
        // with the same layout.
        unsafe {
            let p = Alloc.alloc(layout);
            assert!(!p.is_null());
            p.write_bytes(7, 100);
            assert!(!use_system(), "a block exists; the choice must be made");
            assert_eq!(CHOICE.load(Ordering::Relaxed), MIMALLOC);
            assert!(!_mi_preloading(), "mimalloc was not started");
            let q = Alloc.realloc(p, layout, 5000);
            assert_eq!(*q.add(99), 7);
            Alloc.dealloc(q, Layout::from_size_align(5000, 8).unwrap());
        }
    }
}
