//! The deployment files: the compose example, checked by Debian's docker-compose (`.ci/run`
//! installs it) and read for its hardening; the Kubernetes DaemonSet, parsed and read for its
//! security settings. Each assertion is one an operator relies on.

mod common;

use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn repo(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

fn strings(yaml: &Yaml) -> Vec<String> {
    yaml.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The compose file as `docker-compose config` resolves it, with the example env file in place
/// of the real one (which is never committed) and a `.env` holding the endpoint's token.
fn compose_config() -> Yaml {
    let output = docker_compose_config(Some("WATCHDOG_LISTEN_TOKEN=t0k3n-from-dot-env\n"));
    assert!(
        output.status.success(),
        "docker-compose config refused the file: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    YamlLoader::load_from_str(&String::from_utf8(output.stdout).unwrap())
        .unwrap()
        .remove(0)
}

/// `docker-compose config` on the compose file, the example env file, and `dot_env` as `.env`.
fn docker_compose_config(dot_env: Option<&str>) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    if let Some(dot_env) = dot_env {
        std::fs::write(dir.path().join(".env"), dot_env).unwrap();
    }
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        repo("docker-compose.yml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env.watchdog"),
        repo(".env.watchdog.example"),
    )
    .unwrap();
    let (output, _) = common::run_within(
        Command::new("docker-compose")
            .args(["-f", "docker-compose.yml", "config"])
            .env_remove("WATCHDOG_LISTEN_TOKEN")
            .current_dir(dir.path()),
        std::time::Duration::from_secs(60),
    )
    .unwrap_or_else(|waited| panic!("docker-compose config still ran after {waited:?}"));
    output
}

#[test]
fn compose_listens_beyond_loopback_only_with_a_token_from_dot_env() {
    let env = &compose_config()["services"]["watchdog"]["environment"];
    assert_eq!(env["WATCHDOG_LISTEN"].as_str(), Some("0.0.0.0:19847"));
    assert_eq!(
        env["WATCHDOG_LISTEN_TOKEN"].as_str(),
        Some("t0k3n-from-dot-env"),
        "the token of .env, over the example's empty one"
    );
    let without = docker_compose_config(None);
    assert!(!without.status.success(), "no token, no start");
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(
        stderr.contains("set WATCHDOG_LISTEN_TOKEN in .env"),
        "{stderr}"
    );
}

#[test]
fn compose_gives_the_host_pids_to_the_watchdog_alone_and_hardens_it() {
    let config = compose_config();
    let services = config["services"].as_hash().unwrap();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let pid = service["pid"].as_str();
        if name == "watchdog" {
            assert_eq!(pid, Some("host"), "the watchdog sees the host's pids");
        } else {
            assert_eq!(pid, None, "{name} must not get pid: host");
        }
    }
    let watchdog = &config["services"]["watchdog"];
    assert_eq!(watchdog["read_only"].as_bool(), Some(true));
    assert_eq!(strings(&watchdog["cap_drop"]), ["ALL"]);
    assert_eq!(
        strings(&watchdog["security_opt"]),
        ["no-new-privileges:true"]
    );
    assert_eq!(watchdog["user"].as_str(), Some("10001:10001"), "not root");
    let env = &watchdog["environment"];
    assert_eq!(env["WATCHDOG_PROC_ENABLED"].as_str(), Some("true"));
    assert_eq!(env["WATCHDOG_LISTEN"].as_str(), Some("0.0.0.0:19847"));
    let host = env["WATCHDOG_HOST"].as_str().unwrap();
    assert!(
        !host.is_empty() && !host.contains('$'),
        "a stable name: {host}"
    );
    let state_dir = env["WATCHDOG_STATE_DIR"].as_str().unwrap();
    // (source, target) of each volume, in the short (`src:dst:rw`) or the long form.
    let volumes: Vec<(String, String)> = watchdog["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| match v.as_str() {
            Some(short) => {
                let mut parts = short.split(':');
                (
                    parts.next().unwrap().to_string(),
                    parts.next().unwrap_or_default().to_string(),
                )
            }
            None => (
                v["source"].as_str().unwrap().into(),
                v["target"].as_str().unwrap().into(),
            ),
        })
        .collect();
    let (source, _) = volumes
        .iter()
        .find(|(_, target)| target == state_dir)
        .expect("a volume at WATCHDOG_STATE_DIR");
    assert!(
        !source.starts_with('/') && !source.starts_with('.'),
        "a named volume: {source}"
    );
    assert!(
        config["volumes"][source.as_str()].as_hash().is_some(),
        "{source} is declared"
    );
    assert_eq!(
        strings(&watchdog["healthcheck"]["test"]),
        ["CMD", "watchdog", "healthcheck", "--ready"]
    );
    let grace = watchdog["stop_grace_period"].as_str().unwrap();
    let seconds: u64 = grace.trim_end_matches('s').parse().unwrap();
    assert!(seconds > 5, "covers the 5-second shutdown: {grace}");
    // env_file was read: the example's defaults reach the service.
    assert_eq!(env["WATCHDOG_PROC_AGE_MIN"].as_str(), Some("60"));
}

fn daemonset() -> Yaml {
    let docs = YamlLoader::load_from_str(&repo("deploy/kubernetes/daemonset.yaml")).unwrap();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["DaemonSet", "Service"]);
    docs.into_iter().next().unwrap()
}

