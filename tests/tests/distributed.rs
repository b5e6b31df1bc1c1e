//! The event log on a three-node NATS cluster with a replicated (R3) stream:
//! losing the stream's leader under load loses no acknowledged command, and
//! the service takes commands again within seconds; two read replicas (two
//! `iga serve` processes on the same log) converge to identical answers.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, Server};
use iga_eventlog::nats_server::NatsCluster;
use serde_json::{json, Value};

const ADMIN: &str = "distributed-admin-token-0123-abcd";

/// Name of the server leading the log's stream.
async fn stream_leader(urls: &str) -> String {
    let servers: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(|u| format!("nats://{u}").parse().unwrap())
        .collect();
    let nc = async_nats::connect(servers).await.unwrap();
    let js = async_nats::jetstream::new(nc);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = js.get_stream("IGA_EVENTS").await {
            if let Ok(info) = stream.info().await {
                if let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                    return leader;
                }
            }
        }
        assert!(Instant::now() < deadline, "the stream has no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET `url` once the replica includes `position`, waiting up to 30 s.
async fn read_when_caught_up(url: &str, position: u64) -> Value {
    let started = Instant::now();
    loop {
        let r = client()
            .get(url)
            .bearer_auth(ADMIN)
            .header("X-Consistency-Token", position.to_string())
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            if started.elapsed() > Duration::from_secs(1) {
                eprintln!("{url} caught up after {:?}", started.elapsed());
            }
            return r.json().await.unwrap();
        }
        assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a read replica did not reach position {position} within 30 s"
        );
    }
}

