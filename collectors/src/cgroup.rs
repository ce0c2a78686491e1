//! Container attribution: which container, pod or systemd unit a process lives in, from its
//! `cgroup` file.
//!
//! Owns the cgroup path shapes that container engines, the kubelet and systemd make, on cgroup
//! v1 and v2, with the systemd and the cgroupfs drivers ([`parse`], pure), and reads one file,
//! `<root>/<pid>/cgroup` ([`read`]), only when a caller asks for one process. It never asks a
//! container runtime's socket for names and needs no privilege beyond seeing the host's /proc
//! (`pid: host`). It never trusts a name a user could have chosen: a container or pod shape
//! inside a delegated `user@<uid>.service` subtree is reported as that user's, never as a pod.
//!
//! `None` means "cannot say": a file that is not a cgroup file, or an id or pod uid of the wrong
//! shape. [`Runtime::None`] means "said, and it is in no container": the root, or a cgroup that
//! names no container, pod or unit.

use std::path::Path;

use serde::Serialize;

use crate::CollectError;

/// The largest `cgroup` file read, in bytes; a real one is well under 1 KiB.
pub const CGROUP_MAX_BYTES: usize = 64 * 1024;

/// The length of a container id, in hex characters (docker, podman, containerd, CRI-O).
const ID_LEN: usize = 64;

/// How many characters of an id people read: docker prints the first 12.
pub const SHORT_ID_LEN: usize = 12;

/// What owns the cgroup a process lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Runtime {
    #[serde(rename = "docker")]
    Docker,
    #[serde(rename = "podman")]
    Podman,
    #[serde(rename = "containerd")]
    Containerd,
    #[serde(rename = "cri-o")]
    CriO,
    /// A pod's cgroup with no container scope inside it, or a container whose engine the path
    /// does not name (`/kubepods/<qos>/pod<uid>/<id>`, the cgroupfs driver).
    #[serde(rename = "kubernetes")]
    Kubernetes,
    /// A plain systemd unit (`*.service`, `*.scope`).
    #[serde(rename = "systemd")]
    Systemd,
    /// The root cgroup, or one that names nothing above.
    #[serde(rename = "none")]
    None,
}

impl Runtime {
    /// The name as facts and texts carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Kubernetes => "kubernetes",
            Runtime::Systemd => "systemd",
            Runtime::None => "none",
        }
    }
}

/// Where a process runs, as its cgroup path says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub runtime: Runtime,
    /// The container id: 64 lower-case hex characters.
    pub id: Option<String>,
    /// The Kubernetes pod uid in its dashed form; never set inside a delegated user subtree.
    pub pod_uid: Option<String>,
    /// The systemd unit, for [`Runtime::Systemd`] only.
    pub unit: Option<String>,
    /// Set when the cgroup lies inside `user@<uid>.service`, a subtree that systemd delegates
    /// to that user: every name below it (container, unit) is the user's choice.
    pub rootless_uid: Option<u32>,
}

impl Container {
    fn plain(runtime: Runtime, unit: Option<&str>, rootless_uid: Option<u32>) -> Self {
        Self {
            runtime,
            id: None,
            pod_uid: None,
            unit: unit.map(str::to_owned),
            rootless_uid,
        }
    }

    /// The first 12 characters of the id, as `docker ps` prints it.
    pub fn short_id(&self) -> Option<&str> {
        self.id
            .as_deref()
            .map(|id| id.get(..SHORT_ID_LEN).unwrap_or(id))
    }
}

/// Reads and parses `<root>/<pid>/cgroup`.
///
/// `Ok(None)` when the file was read but names no shape that can be trusted.
///
/// # Errors
/// When the file cannot be read: the process is gone ([`CollectError::RootMissing`] naming the
/// file), the tree denies access ([`CollectError::PermissionDenied`]), or another I/O error.
/// Callers that attribute a process show no container then; the process itself still counts.
pub fn read(root: &Path, pid: u32) -> Result<Option<Container>, CollectError> {
    let path = root.join(pid.to_string()).join("cgroup");
    let bytes = crate::proc_root::read_small(&path, CGROUP_MAX_BYTES)
        .map_err(|e| CollectError::from_io(path, e))?;
    Ok(parse(&String::from_utf8_lossy(&bytes)))
}

