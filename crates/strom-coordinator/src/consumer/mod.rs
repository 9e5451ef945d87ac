//! Consumer groups (KIP-848, `group.protocol=consumer`): members heartbeat with
//! their subscriptions, the coordinator computes a target assignment with a
//! server-side assignor, and each member converges to its target through
//! `reconcile.rs`.
//!
//! Flow of a heartbeat (`heartbeat.rs`): validate, find or create the member
//! (static members may replace a departed instance), persist changed member
//! metadata, bump the group epoch when subscriptions or subscribed topics changed
//! (`ops.rs`), recompute the target assignment when the epoch is ahead of it, then
//! move the member one step towards its target.

pub(crate) mod describe;
pub(crate) mod group;
pub(crate) mod heartbeat;
pub(crate) mod ops;
pub(crate) mod persist;
pub(crate) mod reconcile;
pub(crate) mod timers;

pub use group::ConsumerGroupState;
