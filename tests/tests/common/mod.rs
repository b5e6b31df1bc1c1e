//! Starting and stopping `iga serve` for a test.

#![allow(dead_code)]

pub mod receiver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `iga` binary of this build (`cargo build --workspace --bins` puts it
/// beside the test binaries' `deps/` directory).
pub fn iga_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("iga");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (./scripts/test does)",
        bin.display()
    );
    // `cargo nextest run` alone rebuilds the tests, not the server they
    // start: say so where a failing test's output will show it.
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(server), Some(test)) = (modified(&bin), modified(&exe)) {
        if server < test {
            eprintln!(
                "note: {} is older than this test binary; if the server changed, \
                 `cargo build --workspace --bins` first (./scripts/test does)",
                bin.display()
            );
        }
    }
    bin
}

/// Whether this run puts the servers' event log on NATS JetStream
/// (`IGA_TEST_EVENT_LOG=nats`) rather than the embedded log (the default:
/// on fjall; `IGA_TEST_EVENT_LOG=sled`: the embedded log on sled).
/// `./scripts/test` runs the end-to-end suite each way.
pub fn on_jetstream() -> bool {
    distributed() || test_event_log() == "nats"
}

/// Whether this run puts the servers' event log on the embedded log's sled
/// engine (`IGA_TEST_EVENT_LOG=sled`, `--event-log sled:`), the default
/// before fjall, which data dirs created then still use.
pub fn on_sled() -> bool {
    !distributed() && test_event_log() == "sled"
}

fn test_event_log() -> &'static str {
    match std::env::var("IGA_TEST_EVENT_LOG").as_deref() {
        Ok("nats") => "nats",
        Ok("sled") => "sled",
        Ok("fjall") | Ok("") | Err(_) => "fjall",
        Ok(other) => panic!("IGA_TEST_EVENT_LOG={other}: use sled, fjall or nats"),
    }
}

/// Whether this run puts every server on the distributed topology
/// (`IGA_TEST_TOPOLOGY=distributed`): `command-service`, two `query-service`
/// replicas and a `projection-service` on one NATS JetStream log, behind
/// nginx running the ingress routing of `deploy/ingress/nginx.conf`. The
/// tests talk to the ingress and cannot tell the difference.
pub fn distributed() -> bool {
    match std::env::var("IGA_TEST_TOPOLOGY").as_deref() {
        Ok("distributed") => true,
        Ok("single") | Ok("") | Err(_) => false,
        Ok(other) => panic!("IGA_TEST_TOPOLOGY={other}: use single or distributed"),
    }
}

/// For a test about the single `iga serve` process (its generated token,
/// signals, restarts on one data dir, `iga rebuild`): says it skipped, and
/// answers true, on the distributed topology.
pub fn single_process_only(test: &str) -> bool {
    if distributed() {
        eprintln!("SKIPPED {test}: it is about the single iga serve process");
    }
    distributed()
}

/// The event log of a test's data dir: nothing to start for sled; for
/// JetStream, a `nats-server` keeping its storage in `<data dir>/nats`, so
/// restarting `iga` on the same data dir finds the same log.
pub struct TestEventLog {
    pub nats: Option<iga_eventlog::nats_server::NatsServer>,
}

impl TestEventLog {
    pub fn start(data_dir: &Path) -> TestEventLog {
        let nats = on_jetstream().then(|| {
            iga_eventlog::nats_server::NatsServer::start_in(&data_dir.join("nats"))
                .expect("start nats-server")
        });
        TestEventLog { nats }
    }

    /// Opens the log directly, as another process writing to it would.
    pub async fn open(&self, data_dir: &Path) -> std::sync::Arc<dyn iga_eventlog::EventStore> {
        iga_eventlog::open(
            self.url().as_deref(),
            data_dir,
            iga_eventlog::Limits::default(),
        )
        .await
        .expect("open the test's event log")
        .store()
    }

    /// The `--event-log` value, if not the default.
    pub fn url(&self) -> Option<String> {
        match &self.nats {
            Some(n) => Some(n.url.clone()),
            None => on_sled().then(|| "sled:".to_string()),
        }
    }
}

/// A running `iga serve` (and its NATS server, if any), killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Everything it printed on stdout before listening.
    pub banner: Vec<String>,
    /// On the distributed topology, the services behind `child` (nginx);
    /// stopped before the log.
    pub services: Vec<Server>,
    pub log: TestEventLog,
}

