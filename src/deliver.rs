//! Delivery: each channel's queue of undelivered events and the task that empties it.
//!
//! Owns the queue per channel and its delivery loop. The tick only adds to a queue, after its
//! commit, so delivery never blocks it. The loop sends the oldest event, and on a retryable
//! failure waits (exponential backoff from 1 s, capped at `WATCHDOG_RETRY_MAX_S`, or the
//! receiver's `Retry-After` within that cap) and sends it again, for as long as the event stays
//! queued: events go out in order, at least once, each with its stable id. A permanent refusal
//! dead-letters the event. Every outcome is a mark sent to the store's writer thread: nothing
//! here does I/O on disk or holds a lock across an await.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::endpoint::View;
use crate::metrics::{ChannelLabels, Metrics};
use crate::model::mask_text;
use crate::notify::{Notifier, NotifyError};
use crate::store::{push_bounded, Decided, DeliveryStatus, Mark, Queued, Store};

/// One channel: its notifier, its queue and the signals between the tick and its task.
pub struct Channel {
    notifier: Box<dyn Notifier>,
    queue: Mutex<VecDeque<Queued>>,
    /// Wakes the delivery task when events are added.
    wake: Notify,
    /// The queue's length after every change, for shutdown to wait on.
    depth: watch::Sender<usize>,
    store: Store,
    outbox_max: usize,
    view: Arc<View>,
}

impl Channel {
    /// A channel whose queue starts with what the store held for it.
    pub fn new(
        notifier: Box<dyn Notifier>,
        queued: Vec<Queued>,
        store: Store,
        outbox_max: usize,
        view: Arc<View>,
    ) -> Self {
        let (depth, _) = watch::channel(0);
        let channel = Self {
            notifier,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            depth,
            store,
            outbox_max,
            view,
        };
        channel.push(queued);
        channel
    }

    /// Counts one event in `counter`, labelled with this channel.
    fn count(&self, counter: &Family<ChannelLabels, Counter>) {
        counter.get_or_create(&Metrics::channel(self.name())).inc();
    }

