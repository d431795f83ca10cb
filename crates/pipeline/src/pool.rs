//! Chunk buffers, reused for the length of a stream.
//!
//! Every chunk needs a buffer or two of about the chunk size. Allocating
//! them afresh costs twice: each new buffer's pages are faulted in and
//! zeroed by the kernel (a visible share of the work when compression is
//! off), and the allocator's per-thread arenas keep what the workers free
//! on threads other than the one that allocated it, so the process's RSS
//! grows well past the few chunks really in use. A small free list keeps
//! the same few buffers going round instead.

use std::sync::Mutex;

pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    capacity: usize,
    keep: usize,
}

impl BufferPool {
    /// Buffers of `capacity` bytes; at most `keep` are kept when idle.
    pub fn new(capacity: usize, keep: usize) -> Self {
        BufferPool {
            free: Mutex::new(Vec::with_capacity(keep)),
            capacity,
            keep,
        }
    }

    /// An empty buffer with room for `capacity` bytes.
    pub fn take(&self) -> Vec<u8> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// Hand a buffer back for reuse (or drop it, if enough are kept or it
    /// is too small to be reused).
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() < self.capacity {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_go_round_and_the_idle_ones_are_capped() {
        let pool = BufferPool::new(1000, 2);
        let mut a = pool.take();
        assert!(a.is_empty() && a.capacity() >= 1000);
        a.extend_from_slice(b"data");
        let a_ptr = a.as_ptr();
        pool.give(a);
        let again = pool.take();
        assert_eq!(again.as_ptr(), a_ptr, "reused");
        assert!(again.is_empty(), "handed out empty");
        pool.give(again);
        pool.give(Vec::with_capacity(1000));
        pool.give(Vec::with_capacity(1000));
        pool.give(Vec::with_capacity(10));
        assert_eq!(pool.free.lock().unwrap().len(), 2);
    }
}
