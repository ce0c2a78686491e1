//! Container attribution over one fixture tree per cgroup shape (`fixtures/proc/cgroup_*`, the
//! file of pid 4242 in each), over single lines, on this machine's own cgroup file, and, where
//! the machine allows it, on a process this test moves into a cgroup of its own making.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use watchdog_collectors::cgroup::{self, Container, Runtime};
use watchdog_collectors::CollectError;

const DOCKER: &str = "e70105bb87f6ea3dc07daa379f8ebaab8505111542db8099504862ee35c2c2c9";
const DIND_INNER: &str = "841cfb647f50f97b959fde36a775f6281a15d3b9bbb317df361a69993bfd2e43";
const PODMAN: &str = "db3de87c95b9680e9c18ca7ed8881363424d373e2323c6a4322a9fb651899336";
const CONTAINERD: &str = "ae04cc67a411f262fb7ccf40210fca8d63dff8f3db11402684ff7d2d4d84b6a4";
const CRIO: &str = "6ff50d2b8839bc2d82f51ce6e88a6df89db403237ab5f18bc79943f9af49c414";
const KUBE_CGROUPFS: &str = "85cdc659ae30a6847bc18817ff1e6009dd5c27c111aea2c16b6798dc16d92f10";
const POD: &str = "8ae57dcd-0f37-412d-88b7-e23d65f6cad4";

fn fixture(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/proc")
        .join(scenario)
}

fn container(runtime: Runtime, id: &str) -> Option<Container> {
    Some(Container {
        runtime,
        id: Some(id.into()),
        pod_uid: None,
        unit: None,
        rootless_uid: None,
    })
}

fn in_pod(runtime: Runtime, id: &str) -> Option<Container> {
    container(runtime, id).map(|c| Container {
        pod_uid: Some(POD.into()),
        ..c
    })
}

fn rootless(runtime: Runtime, id: &str, uid: u32) -> Option<Container> {
    container(runtime, id).map(|c| Container {
        rootless_uid: Some(uid),
        ..c
    })
}

fn plain(runtime: Runtime, unit: Option<&str>) -> Option<Container> {
    Some(Container {
        runtime,
        id: None,
        pod_uid: None,
        unit: unit.map(str::to_owned),
        rootless_uid: None,
    })
}

#[test]
fn every_cgroup_shape_fixture_attributes_its_process() {
    let pod_only = Some(Container {
        runtime: Runtime::Kubernetes,
        id: None,
        pod_uid: Some(POD.into()),
        unit: None,
        rootless_uid: None,
    });
    let cases: Vec<(&str, Option<Container>)> = vec![
        (
            "cgroup_v1_docker_systemd_driver",
            container(Runtime::Docker, DOCKER),
        ),
        // name=systemd names the container although the unified line shows containerd's unit.
        (
            "cgroup_v1_docker_cgroupfs_driver",
            container(Runtime::Docker, DOCKER),
        ),
        (
            "cgroup_v1_no_systemd_hierarchy",
            container(Runtime::Docker, DOCKER),
        ),
        (
            "cgroup_v1_podman_cgroupfs_driver",
            container(Runtime::Podman, PODMAN),
        ),
        // The cgroupfs path does not name the engine: the pod's container, engine unknown.
        (
            "cgroup_v1_kubepods_cgroupfs_driver",
            in_pod(Runtime::Kubernetes, KUBE_CGROUPFS),
        ),
        (
            "cgroup_v2_docker_systemd_driver",
            container(Runtime::Docker, DOCKER),
        ),
        (
            "cgroup_v2_docker_cgroupfs_driver",
            container(Runtime::Docker, DOCKER),
        ),
        (
            "cgroup_v2_docker_in_docker",
            container(Runtime::Docker, DIND_INNER),
        ),
        (
            "cgroup_v2_podman_rootful",
            container(Runtime::Podman, PODMAN),
        ),
        (
            "cgroup_v2_podman_rootless",
            rootless(Runtime::Podman, PODMAN, 1000),
        ),
        (
            "cgroup_v2_podman_conmon",
            plain(
                Runtime::Systemd,
                Some(&format!("libpod-conmon-{PODMAN}.scope")),
            ),
        ),
        (
            "cgroup_v2_containerd_kubepods_systemd_driver",
            in_pod(Runtime::Containerd, CONTAINERD),
        ),
        (
            "cgroup_v2_crio_kubepods_systemd_driver",
            in_pod(Runtime::CriO, CRIO),
        ),
        ("cgroup_v2_crio_conmon_in_pod", pod_only.clone()),
        ("cgroup_v2_kubepods_guaranteed_pod_only", pod_only),
        (
            "cgroup_v2_kind_node_pod",
            in_pod(Runtime::Containerd, CONTAINERD),
        ),
        (
            "cgroup_v2_private_namespace",
            container(Runtime::Docker, DOCKER),
        ),
        (
            "cgroup_v2_plain_service",
            plain(Runtime::Systemd, Some("ssh.service")),
        ),
        ("cgroup_v2_root", plain(Runtime::None, None)),
        (
            "cgroup_v2_user_fake_pod",
            rootless(Runtime::Containerd, CONTAINERD, 1000),
        ),
        ("cgroup_v2_malformed_id", None),
        ("cgroup_v2_malformed_pod_uid", None),
    ];
    let on_disk: Vec<String> = fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("cgroup_"))
        .collect();
    assert_eq!(on_disk.len(), cases.len(), "a case for every cgroup_* tree");
    for (scenario, expected) in &cases {
        let got =
            cgroup::read(&fixture(scenario), 4242).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert_eq!(&got, expected, "{scenario}");
    }
}

