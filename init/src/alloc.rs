//! The `berth` binary's global allocator: mimalloc, called through its plain
//! `mi_malloc` family whenever that already gives the alignment asked for.
//!
//! `mimalloc::MiMalloc` sends every allocation through `mi_malloc_aligned`. In mimalloc
//! v3 that path is fast only while the free list of the size's page happens to start
//! at an aligned block; otherwise (a fresh page, any block over 1 KiB) it takes the
//! generic path, which over-allocates by the alignment for sizes that are not powers of
//! two. `berth eval` of 10,000 containers spent about 100 instructions per allocation
//! there (68M of the main thread's 648M, BENCHMARKS.md, Evaluation). `mi_malloc`
//! returns blocks aligned to 16 bytes (8 for an 8-byte block), which is what the
//! standard library's `System` allocator relies on from `malloc` under the same test.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment `mi_malloc` guarantees for blocks of at least that size
/// (`MI_MAX_ALIGN_SIZE` in mimalloc's types.h, v2 and v3).
const MIN_ALIGN: usize = 16;

unsafe extern "C" {
    // mimalloc's public API (mimalloc.h), linked in through the `mimalloc` crate.
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_zalloc(size: usize) -> *mut c_void;
    fn mi_realloc(p: *mut c_void, newsize: usize) -> *mut c_void;
}

/// mimalloc with plain (not aligned) calls where they suffice.
#[derive(Debug)]
pub struct Alloc;

/// Whether a plain `mi_malloc` of `size` bytes is aligned to `align`.
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes blocks
// of both families); the alignment is checked above or left to the aligned calls.
unsafe impl GlobalAlloc for Alloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            // SAFETY: any size is valid; null reports failure as `alloc` must.
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            // SAFETY: as in `alloc`.
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from mimalloc.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(layout.align(), new_size) {
            // SAFETY: `ptr` is a live mimalloc block; `mi_realloc` keeps the first
            // `min(old, new)` bytes and returns null (leaving `ptr` alone) on failure.
            unsafe { mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}
