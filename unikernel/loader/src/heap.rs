//! A bump allocator for the loader's few allocations (the device tree).
//!
//! Nothing is ever freed: whatever the loader allocates (above all the FDT) must
//! outlive it, and the heap sits in the loader's .bss, below the application,
//! where the kernel never allocates.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

const HEAP_SIZE: usize = 256 * 1024;

#[repr(align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

// SAFETY: the arena is only handed out in disjoint pieces by `Bump::alloc`.
unsafe impl Sync for Arena {}

struct Bump {
    arena: Arena,
    next: AtomicUsize,
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.arena.0.get() as usize;
        // Relaxed: the loader runs on one CPU; the atomic only makes the static Sync.
        let mut offset = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + offset).next_multiple_of(layout.align()) - base;
            let end = match start.checked_add(layout.size()) {
                Some(end) if end <= HEAP_SIZE => end,
                _ => return ptr::null_mut(),
            };
            match self
                .next
                .compare_exchange_weak(offset, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return (base + start) as *mut u8,
                Err(current) => offset = current,
            }
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static HEAP: Bump = Bump {
    arena: Arena(UnsafeCell::new([0; HEAP_SIZE])),
    next: AtomicUsize::new(0),
};
