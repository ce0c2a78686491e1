//! Signals: what one tick concluded about each entity, before any alerting.
//!
//! Owns the pure builders that turn a collector's observations into signals (one submodule per
//! collector); the signal types themselves live in [`crate::model`]. Builders read nothing and
//! keep nothing: the same observations, memory and thresholds always give the same signals.

pub mod jobs;
pub mod proc;
