//! The command path against a real sled log: conflicts are re-decided,
//! idempotency keys make retries append nothing, bootstrap is idempotent.

use std::sync::Arc;

use command_service::{bootstrap, CommandError, CommandHandler, CommandMeta};
use iga_domain::user::{User, UserCommand};
use iga_domain::{Context, DomainError};
use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventStore, Limits};

fn meta(key: Option<&str>) -> CommandMeta {
    CommandMeta {
        ctx: Context {
            actor_id: "admin".into(),
            actor_roles: vec!["admin".into()],
            now_unix_micros: 1,
        },
        correlation_id: "c1".into(),
        idempotency_key: key.map(String::from),
        expected_version: None,
    }
}

fn store() -> Arc<dyn EventStore> {
    Arc::new(SledEventStore::open_temporary(Limits::default()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_is_idempotent() {
    let handler = CommandHandler::new(store());
    let sha = "ab".repeat(32);
    let first = bootstrap::ensure_admin(&handler, &sha).await.unwrap();
    assert_eq!(first.version, 2);
    let again = bootstrap::ensure_admin(&handler, &sha).await.unwrap();
    assert_eq!((again.events_written, again.version), (0, 2));
    let rotated = bootstrap::ensure_admin(&handler, &"cd".repeat(32))
        .await
        .unwrap();
    assert_eq!((rotated.events_written, rotated.version), (1, 3));
    let (admin, _) = handler.load::<User>("admin").await.unwrap();
    assert_eq!(admin.tokens.len(), 2);
    assert_eq!(admin.roles, vec!["admin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_token_issues_are_redecided_not_lost() {
    let handler = CommandHandler::new(store());
    bootstrap::ensure_admin(&handler, &"ab".repeat(32))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let h = handler.clone();
            tokio::spawn(async move {
                let cmd = UserCommand::IssueToken {
                    token_id: format!("t{i}"),
                    token_sha256_hex: format!("{i:064x}"),
                };
                h.execute::<User>("admin", &cmd, &meta(None))
                    .await
                    .map(|(_, o)| o)
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let (admin, version) = handler.load::<User>("admin").await.unwrap();
    assert_eq!(admin.tokens.len(), 17);
    assert_eq!(version, 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_retry_appends_nothing() {
    let handler = CommandHandler::new(store());
    let create = || {
        UserCommand::Create(iga_schemas::v1::UserCreated {
            user_id: "u1".into(),
            username: "ada".into(),
            ..Default::default()
        })
    };
    // Retries with one key answer the original outcome and store one event,
    // even when they race: the log dedups the ids derived from the key.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let h = handler.clone();
            let cmd = create();
            tokio::spawn(async move {
                h.execute::<User>("u1", &cmd, &meta(Some("key-1")))
                    .await
                    .map(|(_, o)| o)
            })
        })
        .collect();
    let outcomes: Vec<_> = futures_join(tasks).await;
    assert!(
        outcomes.iter().all(|o| o.position == 1 && o.version == 1),
        "{outcomes:?}"
    );
    assert_eq!(handler.store().head().await.unwrap(), 1);
    // A sequential retry too.
    let (_, again) = handler
        .execute::<User>("u1", &create(), &meta(Some("key-1")))
        .await
        .unwrap();
    assert_eq!(again.position, 1);
    // Without the key, the same command is a new one and is refused.
    let err = handler
        .execute::<User>("u1", &create(), &meta(None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Domain(DomainError::AlreadyExists(_))),
        "{err:?}"
    );
    assert_eq!(handler.store().head().await.unwrap(), 1);
}

async fn futures_join(
    tasks: Vec<tokio::task::JoinHandle<Result<command_service::Outcome, CommandError>>>,
) -> Vec<command_service::Outcome> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn domain_errors_surface() {
    let handler = CommandHandler::new(store());
    let cmd = UserCommand::RevokeToken {
        token_id: "x".into(),
    };
    let err = handler
        .execute::<User>("nobody", &cmd, &meta(None))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CommandError::Domain(DomainError::NotFound(_))
    ));
}
