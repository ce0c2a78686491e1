//! Where a process runs, in words: "in docker container 3f2a9b0c1d2e", "in pod 5d1c2e3f…".
//!
//! Owns the phrase every text uses for a [`ContainerFacts`], one catalogue per language, and
//! the line that puts it into a proc or job text. Ids are cut to the 12 characters `docker ps`
//! prints, pod uids to 8; nothing here asks a runtime for a name.

use super::fill;
use crate::model::{ContainerFacts, Lang};

/// The words for where a process runs. The runtime, id, pod uid and unit are shown as the facts
/// give them.
struct Words {
    /// `{unit}`: a systemd unit.
    in_unit: &'static str,
    /// `{runtime}`, `{id}`, `{pod}`.
    in_container_of_pod: &'static str,
    /// `{runtime}`, `{id}`.
    in_container: &'static str,
    /// `{pod}`.
    in_pod: &'static str,
    /// `{place}` (one of the phrases above), `{uid}`: a rootless runtime's user.
    of_user: &'static str,
    /// `{place}`, `{stop}`: the full stop, or nothing after a cut pod uid's ellipsis.
    where_it_runs: &'static str,
}

const EN: Words = Words {
    in_unit: "in unit {unit}",
    in_container_of_pod: "in {runtime} container {id} of pod {pod}",
    in_container: "in {runtime} container {id}",
    in_pod: "in pod {pod}",
    of_user: "{place} of user {uid}",
    where_it_runs: "Where it runs: {place}{stop}",
};

const RU: Words = Words {
    in_unit: "в юните {unit}",
    in_container_of_pod: "в контейнере {runtime} {id} пода {pod}",
    in_container: "в контейнере {runtime} {id}",
    in_pod: "в поде {pod}",
    of_user: "{place} пользователя {uid}",
    where_it_runs: "Где работает: {place}{stop}",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Ru => &RU,
    }
}

/// The phrase for where a process runs, or `None` when it runs in no container, pod or unit
/// (or the facts say nothing that can be shown).
pub fn place(container: &ContainerFacts, lang: Lang) -> Option<String> {
    let w = words(lang);
    let runtime = container.runtime.as_str();
    let id = container.short_id();
    let pod = container.short_pod_uid().map(|uid| format!("{uid}…"));
    let unit = container.unit.as_deref();
    let template = match (runtime, id, &pod, unit) {
        ("none", ..) => return None,
        ("systemd", _, _, Some(_)) => w.in_unit,
        (_, Some(_), Some(_), _) => w.in_container_of_pod,
        (_, Some(_), None, _) => w.in_container,
        (_, None, Some(_), _) => w.in_pod,
        _ => return None,
    };
    let vars = [
        ("runtime", runtime),
        ("id", id.unwrap_or_default()),
        ("pod", pod.as_deref().unwrap_or_default()),
        ("unit", unit.unwrap_or_default()),
    ];
    let phrase = fill(template, &vars);
    Some(match container.rootless_uid {
        Some(uid) => fill(w.of_user, &[("place", &phrase), ("uid", &uid.to_string())]),
        None => phrase,
    })
}

/// `" (in docker container 3f2a9b0c1d2e)"` for appending to a name, or nothing.
pub fn suffix(container: Option<&ContainerFacts>, lang: Lang) -> String {
    container
        .and_then(|c| place(c, lang))
        .map(|phrase| format!(" ({phrase})"))
        .unwrap_or_default()
}

/// `text` with a line saying where the process runs after its first line, when that is known.
pub(super) fn with_place(text: String, container: Option<&ContainerFacts>, lang: Lang) -> String {
    let Some(place) = container.and_then(|c| place(c, lang)) else {
        return text;
    };
    // A cut pod uid already ends the sentence with its ellipsis.
    let stop = if place.ends_with('…') { "" } else { "." };
    let line = fill(
        words(lang).where_it_runs,
        &[("place", &place), ("stop", stop)],
    );
    match text.split_once('\n') {
        Some((first, rest)) => format!("{first}\n{line}\n{rest}"),
        None => format!("{text}\n{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_fills, every_lang};
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
    fn every_place_template_fills_completely() {
        for lang in every_lang() {
            let Words {
                in_unit,
                in_container_of_pod,
                in_container,
                in_pod,
                of_user,
                where_it_runs,
            } = words(lang);
            assert_fills(
                "container",
                lang,
                &[
                    ("in_unit", in_unit, &["unit"]),
                    (
                        "in_container_of_pod",
                        in_container_of_pod,
                        &["runtime", "id", "pod"],
                    ),
                    ("in_container", in_container, &["runtime", "id"]),
                    ("in_pod", in_pod, &["pod"]),
                    ("of_user", of_user, &["place", "uid"]),
                    ("where_it_runs", where_it_runs, &["place", "stop"]),
                ],
            );
        }
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