    pub fn name(&self) -> &'static str {
        self.notifier.name()
    }

    pub fn depth(&self) -> usize {
        self.lock().len()
    }

    /// Adds committed events to the queue and wakes the delivery task. Over the bound,
    /// reminders are dropped first; each drop is marked and logged as an error.
    pub fn enqueue(&self, events: &[Decided]) {
        if events.is_empty() {
            return;
        }
        self.push(
            events
                .iter()
                .map(|d| Queued {
                    seq: d.seq,
                    event: Arc::clone(&d.event),
                    attempts: 0,
                })
                .collect(),
        );
        self.wake.notify_one();
    }

    fn push(&self, items: Vec<Queued>) {
        let mut queue = self.lock();
        for item in items {
            for dropped in push_bounded(&mut queue, item, self.outbox_max, |q| q.event.event) {
                let dropped = dropped.0;
                self.count(&self.view.metrics.events_dropped);
                self.record(Mark {
                    seq: dropped.seq,
                    channel: self.name(),
                    status: DeliveryStatus::Dropped,
                    attempts: dropped.attempts,
                    last_error: Some(format!("outbox full ({} events)", self.outbox_max)),
                });
                tracing::error!(
                    channel = self.name(),
                    id = %dropped.event.id,
                    event = dropped.event.event.as_str(),
                    entity = %dropped.event.entity,
                    max = self.outbox_max,
                    "outbox full: dropped an undelivered event"
                );
            }
        }
        self.published(queue.len());
    }

    /// Waits until the queue is empty, or for at most `grace`. Returns whether it emptied.
    pub async fn drain(&self, grace: Duration) -> bool {
        let mut depth = self.depth.subscribe();
        tokio::time::timeout(grace, depth.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Queued>> {
        // A panic while holding the lock leaves a queue that is still a valid queue.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn published(&self, depth: usize) {
        self.depth.send_replace(depth);
        self.view
            .metrics
            .outbox_depth
            .get_or_create(&Metrics::channel(self.name()))
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Sends `mark` to the store and to `/status`.
    fn record(&self, mark: Mark) {
        self.view.delivery(&mark);
        self.store.mark(mark);
    }

    /// The head of the queue, if any.
    fn head(&self) -> Option<Queued> {
        self.lock().front().cloned()
    }

    /// Counts a failed attempt on the head, if it is still `seq`; returns the attempts so far.
    fn failed(&self, seq: i64) -> u32 {
        let mut queue = self.lock();
        match queue.front_mut() {
            Some(head) if head.seq == seq => {
                head.attempts = head.attempts.saturating_add(1);
                head.attempts
            }
            _ => 0,
        }
    }

    /// Removes the event `seq` if it is still at the head (the bound may have dropped it).
    fn remove_head(&self, seq: i64) {
        let mut queue = self.lock();
        if queue.front().is_some_and(|e| e.seq == seq) {
            queue.pop_front();
            self.published(queue.len());
        }
    }
}

/// Delivers `channel`'s queue until the task is aborted.
pub async fn run(channel: Arc<Channel>, retry_max: Duration) {
    let mut failures: u32 = 0;
    loop {
        let Some(head) = channel.head() else {
            channel.wake.notified().await;
            continue;
        };
        let event = &head.event;
        let mark = |status, attempts, last_error| Mark {
            seq: head.seq,
            channel: channel.name(),
            status,
            attempts,
            last_error,
        };
        match channel.notifier.send(event).await {
            Ok(()) => {
                failures = 0;
                channel.count(&channel.view.metrics.events_sent);
                channel.remove_head(head.seq);
                channel.record(mark(DeliveryStatus::Delivered, head.attempts + 1, None));
                tracing::info!(
                    channel = channel.name(),
                    id = %event.id,
                    event = event.event.as_str(),
                    entity = %event.entity,
                    "delivered"
                );
            }
            Err(NotifyError::Retryable {
                reason,
                retry_after,
            }) => {
                let delay = retry_after
                    .unwrap_or_else(|| backoff(failures, jitter()))
                    .min(retry_max);
                failures = failures.saturating_add(1);
                channel.count(&channel.view.metrics.events_failed);
                let attempts = channel.failed(head.seq);
                let reason = mask_text(&reason);
                tracing::warn!(
                    channel = channel.name(),
                    id = %event.id,
                    attempt = attempts,
                    retry_in_s = delay.as_secs_f64(),
                    "delivery failed: {reason}; will retry"
                );
                channel.record(mark(DeliveryStatus::Queued, attempts, Some(reason)));
                tokio::time::sleep(delay).await;
            }
            Err(NotifyError::Permanent { reason }) => {
                failures = 0;
                channel.count(&channel.view.metrics.events_dead_lettered);
                let reason = mask_text(&reason);
                channel.remove_head(head.seq);
                let dead = mark(
                    DeliveryStatus::DeadLettered,
                    head.attempts + 1,
                    Some(reason),
                );
                channel.view.delivery(&dead);
                // The store logs it once the dead-letter file holds it.
                channel.store.dead_letter(Arc::clone(event), dead);
            }
        }
    }
}

/// 1 s, 2 s, 4 s, ... after each consecutive failure, each shortened by up to half at random
/// (`jitter` in `0.0..1.0`), so many watchdogs that lost the same receiver at once do not all
/// come back at the same second.
fn backoff(failures: u32, jitter: f64) -> Duration {
    let full = Duration::from_secs(1u64 << failures.min(20));
    full.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0)
}

/// A fraction in `0.0..1.0` from the standard library's randomly keyed hasher: enough to spread
/// retries, and no random-number crate for it.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second() {
        let delays: Vec<u64> = (0..5).map(|n| backoff(n, 0.0).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16]);
        assert_eq!(backoff(u32::MAX, 0.0), Duration::from_secs(1 << 20));
    }

    #[test]
    fn jitter_shortens_a_delay_by_at_most_half() {
        assert_eq!(
            backoff(3, 0.999_999),
            Duration::from_secs(8).mul_f64(1.0 - 0.999_999 / 2.0)
        );
        assert_eq!(backoff(3, 1.0), Duration::from_secs(4));
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
            let d = backoff(4, j);
            assert!(
                d > Duration::from_secs(8) && d <= Duration::from_secs(16),
                "{d:?}"
            );
        }
        let spread: std::collections::BTreeSet<u64> = (0..50).map(|_| jitter().to_bits()).collect();
        assert!(spread.len() > 40, "jitter does not vary: {spread:?}");
    }
}
