//! Reused pixel buffers. A 12-megapixel photo decoded at half size needs about 16 MB of
//! buffers; fresh ones every photo cost the kernel a page fault and a page clear every 4 KiB
//! (about a tenth of the whole pipeline's time). Each thread keeps the few buffers the last
//! photo gave back, so the next photo writes into memory that is already mapped.

use std::cell::RefCell;

/// Buffers kept per thread: what one photo uses (the file, RGB, luma, two chroma planes).
const KEPT: usize = 5;

/// Bytes kept per thread in all: a 12-megapixel photo needs about 16 MB, and a rare huge photo
/// must not stay resident.
const KEPT_BYTES: usize = 48 << 20;

/// A spare more than this many times larger than a request is not used for it (it would leave
/// the pool inside a small image).
const MOST_OVERSIZE: usize = 4;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` zero bytes, reusing a spare one when there is one big enough.
pub(crate) fn take(len: usize) -> Vec<u8> {
    let mut buffer = take_empty(len);
    buffer.resize(len, 0);
    buffer
}

/// An empty buffer with room for `capacity` bytes, reusing a spare one when there is one big
/// enough.
pub(crate) fn take_empty(capacity: usize) -> Vec<u8> {
    let spare = SPARE.with(|s| {
        let mut s = s.borrow_mut();
        // The smallest spare that fits, so a small request does not take the big one.
        let best = s
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                b.capacity() >= capacity && b.capacity() <= capacity.max(4096) * MOST_OVERSIZE
            })
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        best.map(|i| s.swap_remove(i))
    });
    match spare {
        Some(mut buffer) => {
            buffer.clear();
            buffer
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Gives a buffer back for the next photo on this thread.
pub(crate) fn give(buffer: Vec<u8>) {
    if buffer.capacity() == 0 || buffer.capacity() > KEPT_BYTES {
        return;
    }
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        // Make room, dropping the smallest spares first (the largest cost the most to make);
        // if only larger ones would have to go, this one is not kept.
        let total = |s: &Vec<Vec<u8>>| s.iter().map(Vec::capacity).sum::<usize>();
        while s.len() >= KEPT || total(&s) + buffer.capacity() > KEPT_BYTES {
            let smallest = s
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, b)| (i, b.capacity()));
            match smallest {
                Some((i, cap)) if cap < buffer.capacity() => {
                    s.swap_remove(i);
                }
                _ => return,
            }
        }
        s.push(buffer);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_reused_zeroed_and_the_pool_stays_bounded() {
        let mut b = take(1000);
        b.fill(7);
        let ptr = b.as_ptr();
        give(b);
        let again = take(900);
        assert_eq!(again.as_ptr(), ptr, "the spare buffer is reused");
        assert_eq!(again.len(), 900);
        assert!(again.iter().all(|&v| v == 0), "handed out zeroed");
        for n in 0..10 {
            give(vec![1; 100 + n]);
        }
        SPARE.with(|s| {
            let s = s.borrow();
            assert_eq!(s.len(), KEPT);
            assert!(
                s.iter().all(|b| b.capacity() >= 100 + 10 - KEPT),
                "the largest are kept"
            );
        });
        give(Vec::new());
        give(again);
    }

    #[test]
    fn the_pool_holds_a_bounded_number_of_bytes_and_keeps_small_requests_small() {
        for _ in 0..3 {
            give(Vec::with_capacity(20 << 20));
        }
        SPARE.with(|s| {
            let total: usize = s.borrow().iter().map(Vec::capacity).sum();
            assert!(total <= KEPT_BYTES, "{total} bytes kept");
        });
        // A small request does not take (and lose) a 20 MB spare.
        let small = take(1000);
        assert!(small.capacity() < 20 << 20);
        let big = take(10 << 20);
        assert_eq!(big.capacity(), 20 << 20, "a fitting spare is reused");
        SPARE.with(|s| s.borrow_mut().clear());
    }
}
