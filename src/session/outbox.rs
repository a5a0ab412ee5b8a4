//! The bounded outbound queue of one WebSocket connection.
//!
//! The session actor pushes serialised frames without ever waiting; the
//! socket's writer task pops them. When the queue is full (a slow reader),
//! everything queued is dropped and the outbox is marked *needs resync*:
//! further frames are dropped until the writer has caught up, at which point
//! it reports [`Next::Resync`] and the actor sends a fresh full state
//! (snapshot) instead of the lost frames. Memory per connection is bounded by
//! [`QueueLimits`]; nothing here is unbounded.

use crate::config::QueueLimits;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// What the writer should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send this text frame.
    Frame(String),
    /// The queue overflowed and is now drained: ask the actor for a resync.
    Resync,
    /// Send a close frame and stop.
    Close,
}

/// The result of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// The frame is queued.
    Queued,
    /// The frame was dropped (closed, or waiting for a resync).
    Dropped,
    /// The queue was full: it was cleared and now waits for a resync.
    Overflowed,
}

#[derive(Debug)]
enum Item {
    Frame(String),
    Close,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Item>,
    bytes: usize,
    needs_resync: bool,
    resync_signalled: bool,
    closed: bool,
}

/// A bounded, non-blocking outbound queue (one per socket).
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    limits: QueueLimits,
}

impl Outbox {
    /// An empty outbox with the given bounds.
    pub fn new(limits: QueueLimits) -> Arc<Outbox> {
        Arc::new(Outbox {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            limits,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-push; the
        // queue itself is still consistent enough to keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a frame without waiting; see [`Push`].
    pub fn push(&self, frame: String) -> Push {
        let mut s = self.lock();
        if s.closed || s.needs_resync {
            return Push::Dropped;
        }
        let full = !s.queue.is_empty()
            && (s.queue.len() >= self.limits.frames || s.bytes + frame.len() > self.limits.bytes);
        if full {
            s.queue.clear();
            s.bytes = 0;
            s.needs_resync = true;
            s.resync_signalled = false;
            drop(s);
            self.notify.notify_one();
            return Push::Overflowed;
        }
        s.bytes += frame.len();
        s.queue.push_back(Item::Frame(frame));
        drop(s);
        self.notify.notify_one();
        Push::Queued
    }

    /// Queue a last frame (bypassing the bounds) followed by a close; later
    /// pushes are dropped.
    pub fn push_final(&self, frame: Option<String>) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        if let Some(f) = frame {
            s.bytes += f.len();
            s.queue.push_back(Item::Frame(f));
        }
        s.queue.push_back(Item::Close);
        s.closed = true;
        drop(s);
        self.notify.notify_one();
    }

    /// Whether the outbox is waiting for a resync.
    pub fn needs_resync(&self) -> bool {
        self.lock().needs_resync
    }

    /// The actor is about to push the fresh state: accept frames again.
    pub fn resynced(&self) {
        let mut s = self.lock();
        s.needs_resync = false;
        s.resync_signalled = false;
    }

    /// Number of queued frames (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wait for the next thing to do (single consumer: the writer task).
    pub async fn next(&self) -> Next {
        loop {
            {
                let mut s = self.lock();
                if let Some(item) = s.queue.pop_front() {
                    return match item {
                        Item::Frame(f) => {
                            s.bytes = s.bytes.saturating_sub(f.len());
                            Next::Frame(f)
                        }
                        Item::Close => Next::Close,
                    };
                }
                if s.needs_resync && !s.resync_signalled && !s.closed {
                    s.resync_signalled = true;
                    return Next::Resync;
                }
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overflow_drops_queue_and_asks_for_resync_once() {
        let ob = Outbox::new(QueueLimits {
            frames: 2,
            bytes: 1000,
        });
        assert_eq!(ob.push("a".into()), Push::Queued);
        assert_eq!(ob.push("b".into()), Push::Queued);
        assert_eq!(ob.push("c".into()), Push::Overflowed);
        assert_eq!(ob.push("d".into()), Push::Dropped);
        assert!(ob.is_empty());
        assert_eq!(ob.next().await, Next::Resync);
        // Still waiting for the actor: frames stay dropped, no second signal.
        assert_eq!(ob.push("e".into()), Push::Dropped);
        ob.resynced();
        assert_eq!(ob.push("snapshot".into()), Push::Queued);
        assert_eq!(ob.next().await, Next::Frame("snapshot".into()));
    }

    #[tokio::test]
    async fn byte_bound_and_single_large_frame() {
        let ob = Outbox::new(QueueLimits {
            frames: 100,
            bytes: 10,
        });
        // One frame larger than the byte bound is still accepted alone.
        assert_eq!(ob.push("x".repeat(50)), Push::Queued);
        assert_eq!(ob.push("y".into()), Push::Overflowed);
    }

    #[tokio::test]
    async fn final_frame_then_close() {
        let ob = Outbox::new(QueueLimits {
            frames: 1,
            bytes: 10,
        });
        assert_eq!(ob.push("a".into()), Push::Queued);
        ob.push_final(Some("ended".into()));
        assert_eq!(ob.push("late".into()), Push::Dropped);
        assert_eq!(ob.next().await, Next::Frame("a".into()));
        assert_eq!(ob.next().await, Next::Frame("ended".into()));
        assert_eq!(ob.next().await, Next::Close);
    }
}