#[test]
fn the_daemonset_sees_host_pids_with_nothing_else_privileged() {
    let ds = daemonset();
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"].as_bool(), Some(true));
    assert_eq!(pod["hostNetwork"].as_bool(), None);
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod["securityContext"]["runAsUser"].as_i64(), Some(10001));
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );
    let containers = pod["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    assert_eq!(
        strings(&c["securityContext"]["capabilities"]["drop"]),
        ["ALL"]
    );
    assert!(c["securityContext"]["capabilities"]["add"].is_badvalue());
    assert!(c["securityContext"]["privileged"].is_badvalue());
}

#[test]
fn the_daemonset_probes_names_the_node_and_keeps_state() {
    let ds = daemonset();
    let pod = &ds["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    let ports = c["ports"].as_vec().unwrap();
    assert_eq!(ports[0]["name"].as_str(), Some("metrics"));
    assert_eq!(ports[0]["containerPort"].as_i64(), Some(19847));
    let env = c["env"].as_vec().unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"].as_str() == Some(name))
            .unwrap()
            .clone()
    };
    assert_eq!(
        var("WATCHDOG_HOST")["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("spec.nodeName")
    );
    assert_eq!(
        var("WATCHDOG_LISTEN")["value"].as_str(),
        Some("0.0.0.0:19847")
    );
    // Beyond loopback, so with a token from a secret that must exist.
    let token = &var("WATCHDOG_LISTEN_TOKEN")["valueFrom"]["secretKeyRef"];
    assert_eq!(token["name"].as_str(), Some("watchdog-listen-token"));
    assert_eq!(token["key"].as_str(), Some("token"));
    assert!(token["optional"].as_bool() != Some(true), "not optional");
    assert_eq!(var("WATCHDOG_PROC_ENABLED")["value"].as_str(), Some("true"));
    let state_dir = var("WATCHDOG_STATE_DIR")["value"]
        .as_str()
        .unwrap()
        .to_string();
    let mount = &c["volumeMounts"][0];
    let mounted = mount["mountPath"].as_str().unwrap();
    // A subdirectory watchdog creates 0700 itself: the volume may be a 0777 emptyDir.
    assert_eq!(
        std::path::Path::new(&state_dir).parent(),
        Some(std::path::Path::new(mounted)),
        "the state dir is a subdirectory of the volume"
    );
    let volume = &pod["volumes"][0];
    assert_eq!(volume["name"], mount["name"]);
    assert!(
        volume["hostPath"]["path"].as_str().is_some(),
        "state survives pod restarts"
    );
    // The init container that makes the hostPath the pod user's: root, CHOWN and nothing else.
    let init = &pod["initContainers"][0];
    assert_eq!(strings(&init["command"]), ["chown", "10001:10001", mounted]);
    assert_eq!(
        strings(&init["securityContext"]["capabilities"]["drop"]),
        ["ALL"]
    );
    assert_eq!(
        strings(&init["securityContext"]["capabilities"]["add"]),
        ["CHOWN"]
    );
    let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
    assert!(grace > 5, "covers the 5-second shutdown");
}

#[test]
fn the_service_and_service_monitor_scrape_the_metrics_port() {
    let docs = YamlLoader::load_from_str(&repo("deploy/kubernetes/daemonset.yaml")).unwrap();
    let service = &docs[1];
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_str(),
        Some("metrics")
    );
    let ds_labels = &docs[0]["spec"]["template"]["metadata"]["labels"];
    assert_eq!(service["spec"]["selector"], *ds_labels);
    let monitor =
        YamlLoader::load_from_str(&repo("deploy/kubernetes/servicemonitor.yaml")).unwrap();
    let monitor = &monitor[0];
    assert_eq!(monitor["kind"].as_str(), Some("ServiceMonitor"));
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"].as_str(),
        Some("metrics")
    );
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["metadata"]["labels"]
    );
    // It sends the token /metrics needs, from the secret the pods read it from.
    let sent = &monitor["spec"]["endpoints"][0]["bearerTokenSecret"];
    let env = docs[0]["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_vec()
        .unwrap();
    let token = env
        .iter()
        .find(|e| e["name"].as_str() == Some("WATCHDOG_LISTEN_TOKEN"))
        .expect("the pods have a token");
    let from = &token["valueFrom"]["secretKeyRef"];
    assert_eq!(sent["name"], from["name"]);
    assert_eq!(sent["key"], from["key"]);
    assert!(sent["name"].as_str().is_some());
}

#[test]
fn the_dockerfile_runs_watchdog_as_a_non_root_user_with_a_healthcheck() {
    let dockerfile = repo("Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let has = |text: &str| lines.iter().any(|l| l.trim() == text);
    assert!(has(r#"ENTRYPOINT ["watchdog"]"#));
    assert!(has(r#"CMD ["run"]"#));
    assert!(has("USER 10001:10001"));
    assert!(has("FROM scratch"), "a small static final image");
    assert!(lines
        .iter()
        .any(|l| l.contains(r#"CMD ["watchdog", "healthcheck"]"#)));
    assert!(
        lines.iter().any(|l| l.contains("ca-certificates.crt")),
        "CA certificates for HTTPS"
    );
}