#[test]
fn each_tree_places_its_init_in_no_container() {
    // pid 1 beside each shape is the host's systemd (or, without systemd, the root).
    for entry in fs::read_dir(fixture("")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("cgroup_") {
            continue;
        }
        let init = cgroup::read(&fixture(&name), 1).unwrap().unwrap();
        assert!(
            matches!(init.runtime, Runtime::Systemd | Runtime::None),
            "{name}: {init:?}"
        );
        assert_eq!(init.id, None, "{name}");
    }
}

#[test]
fn single_lines_classify_as_their_shape() {
    let id = DOCKER;
    let uid_ = POD.replace('-', "_");
    let cases: Vec<(&str, String, Option<Container>)> = vec![
        ("v2 root", "0::/".into(), plain(Runtime::None, None)),
        (
            "init scope",
            "0::/init.scope".into(),
            plain(Runtime::Systemd, Some("init.scope")),
        ),
        (
            "a service's own subgroup",
            "0::/system.slice/foo.service/worker".into(),
            plain(Runtime::Systemd, Some("foo.service")),
        ),
        (
            "a bare slice",
            "0::/system.slice".into(),
            plain(Runtime::None, None),
        ),
        (
            "an unknown group",
            "0::/process_api/c54f208e8d7295dd7551c559d0bc79a6".into(),
            plain(Runtime::None, None),
        ),
        (
            "a docker-named service is a unit",
            "0::/system.slice/docker-cleanup.service".into(),
            plain(Runtime::Systemd, Some("docker-cleanup.service")),
        ),
        (
            "docker.service itself",
            "0::/system.slice/docker.service".into(),
            plain(Runtime::Systemd, Some("docker.service")),
        ),
        (
            "podman split: the payload",
            format!("0::/system.slice/app.service/libpod-payload-{id}"),
            container(Runtime::Podman, id),
        ),
        (
            "cri-o with cgroupfs",
            format!("0::/kubepods/burstable/pod{POD}/crio-{id}"),
            in_pod(Runtime::CriO, id),
        ),
        (
            "a guaranteed pod with cgroupfs",
            format!("0::/kubepods/pod{POD}/{id}"),
            in_pod(Runtime::Kubernetes, id),
        ),
        (
            "a pod uid with dashes in a slice",
            format!("0::/kubepods.slice/kubepods-pod{POD}.slice/cri-containerd-{id}.scope"),
            None,
        ),
        (
            "a private namespace's own container",
            "0::/".into(),
            plain(Runtime::None, None),
        ),
        (
            "deep private namespace",
            format!("0::/../../../../kubepods.slice/kubepods-pod{uid_}.slice/crio-{id}.scope"),
            in_pod(Runtime::CriO, id),
        ),
        (
            "a user's own docker scope",
            format!("0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker-{id}.scope"),
            rootless(Runtime::Docker, id, 1000),
        ),
        (
            "a user's fake pod with no container is their manager's",
            format!("0::/user.slice/user-1000.slice/user@1000.service/kubepods-pod{uid_}.slice"),
            Some(Container {
                runtime: Runtime::Systemd,
                id: None,
                pod_uid: None,
                unit: Some("user@1000.service".into()),
                rootless_uid: Some(1000),
            }),
        ),
        (
            "a user service",
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service".into(),
            Some(Container {
                runtime: Runtime::Systemd,
                id: None,
                pod_uid: None,
                unit: Some("dbus.service".into()),
                rootless_uid: Some(1000),
            }),
        ),
        (
            "a user@ with no uid",
            format!("0::/user.slice/user@x.service/docker-{id}.scope"),
            None,
        ),
        (
            "a 63-character id",
            format!("0::/docker/{}", &id[1..]),
            None,
        ),
        ("a 65-character id", format!("0::/docker/{id}0"), None),
        (
            "a non-hex id",
            format!("0::/system.slice/docker-{}.scope", id.replace('e', "g")),
            None,
        ),
        ("buildkit under /docker", "0::/docker/buildkit".into(), None),
        (
            "a short id under a cgroupfs pod",
            format!("0::/kubepods/besteffort/pod{POD}/3f2a9b0c"),
            None,
        ),
        (
            "a cgroupfs pod with a bad uid",
            format!("0::/kubepods/besteffort/pod{}/{id}", &POD[..35]),
            None,
        ),
        (
            "a name with a colon stays whole",
            "0::/system.slice/a:b.service".into(),
            plain(Runtime::Systemd, Some("a:b.service")),
        ),
    ];
    for (case, text, expected) in &cases {
        assert_eq!(&cgroup::parse(text), expected, "{case}: {text}");
    }
}

