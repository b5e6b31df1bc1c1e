//! `iga migrate --to fjall` on a real data dir made by `iga serve` on the
//! sled log: refused while the server runs, then copied, checked and
//! switched; the service starts on the moved log with the same answers,
//! the same signed audit tree and the next position; an interrupted switch
//! is refused by `serve` and finished by `migrate`; the old log is kept until
//! `--remove-old`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{send, Server};
use serde_json::{json, Value};

const ADMIN: &str = "migrate-admin-token-0123456789-abcdefgh";

fn iga(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(common::iga_binary())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("IGA_EVENT_LOG")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("eventlog"))
        .collect();
    names.sort();
    names
}

async fn read(s: &Server, path: &str) -> Value {
    let r = common::client()
        .get(s.url(path))
        .bearer_auth(ADMIN)
        .header("X-Consistency-Token", common::log_head(s).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// What the test compares before and after the move.
async fn answers(s: &Server) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/api/v1/users?pageSize=100",
        "/api/v1/apps?pageSize=100",
        "/api/v1/events?pageSize=100",
        "/api/v1/audit/checkpoints",
    ] {
        all.push(read(s, path).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_data_dir_moves_to_fjall_with_nothing_lost_or_changed() {
    if common::single_process_only("a_sled_data_dir_moves_to_fjall_with_nothing_lost_or_changed")
        || common::on_jetstream()
        || common::on_sled()
    {
        eprintln!("SKIPPED: the migration runs in the default run only (it picks its own logs)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = [("IGA_ADMIN_TOKEN", ADMIN)];
    let s = Server::start_on(dir.path(), "sled:", &env);
    for i in 0..20 {
        let (status, _, v) = send(
            "POST",
            s.url("/api/v1/users"),
            ADMIN,
            Some(json!({"username": format!("mover{i}"), "displayName": format!("Mover {i}")})),
        )
        .await;
        assert_eq!(status, 201, "{v}");
    }
    let (status, _, app) = send(
        "POST",
        s.url("/api/v1/apps"),
        ADMIN,
        Some(json!({"displayName": "Vault"})),
    )
    .await;
    assert_eq!(status, 201, "{app}");
    let (status, _, asked) = send(
        "POST",
        s.url("/api/v1/audit/checkpoints"),
        ADMIN,
        Some(json!({"reason": "before the move"})),
    )
    .await;
    assert_eq!(status, 202, "{asked}");
    let asked = asked["position"].as_u64().unwrap();
    common::eventually("the checkpoint", || async {
        let page = read(&s, "/api/v1/audit/checkpoints").await;
        page["list"]
            .as_array()?
            .iter()
            .find(|c| c["treeSize"].as_u64() >= Some(asked) && c["verified"] == true)
            .cloned()
    })
    .await;
    let head: u64 = common::log_head(&s).await.parse().unwrap();
    let before = answers(&s).await;
    assert_eq!(entries(dir.path()), ["eventlog"]);

    // While the service has the log, nothing is copied or created.
    let (ok, said) = iga(&["migrate", "--to", "fjall"], dir.path());
    assert!(!ok, "{said}");
    assert!(said.contains("another iga process"), "{said}");
    assert_eq!(entries(dir.path()), ["eventlog"]);
    let (status, _) = s.terminate();
    assert!(status.success());

    // A copy an earlier, interrupted run left is thrown away and made again.
    std::fs::create_dir(dir.path().join("eventlog-fjall.migrating")).unwrap();
    std::fs::write(dir.path().join("eventlog-fjall.migrating/junk"), b"x").unwrap();

    let (ok, said) = iga(&["migrate", "--to", "fjall"], dir.path());
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("{head} events copied and checked")),
        "{said}"
    );
    assert!(said.contains("eventlog.old"), "{said}");
    assert_eq!(entries(dir.path()), ["eventlog-fjall", "eventlog.old"]);

    // A crash between the two renames leaves both logs: serve refuses to
    // choose, migrate checks them again and finishes.
    std::fs::rename(dir.path().join("eventlog.old"), dir.path().join("eventlog")).unwrap();
    let (ok, said) = iga(&["verify"], dir.path());
    assert!(!ok && said.contains("interrupted"), "{said}");
    let (ok, said) = iga(&["migrate", "--remove-old"], dir.path());
    assert!(!ok && said.contains("interrupted"), "{said}");
    assert!(dir.path().join("eventlog").exists());
    let (ok, said) = iga(&["migrate", "--to", "fjall"], dir.path());
    assert!(ok, "{said}");
    assert_eq!(entries(dir.path()), ["eventlog-fjall", "eventlog.old"]);
    let (ok, said) = iga(&["migrate", "--to", "fjall"], dir.path());
    assert!(ok && said.contains("nothing to do"), "{said}");

    // The moved log checks, and its Merkle tree is the one signed before.
    let (ok, said) = iga(&["verify"], dir.path());
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("event log ok: {head} events")),
        "{said}"
    );
    let (ok, said) = iga(&["audit", "verify"], dir.path());
    assert!(ok && said.contains("audit log ok"), "{said}");

    // The service starts on it (no flag: the data dir now holds fjall), with
    // the read models as they were: same answers, the next position next.
    let s = Server::start_on(dir.path(), "", &env);
    assert_eq!(common::log_head(&s).await, head.to_string());
    assert_eq!(answers(&s).await, before);
    let (status, token, v) = send(
        "POST",
        s.url("/api/v1/users"),
        ADMIN,
        Some(json!({"username": "after-the-move", "displayName": "After"})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let after: u64 = token.parse().unwrap();
    assert!(after > head, "{after} after {head}");
    let (status, _) = s.terminate();
    assert!(status.success());

    // The old log stays until asked; then it goes, and only it.
    assert!(dir.path().join("eventlog.old").exists());
    let (ok, said) = iga(&["migrate", "--remove-old"], dir.path());
    assert!(ok && said.contains("eventlog.old"), "{said}");
    assert_eq!(entries(dir.path()), ["eventlog-fjall"]);
    let (ok, said) = iga(&["verify"], dir.path());
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("event log ok: {after} events")),
        "{said}"
    );
}
