//! The decoder never allocates from a length it read: measured with a counting allocator.
//! (One test per binary, so no other test's allocations are counted.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use writelog::format::{
    encode_block, encode_log_header, Block, DecodeLimits, Kind, LogDecoder, LOG_HEADER_LEN,
};

struct Counting;
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_block_claiming_4_gib_in_100_bytes_allocates_next_to_nothing() {
    let mut bytes = Vec::new();
    encode_log_header(&mut bytes);
    let block = Block {
        seq: 1,
        kind: Kind::Append,
        batch_first: true,
        batch_left: 0,
        key: b"key",
        payload: b"x",
    };
    encode_block(&mut bytes, &block);
    // Claim a payload of u32::MAX bytes and pad to 100 bytes of input.
    bytes[LOG_HEADER_LEN + 28..LOG_HEADER_LEN + 32].copy_from_slice(&u32::MAX.to_le_bytes());
    bytes.resize(100, 0xAB);

    let before = ALLOCATED.load(Ordering::SeqCst);
    let items: Vec<_> = LogDecoder::new(&bytes, DecodeLimits::default()).collect();
    let allocated = ALLOCATED.load(Ordering::SeqCst) - before;

    assert_eq!(items.len(), 1);
    assert!(items[0].is_err(), "the block is damage, not a record");
    assert!(
        allocated < 1024,
        "decoding 100 bytes allocated {allocated} bytes"
    );
}
