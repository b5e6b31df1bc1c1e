//! `iga serve --event-log kurrentdb://...`: an unreachable or misconfigured
//! KurrentDB is a clear error naming the event log and a non-zero exit
//! within 30 s (these run here, with no KurrentDB server); and, when
//! `IGA_KURRENTDB_URL` names a server, the service runs on it end to end
//! (skipped loudly otherwise).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, iga_binary, Server};
use serde_json::{json, Value};

/// Runs `iga serve` on `event_log`; it must exit on its own, unsuccessfully,
/// within 30 s. Answers what it printed on stderr and how long it took.
fn serve_must_fail(event_log: &str) -> (String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(iga_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--event-log", event_log])
        .env("IGA_ADMIN_TOKEN", "kurrentdb-admin-token-0123456-abcdef")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("iga serve on {event_log} still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let stderr = reader.join().unwrap();
    assert!(!status.success(), "iga serve on {event_log} exited 0");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (stderr, took)
}

#[test]
fn an_unreachable_kurrentdb_is_a_clear_error_and_an_exit() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("esdb://admin:changeit@127.0.0.1:{port}?tls=false&timeoutSecs=5");
    let (stderr, took) = serve_must_fail(&url);
    assert!(
        stderr.contains(&format!("event log esdb://admin:***@127.0.0.1:{port}")),
        "the error names the log: {stderr}"
    );
    assert!(
        !stderr.contains("changeit"),
        "the password is shown: {stderr}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn a_server_that_is_not_kurrentdb_is_a_clear_error_and_an_exit() {
    // Something listens, but answers nonsense (here, HTTP/1.1 to gRPC).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let (stderr, took) = serve_must_fail(&format!("kurrentdb://127.0.0.1:{port}?tls=false"));
    assert!(
        stderr.contains(&format!("event log kurrentdb://127.0.0.1:{port}")),
        "the error names the log: {stderr}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn a_bad_kurrentdb_url_is_refused_at_once_with_the_reason() {
    let (stderr, took) = serve_must_fail("esdb://db:2113?timeoutSecs=0");
    assert!(stderr.contains("timeoutSecs"), "{stderr}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_kurrentdb() {
    let Ok(url) = std::env::var("IGA_KURRENTDB_URL") else {
        eprintln!(
            "SKIPPED the_service_runs_on_kurrentdb: IGA_KURRENTDB_URL is not set (no KurrentDB \
             server here); set it to e.g. esdb://127.0.0.1:2113?tls=false to run it"
        );
        return;
    };
    // A prefix of its own: the database may hold other runs' streams.
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{url}{sep}streamPrefix=e2e{}",
        uuid::Uuid::now_v7().simple()
    );
    let admin = "kurrentdb-admin-token-0123456-abcdef";
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_on(dir.path(), &url, &[("IGA_ADMIN_TOKEN", admin)]);
    let r = client()
        .post(s.url("/api/v1/users"))
        .bearer_auth(admin)
        .json(&json!({"username": "ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_string();
    let r = client()
        .get(s.url("/api/v1/users?filter=ada"))
        .bearer_auth(admin)
        .header("X-Consistency-Token", token)
        .send()
        .await
        .unwrap();
    let users: Value = r.json().await.unwrap();
    assert!(users.to_string().contains("\"ada\""), "{users}");
}
