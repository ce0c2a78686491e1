//! The job list's shape: JSON documents (or SQLite rows turned into them) to [`Job`]s.
//!
//! Owns what a job list must hold and how each field is read: an array of jobs or an object
//! with a `jobs` array; per job an `id` (text or a whole number), `state` or `status`,
//! `started_at`, and optional `pid`, `name`, `ended_at`, `heartbeat_at`. Pure: it reads
//! nothing, and never panics on any document (a fuzz target feeds it arbitrary JSON).
//!
//! A list without a job list, or a job without a usable id, is refused whole: nothing then
//! tells which jobs are there. A job with an id but another malformed field is *unreadable*:
//! reported by id with why, and the rest of the list is used.

use serde::Serialize;
use serde_json::Value;

use crate::SourceError;

/// One job as the orchestrator lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// `7` and `"7"` are the same job.
    pub id: String,
    pub name: Option<String>,
    /// In the orchestrator's pid namespace (see `WATCHDOG_JOBS_PID_NS`).
    pub pid: Option<u32>,
    /// `state` or `status`, as given.
    pub state: String,
    /// Unix seconds.
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
}

/// The jobs of a list, and the ids of those with a malformed field with why.
pub type Parsed = (Vec<Job>, Vec<(String, String)>);

/// Parses job documents: each a JSON array of jobs, or an object with a `jobs` array.
///
/// # Errors
/// A document that holds no list ([`SourceError::NoJobList`]), or a job without a usable `id`
/// ([`SourceError::NoUsableId`]): the whole collection fails.
pub fn parse_jobs(documents: &[Value]) -> Result<Parsed, SourceError> {
    let mut jobs = Vec::new();
    let mut unreadable = Vec::new();
    for document in documents {
        let list = match document {
            Value::Array(list) => list,
            Value::Object(object) => match object.get("jobs") {
                Some(Value::Array(list)) => list,
                _ => return Err(SourceError::NoJobList),
            },
            _ => return Err(SourceError::NoJobList),
        };
        for (index, item) in list.iter().enumerate() {
            let id = job_id(item).ok_or(SourceError::NoUsableId { index })?;
            match parse_job(&id, item) {
                Ok(job) => jobs.push(job),
                Err(reason) => unreadable.push((id, reason)),
            }
        }
    }
    Ok((jobs, unreadable))
}

/// A string or a whole number; `7` and `"7"` are the same id.
fn job_id(item: &Value) -> Option<String> {
    match item.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => n
            .as_u64()
            .map(|n| n.to_string())
            .or_else(|| n.as_i64().map(|n| n.to_string())),
        _ => None,
    }
}

fn parse_job(id: &str, item: &Value) -> Result<Job, String> {
    let pid = match item.get("pid") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("pid {value} is not a process id"))?,
        ),
    };
    let state = match item.get("state").or_else(|| item.get("status")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(format!("state {other} is not text")),
        None => return Err("has no state or status".into()),
    };
    let started_at = time_field(item, "started_at")?.ok_or("has no started_at")?;
    let name = match item.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("name {other} is not text")),
    };
    Ok(Job {
        id: id.to_string(),
        name,
        pid,
        state,
        started_at,
        ended_at: time_field(item, "ended_at")?,
        heartbeat_at: time_field(item, "heartbeat_at")?,
    })
}

/// A time: RFC 3339 text or Unix seconds; absent or null is `None`.
fn time_field(item: &Value, field: &str) -> Result<Option<i64>, String> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.is_finite() && *x >= 0.0 && *x < 1e12)
            .map(|x| Some(x as i64))
            .ok_or_else(|| format!("{field} {n} is not a time")),
        Some(Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| Some(t.unix_timestamp()))
                .map_err(|_| format!("{field} {s:?} is not an RFC 3339 time"))
        }
        Some(other) => Err(format!("{field} {other} is not a time")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_parse_from_both_shapes_with_ids_of_either_type() {
        let list = json!([
            {"id": 7, "pid": 42, "state": "running", "started_at": "2026-11-28T08:00:00Z", "extra": 1},
            {"id": "7b", "pid": null, "status": "queued", "started_at": 1795000000, "name": "lint"}
        ]);
        let (jobs, unreadable) = parse_jobs(&[list]).unwrap();
        assert!(unreadable.is_empty());
        assert_eq!(jobs[0].id, "7");
        assert_eq!(jobs[0].pid, Some(42));
        assert_eq!(jobs[0].started_at, 1_795_852_800);
        assert_eq!(
            (jobs[1].pid, jobs[1].state.as_str(), jobs[1].name.as_deref()),
            (None, "queued", Some("lint"))
        );
        let object = json!({"jobs": [{"id": "7", "state": "running", "started_at": 1}]});
        assert_eq!(parse_jobs(&[object]).unwrap().0[0].id, "7");
    }

    #[test]
    fn a_job_without_a_usable_id_fails_the_whole_list() {
        for bad in [
            json!([{"pid": 1, "state": "running", "started_at": 1}]),
            json!([{"id": "", "state": "running", "started_at": 1}]),
            json!([{"id": 1.5, "state": "running", "started_at": 1}]),
            json!([{"id": [1], "state": "running", "started_at": 1}]),
        ] {
            let error = parse_jobs(std::slice::from_ref(&bad)).unwrap_err();
            assert!(
                matches!(error, SourceError::NoUsableId { index: 0 }),
                "{bad}: {error}"
            );
        }
        for bad in [json!({"items": []}), json!("jobs"), json!(42)] {
            let error = parse_jobs(std::slice::from_ref(&bad)).unwrap_err();
            assert!(matches!(error, SourceError::NoJobList), "{bad}: {error}");
        }
    }

    #[test]
    fn a_job_with_a_malformed_field_is_unreadable_and_the_rest_are_used() {
        let cases = [
            json!({"id": 1, "pid": -4, "state": "running", "started_at": 1}),
            json!({"id": 1, "pid": "42", "state": "running", "started_at": 1}),
            json!({"id": 1, "state": 3, "started_at": 1}),
            json!({"id": 1, "started_at": 1}),
            json!({"id": 1, "state": "running"}),
            json!({"id": 1, "state": "running", "started_at": "yesterday"}),
            json!({"id": 1, "state": "running", "started_at": 1, "ended_at": true}),
            json!({"id": 1, "state": "running", "started_at": 1, "heartbeat_at": "soon"}),
            json!({"id": 1, "state": "running", "started_at": 1, "name": 5}),
        ];
        for case in cases {
            let list = json!([case.clone(), {"id": 2, "state": "running", "started_at": 1}]);
            let (jobs, unreadable) = parse_jobs(&[list]).unwrap();
            assert_eq!(unreadable.len(), 1, "{case}");
            assert_eq!(unreadable[0].0, "1", "{case}");
            assert_eq!(jobs.len(), 1, "{case}: the other job is used");
        }
    }
}
