//! libFuzzer's `-malloc_limit_mb` needs a sanitizer's malloc hooks: in a build without
//! one (scripts/fuzz --smoke) nothing would see a single huge reservation, and
//! reservations are mapped lazily, so the RSS limit would not see it either. This
//! allocator applies the same limit itself, in every build.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes one allocation may take; 0 until `init` has read the command line.
static LIMIT: AtomicUsize = AtomicUsize::new(0);

pub struct LimitedAlloc;

#[global_allocator]
static ALLOCATOR: LimitedAlloc = LimitedAlloc;

/// Reads libFuzzer's `-malloc_limit_mb=N` (or, as libFuzzer does, `-rss_limit_mb=N`,
/// default 2048) from the command line.
pub fn init() {
    let flag = |name: &str| {
        std::env::args()
            .filter_map(|arg| arg.strip_prefix(name)?.parse::<usize>().ok())
            .last()
    };
    let mb = flag("-malloc_limit_mb=")
        .filter(|&mb| mb > 0)
        .or_else(|| flag("-rss_limit_mb="))
        .unwrap_or(2048);
    LIMIT.store(mb << 20, Ordering::Relaxed);
}

fn check(size: usize) {
    let limit = LIMIT.load(Ordering::Relaxed);
    if limit != 0 && size > limit {
        // libFuzzer saves the input when the process aborts (the report's own small
        // allocations stay under the limit).
        let _ = writeln!(
            std::io::stderr(),
            "==ERROR: libFuzzer: out-of-memory (malloc({size})), over -malloc_limit_mb\n{}",
            std::backtrace::Backtrace::force_capture()
        );
        std::process::abort();
    }
}

unsafe impl GlobalAlloc for LimitedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}