impl Server {
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        if distributed() {
            return Self::start_distributed(data_dir, env);
        }
        Self::spawn(data_dir, TestEventLog::start(data_dir), env)
    }

    /// The distributed topology under `data_dir`, behind nginx.
    fn start_distributed(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let log = TestEventLog::start(data_dir);
        let url = log.url().expect("the distributed topology runs on NATS");
        // Every process of a deployment shares one secrets key (webhook
        // secrets sealed by the command-service are opened by the
        // projection-service that delivers), as the README says to set it.
        let mut env = env.to_vec();
        if !env.iter().any(|(k, _)| *k == "IGA_SECRETS_KEY") {
            env.push((
                "IGA_SECRETS_KEY",
                "c2hhcmVkLWJ5LWV2ZXJ5LXByb2Nlc3Mtb2YtdG9wbyE=",
            ));
        }
        let env = env.as_slice();
        let service =
            |name: &str, dir: &str| Self::start_service(name, &data_dir.join(dir), &url, env);
        let services = vec![
            service("command-service", "command"),
            service("query-service", "query-0"),
            service("query-service", "query-1"),
            service("projection-service", "projection"),
        ];
        let address = |s: &Server| s.base.trim_start_matches("http://").to_string();
        let ingress = data_dir.join("ingress");
        std::fs::create_dir_all(ingress.join("tmp")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let routing = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ingress/nginx.conf"),
        )
        .unwrap();
        let tmp = ingress.join("tmp").display().to_string();
        let config = routing
            .replace(
                "server query-service-0:8080; server query-service-1:8080;",
                &format!(
                    "server {}; server {};",
                    address(&services[1]),
                    address(&services[2])
                ),
            )
            .replace(
                "server command-service:8080;",
                &format!("server {};", address(&services[0])),
            )
            .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"))
            .replace(
                "http {",
                &format!(
                    "http {{\n  access_log off;\n  client_body_temp_path {tmp}/body;\n  \
                     proxy_temp_path {tmp}/proxy;\n  fastcgi_temp_path {tmp}/fastcgi;\n  \
                     uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;"
                ),
            );
        assert!(
            config.contains(&format!("listen 127.0.0.1:{port};"))
                && !config.contains("query-service-0:8080"),
            "deploy/ingress/nginx.conf changed shape; update the test harness"
        );
        let config = format!(
            "daemon off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n{config}",
            dir = ingress.display()
        );
        let config_path = ingress.join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let nginx = std::env::var("IGA_NGINX").unwrap_or_else(|_| "nginx".into());
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(&ingress)
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {nginx} (install nginx or set IGA_NGINX): {e}")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(10));
        }
        let banner = services[0].banner.clone();
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            banner,
            log,
            services,
        }
    }

    /// A server on an event log the test runs itself (a NATS cluster).
    pub fn start_on(data_dir: &Path, event_log: &str, env: &[(&str, &str)]) -> Server {
        let mut env = env.to_vec();
        env.push(("IGA_EVENT_LOG", event_log));
        Self::spawn(data_dir, TestEventLog { nats: None }, &env)
    }

    /// One of the single-role binaries (`command-service`, `query-service`,
    /// `projection-service`) on an event log the test runs.
    pub fn start_service(
        name: &str,
        data_dir: &Path,
        event_log: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let mut env = env.to_vec();
        env.push(("IGA_EVENT_LOG", event_log));
        Self::spawn_binary(
            &iga_binary().with_file_name(name),
            &[],
            data_dir,
            TestEventLog { nats: None },
            &env,
        )
    }

    fn spawn(data_dir: &Path, log: TestEventLog, env: &[(&str, &str)]) -> Server {
        Self::spawn_binary(&iga_binary(), &["serve"], data_dir, log, env)
    }

    fn spawn_binary(
        binary: &Path,
        subcommand: &[&str],
        data_dir: &Path,
        log: TestEventLog,
        env: &[(&str, &str)],
    ) -> Server {
        let mut cmd = Command::new(binary);
        cmd.args(subcommand)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("IGA_ADMIN_TOKEN")
            .env_remove("IGA_EVENT_LOG")
            .env("RUST_LOG", "warn")
            // A checkpoint is an event: a test watching the log's head must
            // not see one it did not ask for (`POST /audit/checkpoints`
            // still signs at once).
            .env("IGA_AUDIT_CHECKPOINT_SECS", "86400")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = log.url() {
            cmd.env("IGA_EVENT_LOG", url);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn iga serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let base = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| {
                    panic!("iga serve exited before listening: {:?}", child.try_wait())
                })
                .unwrap();
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.to_string();
            }
            banner.push(line);
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Server {
            child,
            base,
            banner,
            log,
            services: Vec::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status and how long it took.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let started = Instant::now();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = started + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "iga serve did not exit within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A write as `token`: `method` is POST, PUT or DELETE; answers the status,
/// the `X-Consistency-Token` (empty if none) and the JSON body (null if none).
pub async fn send(
    method: &str,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, String, serde_json::Value) {
    let c = client();
    let req = match method {
        "DELETE" => c.delete(url),
        "PUT" => c.put(url),
        "POST" => c.post(url),
        other => panic!("send() is for writes, not {other}"),
    }
    .bearer_auth(token);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    answer(req).await
}

/// Sends a write built elsewhere (with headers of its own); answers status,
/// consistency token and body, as [`send`] does.
pub async fn answer(req: reqwest::RequestBuilder) -> (u16, String, serde_json::Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let position = r
        .headers()
        .get("x-consistency-token")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        status,
        position,
        r.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// A server on a temporary data dir, with helpers that speak as its admin.
pub struct Api {
    pub s: Server,
    pub _dir: tempfile::TempDir,
    pub admin: String,
}

#[allow(dead_code)] // each test binary uses its own part of the helpers
impl Api {
    /// A server on `dir`, which the caller keeps (to restart or rebuild it).
    pub fn start_in(dir: &Path, admin: &str) -> Api {
        Api {
            s: Server::start(dir, &[("IGA_ADMIN_TOKEN", admin)]),
            _dir: tempfile::tempdir().unwrap(),
            admin: admin.into(),
        }
    }

    pub fn start(admin: &str) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let s = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", admin)]);
        Api {
            s,
            _dir: dir,
            admin: admin.into(),
        }
    }

    /// POST/PUT/DELETE as `token`; answers status, consistency token and body.
    pub async fn write(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, String, serde_json::Value) {
        send(method, self.s.url(path), token, body).await
    }

    /// A write as the admin that must succeed; answers the consistency token and body.
    pub async fn ok(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (String, serde_json::Value) {
        let (status, pos, v) = self.write(method, path, &self.admin, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        (pos, v)
    }

    /// GET as the admin, once the read models include `position`.
    pub async fn read(&self, path: &str, position: &str) -> (u16, serde_json::Value) {
        let r = client()
            .get(self.s.url(path))
            .bearer_auth(&self.admin)
            .header("X-Consistency-Token", position)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A new ordinary user and a token for them.
    pub async fn user(&self, name: &str) -> (String, String) {
        let (_, _, u) = self
            .write(
                "POST",
                "/api/v1/users",
                &self.admin,
                Some(serde_json::json!({"username": name})),
            )
            .await;
        let id = u["id"].as_str().unwrap().to_string();
        let (_, pos, t) = self
            .write(
                "POST",
                &format!("/api/v1/users/{id}/tokens"),
                &self.admin,
                None,
            )
            .await;
        // Make sure the token authenticates before it is used.
        self.read("/api/v1/me", &pos).await;
        (id, t["token"].as_str().unwrap().to_string())
    }
}

/// The server's `/metrics`, in Prometheus text.
#[allow(dead_code)]
pub async fn metrics(s: &Server) -> String {
    client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The log's head position, from `/readyz`: a read with it as consistency
/// token sees every write so far.
#[allow(dead_code)]
pub async fn log_head(s: &Server) -> String {
    let ready: serde_json::Value = client()
        .get(s.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["logHead"].to_string()
}

/// Runs `iga rebuild` on a stopped server's data dir; answers its output.
#[allow(dead_code)]
pub fn rebuild(dir: &Path) -> String {
    let log = TestEventLog::start(dir);
    let mut cmd = std::process::Command::new(iga_binary());
    cmd.args(["rebuild", "--data-dir"]).arg(dir);
    if let Some(url) = log.url() {
        cmd.args(["--event-log", &url]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (on the condition, polling `/readyz`) until the log's head is at
/// least `position`: for writes the service makes by itself after answering
/// (a token's first use is recorded off the request path).
#[allow(dead_code)]
pub async fn wait_for_log_head(s: &Server, position: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let head: u64 = log_head(s).await.parse().unwrap_or(0);
        if head >= position {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log's head stayed at {head}, below {position}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Polls `probe` until it answers `Some`, for at most 30 s (what the
/// reactors do happens after the write that caused it answered).
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
