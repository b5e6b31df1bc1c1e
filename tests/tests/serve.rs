//! `iga serve` end to end: start-up, bootstrap token, operations endpoints,
//! authentication, consistency tokens, problem+json errors, SIGTERM, restart.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{client, iga_binary, Server};
use serde_json::Value;

#[tokio::test]
async fn generated_admin_token_is_written_once_and_authenticates() {
    if common::single_process_only("generated_admin_token_is_written_once_and_authenticates") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let token_file = dir.path().join("admin.token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(token.starts_with("iga_") && token.len() > 40);
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        server.banner.iter().any(|l| l.contains(&token)),
        "printed once at first start"
    );

    let c = client();
    let me = c
        .get(server.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.headers()["etag"], "\"2\"");
    assert!(me.headers().contains_key("x-request-id"));
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], "admin");
    assert_eq!(me["roles"][0], "admin");
    assert_eq!(me["status"], "ENABLED");
    assert!(me["createdAt"].as_str().unwrap().ends_with('Z'));

    // Missing and unknown tokens are 401 problems.
    for req in [
        c.get(server.url("/api/v1/me")),
        c.get(server.url("/api/v1/me")).bearer_auth("iga_wrong"),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["status"], 401);
    }

    // A second start keeps the token and does not print it again.
    let (status, _) = server.terminate();
    assert!(status.success());
    let again = Server::start(dir.path(), &[]);
    assert!(!again.banner.iter().any(|l| l.contains(&token)));
    let r = c
        .get(again.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn admin_token_from_environment() {
    if common::single_process_only("admin_token_from_environment") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = "env-token-0123456789abcdef-0123456789";
    let server = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", token)]);
    assert!(!dir.path().join("admin.token").exists());
    let r = client()
        .get(server.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn operations_endpoints() {
    if common::single_process_only("operations_endpoints") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("IGA_ADMIN_TOKEN", "ops-token-0123456789abcdef-0123456789")],
    );
    let c = client();
    assert_eq!(
        c.get(server.url("/healthz")).send().await.unwrap().status(),
        200
    );
    let ready = c.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["logHead"], ready["readModelPosition"]);

    // `iga health`, the image's health check, asks the same endpoints and
    // fails where nothing answers.
    let listen = server.base.trim_start_matches("http://").to_string();
    let health = |listen: &str, extra: &[&str]| {
        Command::new(iga_binary())
            .arg("health")
            .args(extra)
            .env("IGA_LISTEN", listen)
            .output()
            .unwrap()
    };
    for extra in [&[][..], &["--ready"][..]] {
        let out = health(&listen, extra);
        assert!(out.status.success(), "{out:?}");
    }
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = unused.local_addr().unwrap().to_string();
    drop(unused);
    let out = health(&closed, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/healthz"));

    // Metrics in Prometheus text, counting what happened: the bootstrap's
    // four events and the token's first use (recorded just after).
    c.get(server.url("/api/v1/me"))
        .bearer_auth("ops-token-0123456789abcdef-0123456789")
        .send()
        .await
        .unwrap();
    common::wait_for_log_head(&server, 5).await;
    let metrics = c
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("iga_eventlog_appended_events_total 5"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"iga_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1"#),
        "{metrics}"
    );

    // OpenAPI 3.1 covering the routes and the bearer scheme.
    let spec: Value = c
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/api/v1/me", "/healthz", "/readyz"] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn errors_are_problem_json_with_the_right_status() {
    if common::single_process_only("errors_are_problem_json_with_the_right_status") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = "err-token-0123456789abcdef-0123456789";
    let server = Server::start(
        dir.path(),
        &[
            ("IGA_ADMIN_TOKEN", token),
            ("IGA_CONSISTENCY_WAIT_MS", "200"),
            ("IGA_MAX_BODY_BYTES", "1024"),
        ],
    );
    let c = client();
    let check = |status: u16| {
        move |r: reqwest::Response| {
            assert_eq!(r.status().as_u16(), status);
            assert_eq!(
                r.headers()["content-type"],
                "application/problem+json",
                "status {status}"
            );
            r
        }
    };
    check(404)(
        c.get(server.url("/api/v1/nothing-here"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    );
    check(413)(
        c.post(server.url("/api/v1/me"))
            .bearer_auth(token)
            .body(vec![b'x'; 4096])
            .send()
            .await
            .unwrap(),
    );
    check(405)(
        c.post(server.url("/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    );
    // A consistency token beyond the log's head can never be reached: 400 at
    // once, not a wait (503 + Retry-After is for positions the log has and
    // the read models have not reached within the wait).
    check(400)(
        c.get(server.url("/api/v1/me"))
            .bearer_auth(token)
            .header("X-Consistency-Token", "999999")
            .send()
            .await
            .unwrap(),
    );
    // One they have reached answers at once; a malformed one is 400.
    let r = c
        .get(server.url("/api/v1/me"))
        .bearer_auth(token)
        .header("X-Consistency-Token", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check(400)(
        c.get(server.url("/api/v1/me"))
            .bearer_auth(token)
            .header("X-Consistency-Token", "soon")
            .send()
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_state_survives_restart_verify_and_rebuild() {
    if common::single_process_only(
        "sigterm_stops_cleanly_and_state_survives_restart_verify_and_rebuild",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = "restart-token-0123456789abcdef-0123456789";
    let server = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", token)]);
    let c = client();
    let before: Value = c
        .get(server.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The token's first use is recorded just after the answer.
    common::wait_for_log_head(&server, 5).await;
    let (status, took) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");

    // The log verifies (the embedded one; JetStream checks its own) and the
    // read models rebuild while the server is down.
    if !common::on_jetstream() {
        let out = Command::new(iga_binary())
            .args(["verify", "--data-dir"])
            .arg(dir.path())
            .args(
                common::on_sled()
                    .then_some(["--event-log", "sled:"])
                    .iter()
                    .flatten(),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("event log ok: 5 events"));
    }
    let rebuilt = common::rebuild(dir.path());
    assert!(rebuilt.contains("rebuilt 11 read models from 5 events"));

    // Same token, same answer; the bootstrap appended nothing new.
    let server = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", token)]);
    let after: Value = c
        .get(server.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
    let ready: Value = c
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The same token within the hour: its use is not recorded again.
    assert_eq!(ready["logHead"], 5);
}

#[test]
fn bad_event_log_and_busy_data_dir_fail_fast_with_a_clear_error() {
    if common::single_process_only("bad_event_log_and_busy_data_dir_fail_fast_with_a_clear_error") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let started = std::time::Instant::now();
        let out = Command::new(iga_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .env("IGA_ADMIN_TOKEN", "fail-token-0123456789abcdef-0123456789")
            .output()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = run(&["--event-log", "carrier-pigeon://x"]);
    assert!(err.contains("unknown scheme"), "{err}");
    let err = run(&["--event-log", "nats://127.0.0.1:1"]);
    assert!(err.contains("event log nats://127.0.0.1:1"), "{err}");
    // A second process on the same data dir is refused, not corrupting it.
    let _first = Server::start(
        dir.path(),
        &[("IGA_ADMIN_TOKEN", "fail-token-0123456789abcdef-0123456789")],
    );
    let same_log: &[&str] = if common::on_sled() {
        &["--event-log", "sled:"]
    } else {
        &[]
    };
    let err = run(same_log);
    assert!(err.contains("another iga process"), "{err}");
}

/// A data dir's embedded log stays on the engine it was created with: its
/// read models hold that log's positions, so opening it on the other engine
/// (a new, empty log) is refused with the flag to use, and creates nothing.
#[test]
fn an_embedded_log_keeps_its_engine() {
    for (holds, asked, told) in [
        ("eventlog", "fjall:", "--event-log sled:"),
        ("eventlog-fjall", "sled:", "--event-log fjall:"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(holds)).unwrap();
        let out = Command::new(iga_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--event-log", asked])
            .env("IGA_ADMIN_TOKEN", "fail-token-0123456789abcdef-0123456789")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(told), "{err}");
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from(holds)], "{err}");
    }
}
