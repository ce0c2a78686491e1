//! Signals: what one tick concluded about each entity, before any alerting.
//!
//! Owns the pure builders that turn a collector's observations into signals (one submodule per
//! collector); the signal types themselves live in [`crate::model`]. Builders read nothing and
//! keep nothing: the same observations, memory and thresholds always give the same signals.

pub mod jobs;
pub mod pressure;
pub mod proc;

use watchdog_collectors::cgroup::Container;

use crate::model::ContainerFacts;

/// A collector's container attribution as the facts carry it.
pub fn container_facts(container: &Container) -> ContainerFacts {
    ContainerFacts {
        runtime: container.runtime.as_str().to_string(),
        id: container.id.clone(),
        pod_uid: container.pod_uid.clone(),
        unit: container.unit.clone(),
        rootless_uid: container.rootless_uid,
    }
}
