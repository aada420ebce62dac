//! The container and orchestration files, checked without Docker or a
//! cluster (neither runs here): they parse, every file they name exists,
//! the image is multi-stage, runs as a non-root user and checks `/healthz`,
//! and every `SWITCHBOARD_*` variable they set is one the binary reads.

mod common;

use std::fs;
use std::process::Command;

use common::project_path;
use serde_json::Value;

fn read(relative: &str) -> String {
    fs::read_to_string(project_path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn compose() -> Value {
    serde_saphyr::from_str(&read("docker-compose.yml")).expect("docker-compose.yml parses")
}

/// The `switchboard serve --help` text: it names every environment variable.
fn serve_help() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--help"])
        .output()
        .expect("switchboard runs");
    String::from_utf8(output.stdout).expect("UTF-8 help")
}

fn check_dockerfile(dir: &str) -> String {
    let path = if dir == "." {
        "Dockerfile".to_owned()
    } else {
        format!("{dir}/Dockerfile")
    };
    let text = read(&path);
    // Every COPY from the build context names something that exists.
    for line in text.lines().map(str::trim) {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            let source = if dir == "." {
                source.to_string()
            } else {
                format!("{dir}/{source}")
            };
            assert!(
                project_path(&source).exists(),
                "{path}: COPY {source}: missing"
            );
        }
    }
    text
}

#[test]
fn the_image_is_multi_stage_non_root_and_health_checked() {
    let text = check_dockerfile(".");
    assert_eq!(text.lines().filter(|l| l.starts_with("FROM ")).count(), 2);
    let user = text
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(user != "root" && user != "0", "runs as {user}");
    let healthcheck = text.split("HEALTHCHECK").nth(1).expect("a HEALTHCHECK");
    assert!(healthcheck.contains("/healthz"), "{healthcheck}");
    assert!(text.contains("SWITCHBOARD_ADMIN=0.0.0.0:9060"));
    // The default command's settings file exists and is valid.
    assert!(text.contains(r#"CMD ["serve", "--config", "config/switchboard.yaml"]"#));
    let settings =
        switchboard::settings::Settings::from_file(&project_path("config/switchboard.yaml"))
            .expect("the image's settings file parses");
    settings.check_limits().expect("valid limits");
    let help = serve_help();
    for line in text.lines() {
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("SWITCHBOARD_") {
                assert!(help.contains(word), "the binary does not read {word}");
            }
        }
    }
    check_dockerfile("deploy/sipp");
    check_dockerfile("deploy/kamailio");
}

#[test]
fn the_compose_file_names_only_files_that_exist() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    for name in [
        "switchboard",
        "sipp",
        "switchboard-a",
        "switchboard-b",
        "kamailio",
        "sipp-dispatched",
    ] {
        assert!(services.contains_key(name), "no service {name}");
    }
    let help = serve_help();
    for (name, service) in services {
        if let Some(build) = service["build"].as_str() {
            assert!(
                project_path(build).join("Dockerfile").exists(),
                "{name}: no Dockerfile in {build}"
            );
        }
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let volume = volume.as_str().expect("short volume syntax");
            let host = volume.split(':').next().expect("a host path");
            assert!(host.starts_with("./"), "{name}: {volume}");
            assert!(project_path(host).exists(), "{name}: {host} missing");
        }
        for (key, _) in service["environment"].as_object().into_iter().flatten() {
            assert!(
                help.contains(key.as_str()),
                "{name}: the binary does not read {key}"
            );
        }
        for port in service["ports"].as_array().into_iter().flatten() {
            let port = port.as_str().expect("a port mapping");
            let (mapping, protocol) = port.split_once('/').expect("a protocol");
            assert!(matches!(protocol, "udp" | "tcp"), "{name}: {port}");
            assert!(mapping.split(':').all(|p| !p.is_empty()), "{name}: {port}");
        }
        // Scenario files the SIPp services run.
        let entrypoint = service["entrypoint"].to_string();
        for file in ["uac_redirect.xml", "calls.csv"] {
            if entrypoint.contains("/scenarios/") {
                assert!(entrypoint.contains(file), "{name}: {file}");
                assert!(project_path("sipp-scenarios").join(file).exists());
            }
        }
    }
    let list = read("deploy/kamailio/dispatcher.compose.list");
    for replica in ["switchboard-a", "switchboard-b"] {
        assert!(list.contains(&format!("sip:{replica}:5060")), "{list}");
    }
}

#[test]
fn the_kubernetes_manifest_has_a_deployment_a_service_and_probes() {
    let documents: Vec<Value> = serde_saphyr::from_multiple(&read("deploy/kubernetes.yaml"))
        .expect("deploy/kubernetes.yaml parses");
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["Deployment", "Service"]);
    let container = &documents[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let protocols: Vec<&str> = documents[1]["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["protocol"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(protocols, ["UDP", "TCP"]);
    let help = serve_help();
    for variable in container["env"].as_array().expect("env") {
        let name = variable["name"].as_str().expect("a name");
        assert!(help.contains(name), "the binary does not read {name}");
    }
}
