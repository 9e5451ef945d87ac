//! The process allocator. Small allocations go to the system allocator;
//! very large ones are mapped with MAP_NORESERVE, so address space is
//! reserved but memory is only committed as pages are touched.
//!
//! Why: the `kafka-protocol` decoder sizes a `Vec` from an array length read
//! off the wire before it decodes a single element. A few malicious bytes can
//! claim billions of elements; with the system allocator that allocation
//! fails and the process aborts. Mapped lazily, the reservation costs nothing,
//! decoding fails on the missing bytes, and the mapping is released. Real
//! memory use stays bounded by the frame size (`socket.request.max.bytes`),
//! which is checked before anything is buffered.

use std::alloc::{GlobalAlloc, Layout, System};

pub struct LazyLargeAllocator;

/// At or above this size an allocation is mapped rather than malloc'd. No
/// legitimate allocation in strom comes near it.
const LARGE_BYTES: usize = 1 << 30;
const PAGE_BYTES: usize = 4096;

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE_BYTES && layout.align() <= PAGE_BYTES
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        ptr.cast()
    }
}

// SAFETY: every pointer is freed by the same mechanism that produced it,
// decided by the layout size, which the caller passes back unchanged.
unsafe impl GlobalAlloc for LazyLargeAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            // Anonymous mappings are zero-filled.
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(&layout) {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_large(&layout) && !is_large(&new_layout) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new_ptr
    }
}

#[cfg(test)]
mod tests {
    /// Without the lazy mapping this reservation (128 GiB, more than the
    /// machine has) fails and aborts the test process.
    #[test]
    fn an_absurd_capacity_is_reserved_lazily_and_released() {
        let mut huge: Vec<[u8; 64]> = Vec::with_capacity(1 << 31);
        huge.push([7; 64]);
        assert_eq!(huge[0][63], 7);
        assert!(huge.capacity() >= 1 << 31);
        drop(huge);
        let small = vec![1u8; 1024];
        assert_eq!(small.iter().map(|b| *b as usize).sum::<usize>(), 1024);
    }

    #[test]
    fn growing_across_the_threshold_keeps_contents() {
        let mut bytes: Vec<u8> = Vec::with_capacity(16);
        bytes.extend_from_slice(b"keep me");
        bytes.reserve_exact(super::LARGE_BYTES);
        assert_eq!(&bytes[..], b"keep me");
        bytes.shrink_to_fit();
        assert_eq!(&bytes[..], b"keep me");
    }
}