/// Parses the contents of a `/proc/<pid>/cgroup` file.
///
/// Which line decides: on cgroup v1, the `name=systemd` line when it names a container or pod,
/// else the first hierarchy (in file order, then the v2 `0::` line of a hybrid host) that does;
/// when none does, the `name=systemd` line, else the `0::` line, says which unit it is. On pure
/// cgroup v2 that is the one `0::` line.
///
/// Returns `None` for anything that is not a cgroup file (a line that is not
/// `<hierarchy>:<controllers>:/<path>`), and when the deciding path has a container or pod shape
/// whose id is not 64 hex characters or whose pod uid is not a UUID.
pub fn parse(contents: &str) -> Option<Container> {
    let mut entries = Vec::new();
    for line in contents.lines() {
        if line.trim().is_empty() {
            continue;
        }
        entries.push(parse_line(line)?);
    }
    let systemd = entries
        .iter()
        .position(|e| e.hierarchy != 0 && e.controllers.split(',').any(|c| c == "name=systemd"));
    let unified = entries.iter().position(|e| e.hierarchy == 0);
    let v1_others = (0..entries.len()).filter(|&i| Some(i) != systemd && Some(i) != unified);
    let order = systemd.into_iter().chain(v1_others).chain(unified);
    for index in order {
        match shape(entries[index].path) {
            Shape::Contained(container) => return Some(container),
            Shape::Invalid => return None,
            Shape::Plain(_) => {}
        }
    }
    let primary = systemd.or(unified).or((!entries.is_empty()).then_some(0))?;
    match shape(entries[primary].path) {
        Shape::Plain(container) | Shape::Contained(container) => Some(container),
        Shape::Invalid => None,
    }
}

/// Classifies one cgroup path, as [`parse`] does for the line it picks.
pub fn classify(path: &str) -> Option<Container> {
    match shape(path) {
        Shape::Plain(container) | Shape::Contained(container) => Some(container),
        Shape::Invalid => None,
    }
}

struct Entry<'a> {
    hierarchy: u32,
    controllers: &'a str,
    path: &'a str,
}

fn parse_line(line: &str) -> Option<Entry<'_>> {
    let mut fields = line.splitn(3, ':');
    let hierarchy = fields.next()?;
    let controllers = fields.next()?;
    // A cgroup name may itself hold ':'; splitting into three keeps it whole.
    let path = fields.next()?;
    if hierarchy.is_empty() || !hierarchy.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !path.starts_with('/') {
        return None;
    }
    Some(Entry {
        hierarchy: hierarchy.parse().ok()?,
        controllers,
        path,
    })
}

/// What one path says.
enum Shape {
    /// In a container or a pod.
    Contained(Container),
    /// In a unit, or nothing.
    Plain(Container),
    /// A container or pod shape with an id or uid of the wrong form.
    Invalid,
}

/// What one component of a path is.
enum Component {
    Container(Runtime, String),
    Pod(String),
    Invalid,
    Other,
}

/// Prefixes of the container components that name their engine, with `.scope` (systemd driver)
/// or without (cgroupfs driver). `libpod-payload-` is podman's `--cgroups=split`.
const ENGINE_PREFIXES: &[(&str, Runtime)] = &[
    ("docker-", Runtime::Docker),
    ("libpod-payload-", Runtime::Podman),
    ("libpod-", Runtime::Podman),
    ("cri-containerd-", Runtime::Containerd),
    ("crio-", Runtime::CriO),
];

fn shape(path: &str) -> Shape {
    let all: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    // In a private cgroup namespace, cgroups outside it show as `/../..`: what follows is still
    // the real path below the common ancestor.
    let outside = all.iter().take_while(|p| **p == "..").count();
    let parts = &all[outside..];
    if parts.iter().any(|p| *p == ".." || *p == ".") {
        return Shape::Invalid;
    }

    // The outermost `user@<uid>.service` is systemd's; anything under it, even another
    // `user@0.service`, was made by that user.
    let mut delegated: Option<(usize, u32)> = None;
    for (index, part) in parts.iter().enumerate() {
        if let Some(uid) = part
            .strip_prefix("user@")
            .and_then(|p| p.strip_suffix(".service"))
        {
            match parse_uid(uid) {
                Some(uid) => delegated = Some((index, uid)),
                None => return Shape::Invalid,
            }
            break;
        }
    }
    let delegated_at = |index: usize| delegated.is_some_and(|(at, _)| index > at);

    let mut container: Option<(usize, Runtime, String)> = None;
    let mut pod: Option<(usize, String)> = None;
    for (index, part) in parts.iter().enumerate() {
        let parent = index.checked_sub(1).map(|i| parts[i]);
        let parent_is_pod = pod.as_ref().is_some_and(|(at, _)| at + 1 == index);
        let under_kubepods = parts[..index].contains(&"kubepods");
        match component(part, parent, under_kubepods, parent_is_pod) {
            Component::Container(runtime, id) => container = Some((index, runtime, id)),
            // A pod slice a user made in their own subtree is not a pod.
            Component::Pod(uid) if !delegated_at(index) => pod = Some((index, uid)),
            Component::Pod(_) | Component::Other => {}
            Component::Invalid => return Shape::Invalid,
        }
    }

    let rootless_uid = delegated.map(|(_, uid)| uid);
    // A pod cgroup below the innermost container (a pod inside a kind node's container) is
    // where the process really is.
    let pod_is_innermost = match (&container, &pod) {
        (Some((c, ..)), Some((p, _))) => p > c,
        (None, Some(_)) => true,
        _ => false,
    };
    if pod_is_innermost {
        return Shape::Contained(Container {
            runtime: Runtime::Kubernetes,
            id: None,
            pod_uid: pod.map(|(_, uid)| uid),
            unit: None,
            rootless_uid: None,
        });
    }
    if let Some((at, runtime, id)) = container {
        let rootless = delegated_at(at);
        return Shape::Contained(Container {
            runtime,
            id: Some(id),
            pod_uid: if rootless {
                None
            } else {
                pod.map(|(_, uid)| uid)
            },
            unit: None,
            rootless_uid: if rootless { rootless_uid } else { None },
        });
    }
    let unit = parts
        .iter()
        .rev()
        .find(|p| p.ends_with(".service") || p.ends_with(".scope"));
    Shape::Plain(match unit {
        Some(unit) => Container::plain(Runtime::Systemd, Some(unit), rootless_uid),
        None => Container::plain(Runtime::None, None, rootless_uid),
    })
}

