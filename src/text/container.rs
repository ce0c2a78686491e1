//! Where a process runs, in words: "in docker container 3f2a9b0c1d2e", "in pod 5d1c2e3f…".
//!
//! Owns the phrase every text uses for a [`ContainerFacts`]. Ids are cut to the 12 characters
//! `docker ps` prints, pod uids to 8; nothing here asks a runtime for a name.

use crate::model::{ContainerFacts, Lang};

/// The phrase for where a process runs, or `None` when it runs in no container, pod or unit
/// (or the facts say nothing that can be shown).
pub fn place(container: &ContainerFacts, lang: Lang) -> Option<String> {
    let id = container.short_id();
    let pod = container.short_pod_uid().map(|uid| format!("{uid}…"));
    let runtime = container.runtime.as_str();
    let user = container.rootless_uid;
    let phrase = match (lang, runtime, id, pod, container.unit.as_deref()) {
        (_, "none", ..) => return None,
        (Lang::En, "systemd", _, _, Some(unit)) => format!("in unit {unit}"),
        (Lang::Ru, "systemd", _, _, Some(unit)) => format!("в юните {unit}"),
        (Lang::En, _, Some(id), Some(pod), _) => {
            format!("in {runtime} container {id} of pod {pod}")
        }
        (Lang::Ru, _, Some(id), Some(pod), _) => format!("в контейнере {runtime} {id} пода {pod}"),
        (Lang::En, _, Some(id), None, _) => format!("in {runtime} container {id}"),
        (Lang::Ru, _, Some(id), None, _) => format!("в контейнере {runtime} {id}"),
        (Lang::En, _, None, Some(pod), _) => format!("in pod {pod}"),
        (Lang::Ru, _, None, Some(pod), _) => format!("в поде {pod}"),
        _ => return None,
    };
    Some(match (user, lang) {
        (Some(uid), Lang::En) => format!("{phrase} of user {uid}"),
        (Some(uid), Lang::Ru) => format!("{phrase} пользователя {uid}"),
        (None, _) => phrase,
    })
}

/// `" (in docker container 3f2a9b0c1d2e)"` for appending to a name, or nothing.
pub fn suffix(container: Option<&ContainerFacts>, lang: Lang) -> String {
    container
        .and_then(|c| place(c, lang))
        .map(|phrase| format!(" ({phrase})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9b0c1d2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a";
    const POD: &str = "5d1c2e3f-0f37-412d-88b7-e23d65f6cad4";

    fn c(runtime: &str, id: Option<&str>, pod: Option<&str>, unit: Option<&str>) -> ContainerFacts {
        ContainerFacts {
            runtime: runtime.into(),
            id: id.map(str::to_owned),
            pod_uid: pod.map(str::to_owned),
            unit: unit.map(str::to_owned),
            rootless_uid: None,
        }
    }

    #[test]
    fn each_shape_reads_as_people_say_it() {
        let mut rootless = c("podman", Some(ID), None, None);
        rootless.rootless_uid = Some(1000);
        let cases = [
            (
                c("docker", Some(ID), None, None),
                Some("in docker container 3f2a9b0c1d2e"),
            ),
            (
                c("containerd", Some(ID), Some(POD), None),
                Some("in containerd container 3f2a9b0c1d2e of pod 5d1c2e3f…"),
            ),
            (
                c("kubernetes", None, Some(POD), None),
                Some("in pod 5d1c2e3f…"),
            ),
            (
                c("systemd", None, None, Some("ssh.service")),
                Some("in unit ssh.service"),
            ),
            (
                rootless,
                Some("in podman container 3f2a9b0c1d2e of user 1000"),
            ),
            (c("none", None, None, None), None),
            (c("systemd", None, None, None), None),
        ];
        for (container, want) in cases {
            assert_eq!(
                place(&container, Lang::En).as_deref(),
                want,
                "{container:?}"
            );
            assert_eq!(
                place(&container, Lang::Ru).is_some(),
                want.is_some(),
                "ru says something exactly when en does: {container:?}"
            );
        }
        assert_eq!(
            place(&c("docker", Some(ID), None, None), Lang::Ru).as_deref(),
            Some("в контейнере docker 3f2a9b0c1d2e")
        );
    }

    #[test]
    fn the_suffix_is_empty_without_a_place() {
        assert_eq!(suffix(None, Lang::En), "");
        assert_eq!(suffix(Some(&c("none", None, None, None)), Lang::En), "");
        assert_eq!(
            suffix(Some(&c("docker", Some(ID), None, None)), Lang::En),
            " (in docker container 3f2a9b0c1d2e)"
        );
    }
}