#[derive(Default)]
struct Load {
    /// (username, consistency token) of every acknowledged create.
    acknowledged: Vec<(String, u64)>,
    /// When each acknowledgement arrived.
    acked_at: Vec<Instant>,
    failures: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_stream_leader_loses_no_acknowledged_command() {
    let mut cluster = NatsCluster::start().expect("start a three-node nats cluster");
    // Requests time out after 1 s so that one sent to the dead leader is
    // retried soon after the cluster elects a new one.
    let log = format!(
        "nats://{}?replicas=3&request_timeout_ms=1000",
        cluster.urls()
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start_on(dir_a.path(), &log, &[("IGA_ADMIN_TOKEN", ADMIN)]);
    let b = Server::start_on(dir_b.path(), &log, &[("IGA_ADMIN_TOKEN", ADMIN)]);

    // A steady load of creates on replica A, from four clients.
    let load = Arc::new(Mutex::new(Load::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (load, stop, url) = (load.clone(), stop.clone(), a.url("/api/v1/users"));
        clients.push(tokio::spawn(async move {
            let http = client();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let username = format!("u{c}-{i}");
                let r = http
                    .post(&url)
                    .bearer_auth(ADMIN)
                    .header("Idempotency-Key", &username)
                    .json(&json!({"username": username, "displayName": "Load"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        let token = r.headers()["x-consistency-token"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        let mut l = load.lock().unwrap();
                        l.acknowledged.push((username, token));
                        l.acked_at.push(Instant::now());
                        i += 1;
                    }
                    // Not acknowledged: retry the same create (same key).
                    _ => {
                        load.lock().unwrap().failures += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    let acked = || load.lock().unwrap().acknowledged.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked() < 100 {
        assert!(Instant::now() < deadline, "no steady load before the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Kill the stream leader (SIGKILL: a lost node, not a shutdown).
    let leader = stream_leader(&cluster.urls()).await;
    let killed_at = Instant::now();
    let before = acked();
    cluster
        .servers
        .iter_mut()
        .find(|s| s.name == leader)
        .expect("leader is one of ours")
        .kill();

    // Commands succeed again within 10 s.
    while acked() < before + 50 {
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "commands did not resume after losing the leader"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let load = Arc::try_unwrap(load).ok().unwrap().into_inner().unwrap();
    // The outage: the longest time without any acknowledgement, from the kill on.
    let mut times: Vec<Instant> = load
        .acked_at
        .iter()
        .copied()
        .filter(|t| *t > killed_at)
        .collect();
    times.insert(0, killed_at);
    times.sort();
    let outage = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    eprintln!(
        "leader {leader} killed: longest time without an acknowledged command {outage:?}; {} acknowledged, {} failed attempts",
        load.acknowledged.len(),
        load.failures
    );
    // NATS elects a new stream leader after a randomized 4 to 9 s without
    // the old one (its Raft election timeout), so the outage is mostly that:
    // 4.6 to 7.3 s in runs here. The aim is 10 s; the bound leaves room for
    // a slow, loaded CI machine.
    assert!(outage < Duration::from_secs(12), "outage of {outage:?}");

    // Every acknowledged create is on both replicas, which answer the same.
    let newest = load.acknowledged.iter().map(|(_, t)| *t).max().unwrap();
    let mut answers = Vec::new();
    for s in [&a, &b] {
        let mut users = std::collections::BTreeSet::new();
        let mut page: Option<String> = None;
        loop {
            let mut url = s.url("/api/v1/users?pageSize=100");
            if let Some(p) = &page {
                url.push_str(&format!("&pageToken={p}"));
            }
            // After a failover a replica may need a moment to resume.
            let body = read_when_caught_up(&url, newest).await;
            for u in body["list"].as_array().unwrap() {
                users.insert(u["username"].as_str().unwrap().to_string());
            }
            match body["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => page = Some(t.to_string()),
                _ => break,
            }
        }
        for (username, _) in &load.acknowledged {
            assert!(users.contains(username), "acknowledged {username} is lost");
        }
        answers.push(users);
    }
    assert_eq!(answers[0], answers[1], "the read replicas differ");
}

/// The distributed topology: `command-service`, two `query-service` replicas
/// and a `projection-service`, each its own process on one JetStream log.
/// Writes go to the command side, reads to either replica with the write's
/// consistency token, and time-driven work happens in the projection-service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_services_share_one_log() {
    let nats = iga_eventlog::nats_server::NatsServer::start().expect("start nats-server");
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let env = [("IGA_ADMIN_TOKEN", ADMIN)];
    let commands = Server::start_service("command-service", dirs[0].path(), &nats.url, &env);
    let replicas = [
        Server::start_service("query-service", dirs[1].path(), &nats.url, &env),
        Server::start_service("query-service", dirs[2].path(), &nats.url, &env),
    ];
    let reactors = Server::start_service("projection-service", dirs[3].path(), &nats.url, &env);

    // Each process serves its own part of the API only.
    let r = client()
        .get(commands.url("/api/v1/users"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == 404 || r.status() == 405,
        "command-service serves no reads: {}",
        r.status()
    );
    let r = client()
        .post(replicas[0].url("/api/v1/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"username": "x"}))
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == 404 || r.status() == 405,
        "query-service takes no writes: {}",
        r.status()
    );
    let r = client().get(reactors.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Writes on the command side; read-your-writes on every replica.
    let write = |path: &str, body: Value| {
        let url = commands.url(path);
        async move {
            let r = client()
                .post(url)
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let token = r.headers()["x-consistency-token"]
                .to_str()
                .unwrap()
                .to_string();
            let body: Value = r.json().await.unwrap();
            assert!((200..300).contains(&status), "{status} {body}");
            (token, body)
        }
    };
    let (_, ben) = write("/api/v1/users", json!({"username": "ben"})).await;
    let ben = ben["id"].as_str().unwrap().to_string();
    let (_, app) = write(
        "/api/v1/apps",
        json!({"displayName": "GitHub", "ownerIds": ["admin"]}),
    )
    .await;
    let app = app["id"].as_str().unwrap().to_string();
    let (_, ent) = write(
        &format!("/api/v1/apps/{app}/entitlements"),
        json!({"displayName": "Maintainer"}),
    )
    .await;
    let ent = ent["id"].as_str().unwrap().to_string();
    let ends = time::OffsetDateTime::now_utc() + Duration::from_millis(1500);
    let (token, grant) = write(
        &format!("/api/v1/apps/{app}/entitlements/{ent}/add-manual-user"),
        json!({"userId": ben, "deprovisionAt": ends.format(&time::format_description::well_known::Rfc3339).unwrap()}),
    )
    .await;
    assert_eq!(grant["grantType"], "admin");
    for replica in &replicas {
        let r = client()
            .get(replica.url(&format!("/api/v1/grants?userId={ben}")))
            .bearer_auth(ADMIN)
            .header("X-Consistency-Token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let grants: Value = r.json().await.unwrap();
        assert_eq!(grants["list"].as_array().unwrap().len(), 1, "{grants}");
    }

    // The projection-service's timers end the grant at its time; both
    // replicas see it end.
    let deadline = Instant::now() + Duration::from_secs(15);
    for replica in &replicas {
        loop {
            let r = client()
                .get(replica.url(&format!("/api/v1/grants?userId={ben}")))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            let grants: Value = r.json().await.unwrap();
            if grants["list"].as_array().unwrap().is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "the grant did not end: {grants}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