fn component(
    part: &str,
    parent: Option<&str>,
    under_kubepods: bool,
    parent_is_pod: bool,
) -> Component {
    // conmon is podman's and CRI-O's monitor: it sits beside the container, it is not one.
    if part == "conmon" || part.contains("-conmon-") {
        return Component::Other;
    }
    let base = part.strip_suffix(".scope").unwrap_or(part);
    // `docker-cleanup.service` or `docker-x.slice` are units, not containers.
    if !base.contains('.') {
        for (prefix, runtime) in ENGINE_PREFIXES {
            if let Some(id) = base.strip_prefix(prefix) {
                return container_id(*runtime, id);
            }
        }
        if parent == Some("docker") {
            return container_id(Runtime::Docker, part);
        }
    }
    // systemd driver: `kubepods-<qos>-pod<uid>.slice`, with `_` for `-` in the uid because
    // systemd reads `-` in a slice name as nesting.
    if let Some(slice) = part.strip_suffix(".slice") {
        if slice.contains("kubepods") {
            if let Some(at) = slice.rfind("-pod") {
                let escaped = &slice[at + "-pod".len()..];
                // A dash there would be systemd nesting: no real slice has one.
                if escaped.contains('-') {
                    return Component::Invalid;
                }
                return pod_uid(&escaped.replace('_', "-"));
            }
        }
        return Component::Other;
    }
    if part.contains('.') {
        return Component::Other;
    }
    // cgroupfs driver: `/kubepods/<qos>/pod<uid>/<id>`.
    if under_kubepods {
        if let Some(uid) = part.strip_prefix("pod") {
            return pod_uid(uid);
        }
        if parent_is_pod {
            return container_id(Runtime::Kubernetes, part);
        }
    }
    Component::Other
}

fn container_id(runtime: Runtime, id: &str) -> Component {
    if id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Component::Container(runtime, id.to_ascii_lowercase())
    } else {
        Component::Invalid
    }
}

fn pod_uid(uid: &str) -> Component {
    if is_uuid(uid) {
        Component::Pod(uid.to_ascii_lowercase())
    } else {
        Component::Invalid
    }
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn parse_uid(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e";
    const UID: &str = "5d1c2a3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    #[test]
    fn a_uuid_has_four_dashes_in_place_and_hex_elsewhere() {
        assert!(is_uuid(UID));
        assert!(!is_uuid(&UID.replace('-', "_")));
        assert!(!is_uuid(&UID[1..]));
        assert!(!is_uuid(&UID.replacen('5', "g", 1)));
        assert!(!is_uuid(""));
    }

    #[test]
    fn the_outermost_user_service_decides_whose_subtree_it_is() {
        let path = format!(
            "/user.slice/user-1000.slice/user@1000.service/app.slice/user@0.service/docker-{ID}.scope"
        );
        let c = classify(&path).unwrap();
        assert_eq!((c.runtime, c.rootless_uid), (Runtime::Docker, Some(1000)));
    }

    #[test]
    fn an_uppercase_id_is_reported_lower_case() {
        let c = classify(&format!("/docker/{}", ID.to_uppercase())).unwrap();
        assert_eq!(c.id.as_deref(), Some(ID));
        assert_eq!(c.short_id(), Some("3f2a9b0c1d2e"));
    }

    #[test]
    fn dots_inside_a_path_are_not_a_path() {
        assert_eq!(
            classify(&format!("/system.slice/../docker-{ID}.scope")),
            None
        );
        assert_eq!(classify("/system.slice/./ssh.service"), None);
    }

    #[test]
    fn lines_that_are_not_cgroup_lines_give_nothing() {
        for text in [
            "garbage",
            "0:",
            "x::/",
            ":name=systemd:/",
            "-1::/",
            "0::relative",
            "99999999999::/",
            "0::/\nnot a line",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
        assert_eq!(parse(""), None, "an empty file");
    }

    #[test]
    fn arbitrary_text_never_panics_the_parser() {
        let alphabet: &[u8] = b"0123456789abcdef:/.-_@ \npodkubesliceservicescopedockerlibpod";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 160) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            let with_prefix = format!("0::/{text}");
            for candidate in [&text, &with_prefix] {
                if let Some(c) = parse(candidate) {
                    assert!(
                        c.id.as_ref().is_none_or(|id| id.len() == ID_LEN),
                        "{candidate:?}"
                    );
                    assert!(c.pod_uid.as_deref().is_none_or(is_uuid), "{candidate:?}");
                }
            }
        }
    }
}