#[test]
fn v1_prefers_the_systemd_hierarchy_then_the_first_that_names_a_container() {
    let id = DOCKER;
    let other = DIND_INNER;
    // name=systemd names one container, cpu another: name=systemd wins.
    let both = format!("3:cpu:/docker/{other}\n1:name=systemd:/docker/{id}\n0::/\n");
    assert_eq!(cgroup::parse(&both), container(Runtime::Docker, id));
    // name=systemd names a unit: the first hierarchy that names a container decides.
    let first = format!(
        "4:pids:/\n3:cpu:/docker/{other}\n2:memory:/docker/{id}\n1:name=systemd:/user.slice\n"
    );
    assert_eq!(cgroup::parse(&first), container(Runtime::Docker, other));
    // No hierarchy names a container: name=systemd says which unit.
    let unit =
        "3:cpu:/\n1:name=systemd:/system.slice/cron.service\n0::/system.slice/other.service\n";
    assert_eq!(
        cgroup::parse(unit),
        plain(Runtime::Systemd, Some("cron.service"))
    );
    // The deciding container shape is malformed: nothing, not a guess from another line.
    let malformed = format!("3:cpu:/docker/{id}\n1:name=systemd:/docker/abc\n");
    assert_eq!(cgroup::parse(&malformed), None);
}

#[test]
fn a_missing_cgroup_file_is_an_error_naming_it() {
    let root = fixture("cgroup_v2_root");
    let err = cgroup::read(&root, 9999).unwrap_err();
    assert!(
        matches!(&err, CollectError::RootMissing { path } if path.ends_with("9999/cgroup")),
        "{err}"
    );
}

#[test]
fn this_machines_own_cgroup_file_parses() {
    let own = cgroup::read(Path::new("/proc"), std::process::id()).unwrap();
    assert!(
        own.is_some(),
        "{:?}",
        fs::read_to_string("/proc/self/cgroup")
    );
}

/// A cgroup2 mount point of this machine: `/sys/fs/cgroup` on a v2 host, its `unified`
/// directory on a hybrid one.
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fstype = after.split_whitespace().next()?;
        let mount_point = before.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// Removes the test's cgroups and kills its process when dropped, pass or fail.
struct LiveCgroup {
    child: std::process::Child,
    dirs: Vec<PathBuf>,
}

impl Drop for LiveCgroup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for dir in self.dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

#[test]
#[ignore = "needs root and cgroup v2"]
fn a_process_moved_into_a_docker_shaped_cgroup_is_attributed_to_it() {
    let mount = cgroup2_mount().unwrap_or_else(|| {
        panic!(
            "no cgroup2 file system is mounted here (/proc/self/mountinfo): this test needs \
             cgroup v2 and must not pass without it"
        )
    });
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap();
    assert_eq!(
        euid, "0",
        "this test needs root to make cgroups; run it as root"
    );

    let id = format!("{:064x}", u128::from(std::process::id()) << 64 | 0xabc);
    let parent = mount.join(format!("watchdog-live-{}", std::process::id()));
    let scope = parent.join(format!("docker-{id}.scope"));
    let child = Command::new("sleep")
        .arg("300")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut live = LiveCgroup {
        child,
        dirs: vec![],
    };
    fs::create_dir(&parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    live.dirs.push(parent.clone());
    fs::create_dir(&scope).unwrap_or_else(|e| panic!("{}: {e}", scope.display()));
    live.dirs.push(scope.clone());
    fs::write(scope.join("cgroup.procs"), pid.to_string())
        .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", scope.display()));

    let raw = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let got = cgroup::read(Path::new("/proc"), pid).unwrap();
    assert_eq!(got, container(Runtime::Docker, &id), "{raw}");
    assert_eq!(got.unwrap().short_id(), Some(&id[..12]));
    drop(live);
    assert!(!scope.exists(), "the test's cgroup was removed");
}
