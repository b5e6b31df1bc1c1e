//! `iga serve`, `iga rebuild`, `iga verify`: wiring the crates together.
//!
//! Start-up order: open the log and the read models, start the projection
//! runner, ensure the admin user and token, wait for the read models to
//! catch up with the log, then listen. Shutdown (SIGTERM or Ctrl-C): stop
//! accepting, let in-flight requests finish (bounded), stop the runner, flush.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use command_service::secrets::SecretsKey;
use command_service::CommandHandler;
use iga_eventlog::Limits;
use iga_eventlog::Sharing;
use projection_service::apps::AppCatalog;
use projection_service::catalog::{CatalogSearch, SearchIndex};
use projection_service::entitlements::EntitlementCatalog;
use projection_service::grants::GrantLedger;
use projection_service::policies::PolicyDirectory;
use projection_service::requests::RequestDirectory;
use projection_service::timers::TimerIndex;
use projection_service::users::UserDirectory;
use projection_service::{Projection, ProjectionRunner, ReadModels};
use reactors::ReactorRunner;

use crate::cli::anyhow_like::Result;
use crate::cli::{DataArgs, ServeArgs};
pub use crate::role::{Health, Role};

/// Every read model the all-in-one process keeps; `search` is the catalog
/// index the `catalog` projection keeps current in memory.
pub fn projections(search: &Arc<SearchIndex>) -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(UserDirectory),
        Arc::new(AppCatalog),
        Arc::new(EntitlementCatalog),
        Arc::new(PolicyDirectory),
        Arc::new(CatalogSearch::new(search.clone())),
        Arc::new(RequestDirectory),
        Arc::new(GrantLedger),
        Arc::new(TimerIndex),
        Arc::new(projection_service::webhooks::WebhookDirectory),
        Arc::new(projection_service::provisioning::TaskQueue),
        Arc::new(projection_service::reviews::ReviewBoard),
    ]
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    serve_role(args, Role::All).await
}

pub async fn serve_role(args: ServeArgs, role: Role) -> Result<()> {
    init_tracing(&args.log_format);
    let data_dir = &args.data.data_dir;
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
    let limits = Limits {
        max_event_bytes: args.max_event_bytes,
        ..Limits::default()
    };
    let log = iga_eventlog::open(args.data.event_log.as_deref(), data_dir, limits).await?;
    let store = log.store();
    if args.data.event_log.is_none()
        && iga_eventlog::migrate::embedded_engines(data_dir)
            == [iga_eventlog::migrate::EmbeddedEngine::Sled]
    {
        tracing::warn!(
            data_dir = %data_dir.display(),
            "this data dir's event log is on sled, which a power loss can cut short; \
             stop iga and run `iga migrate --to fjall` to move it (checked event by event)"
        );
    }
    let search = SearchIndex::new();
    // A command-service keeps its read models (tokens, references) in a
    // temporary directory, rebuilt from the log at start: any number of
    // replicas, no state of their own to keep.
    let models = Arc::new(if role == Role::Commands {
        ReadModels::open_temporary(projections(&search))?
    } else {
        open_models(data_dir, &search)?
    });
    let metrics = crate::http::install_metrics()?;

    let (stop_runner, stop) = tokio::sync::watch::channel(false);
    let health = Arc::new(Health {
        store: store.clone(),
        models: models.clone(),
        search: search.clone(),
        caught_up: AtomicBool::new(false),
        runner_alive: AtomicBool::new(true),
    });
    let runner = {
        let health = health.clone();
        let runner = ProjectionRunner::new(models.clone(), store.clone());
        tokio::spawn(async move {
            let result = runner.run(stop).await;
            health.runner_alive.store(false, Ordering::SeqCst);
            if let Err(e) = &result {
                tracing::error!(error = %e, "projection runner stopped");
            }
            result
        })
    };

    // The log's Merkle tree, wherever proofs are served or signed.
    let log_tree = if role == Role::Commands {
        None
    } else {
        let tree = models.log_tree()?;
        let follower = tree.clone().follow(store.clone(), stop_runner.subscribe());
        tokio::spawn(async move {
            if let Err(e) = follower.await {
                tracing::error!(error = %e, "the audit tree stopped following the log");
            }
        });
        Some(tree)
    };
    let commands = CommandHandler::new(store.clone());
    let token = admin_token(args.admin_token.as_deref(), data_dir)?;
    let secrets = secrets_key(args.secrets_key.as_deref(), data_dir)?;
    command_service::bootstrap::ensure_admin(&commands, &iga_http::auth::token_sha256_hex(&token))
        .await
        .map_err(|e| format!("cannot set up the admin user: {e}"))?;
    let head = store.head().await?;
    if !models.wait_for(head, Duration::from_secs(600)).await {
        return Err(
            format!("read models did not catch up with the event log (position {head})").into(),
        );
    }
    health.caught_up.store(true, Ordering::SeqCst);

    let reactors = if role.runs_reactors() {
        let mut running =
            start_reactors(&args, &log, &models, &commands, &secrets, &stop_runner).await?;
        let notary = reactors::notary::Notary {
            handler: commands.clone(),
            tree: log_tree.clone().ok_or("the audit tree is not open")?,
            key: audit_key(args.audit_key.as_deref(), data_dir)?,
            origin: args.audit_origin.trim().to_string(),
            interval: Duration::from_secs(args.audit_checkpoint_secs.max(1)),
        };
        let stop = stop_runner.subscribe();
        running.push(("notary", tokio::spawn(notary.run(stop))));
        running
    } else {
        Vec::new()
    };

    let app = crate::http::router(&args, health.clone(), commands, secrets, metrics, role);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, ?role, event_log = %store.describe(), position = head, "iga serving");
    let stop_signal = shutdown_signal()?;
    println!("listening on http://{addr}");
    std::io::stdout().flush().ok();

    let grace = Duration::from_secs(args.shutdown_grace_secs);
    let (drained_tx, drained) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop_signal.await;
        tracing::info!("shutting down: no new connections, draining in-flight requests");
        let _ = drained_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    // Bound the drain: after the grace period, stop waiting for slow requests.
    let served = async {
        let _ = drained.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => r??,
        _ = served => tracing::warn!("in-flight requests did not finish within {grace:?}; stopping"),
    }
    let _ = stop_runner.send(true);
    for (name, reactor) in reactors {
        if let Ok(Err(e)) = reactor.await {
            tracing::error!(error = %e, reactor = name, "reactor failed");
        }
    }
    match runner.await {
        Ok(Err(e)) => tracing::error!(error = %e, "projection runner failed"),
        Err(e) => tracing::error!(error = %e, "projection runner panicked"),
        Ok(Ok(())) => {}
    }
    models.flush()?;
    drop(health);
    drop(store);
    drop(log);
    tracing::info!("stopped");
    Ok(())
}

/// A reactor's task, by name.
type Running = Vec<(
    &'static str,
    tokio::task::JoinHandle<std::result::Result<(), String>>,
)>;

/// Starts the reactors: fulfilment of decided requests, timers, and
/// publishing (when there is somewhere to publish to); each stops when
/// `stopping` says so.
async fn start_reactors(
    args: &ServeArgs,
    log: &iga_eventlog::EventLog,
    models: &Arc<ReadModels>,
    commands: &CommandHandler,
    secrets: &SecretsKey,
    stopping: &tokio::sync::watch::Sender<bool>,
) -> Result<Running> {
    let store = log.store();
    let mut reactors: Running = Vec::new();
    // On JetStream, instances share each reactor's work (durable
    // consumers); on sled there is one instance, which does it all.
    let shared = log.work_sharing();
    let share = |runner: ReactorRunner, sharing: Sharing| match &shared {
        Some(js) => runner.shared_on(js.clone(), sharing),
        None => runner,
    };
    let fulfilment = share(
        ReactorRunner::new(
            models.clone(),
            store.clone(),
            Arc::new(reactors::fulfilment::FulfilmentReactor {
                handler: commands.clone(),
            }),
        ),
        Sharing::Spread,
    );
    let stop = stopping.subscribe();
    reactors.push((
        "fulfilment",
        tokio::spawn(async move { fulfilment.run(stop).await.map_err(|e| e.to_string()) }),
    ));
    // Every webhook call of this instance (subscriptions, provisioning).
    let deliverer = Arc::new(reactors::delivery::Deliverer::new(
        commands.clone(),
        models.clone(),
        store.clone(),
        secrets.clone(),
        reactors::delivery::DeliverySettings {
            timeout: Duration::from_millis(args.webhook_timeout_ms.max(1)),
            policy: iga_domain::delivery::RetryPolicy {
                first_delay_micros: (args.webhook_retry_first_ms.max(1) * 1000) as i64,
                max_delay_micros: 3_600_000_000,
                give_up_after_micros: (args.webhook_give_up_after_secs as i64)
                    .saturating_mul(1_000_000),
            },
            source: args.event_source.clone(),
            per_webhook: args.webhook_concurrency.max(1),
        },
    )?);
    let timers = reactors::timers::TimerDriver {
        handler: commands.clone(),
        models: models.clone(),
        shared: shared.clone(),
        deliveries: Some(deliverer.clone()),
        in_flight: Default::default(),
    };
    let stop = stopping.subscribe();
    reactors.push((
        "timers",
        tokio::spawn(async move { timers.run(stop).await.map_err(|e| e.to_string()) }),
    ));
    let provisioning = share(
        ReactorRunner::new(
            models.clone(),
            store.clone(),
            Arc::new(reactors::provisioning::ProvisioningReactor {
                handler: commands.clone(),
            }),
        ),
        Sharing::Spread,
    );
    let stop = stopping.subscribe();
    reactors.push((
        "provisioning",
        tokio::spawn(async move { provisioning.run(stop).await.map_err(|e| e.to_string()) }),
    ));
    let reviews = share(
        ReactorRunner::new(
            models.clone(),
            store.clone(),
            Arc::new(reactors::reviews::ReviewReactor {
                handler: commands.clone(),
                models: models.clone(),
            }),
        ),
        Sharing::Spread,
    );
    let stop = stopping.subscribe();
    reactors.push((
        "reviews",
        tokio::spawn(async move { reviews.run(stop).await.map_err(|e| e.to_string()) }),
    ));
    if let Some(url) = publish_url(args.publish.as_deref(), args.data.event_log.as_deref()) {
        let config = iga_eventlog::publish::DownstreamConfig::from_url(&url)?;
        let downstream = iga_eventlog::publish::Downstream::connect(config).await?;
        // In log order: one event in flight, whichever instance has it.
        let runner = share(
            ReactorRunner::new(
                models.clone(),
                store.clone(),
                Arc::new(reactors::publishing::Publishing { downstream }),
            ),
            Sharing::Ordered,
        );
        let stop = stopping.subscribe();
        reactors.push((
            "publishing",
            tokio::spawn(async move { runner.run(stop).await.map_err(|e| e.to_string()) }),
        ));
    }
    // Event subscriptions over HTTP: every subscribing webhook, in log order.
    let subscriptions = reactors::subscriptions::Subscriptions {
        deliverer,
        shared: shared.clone(),
    };
    let stop = stopping.subscribe();
    reactors.push((
        "subscriptions",
        tokio::spawn(async move { subscriptions.run(stop).await }),
    ));
    Ok(reactors)
}

pub async fn rebuild(args: DataArgs) -> Result<()> {
    let store = iga_eventlog::open(args.event_log.as_deref(), &args.data_dir, Limits::default())
        .await?
        .store();
    let path = args.data_dir.join("readmodels");
    let models =
        ReadModels::open_for_rebuild(&path, projections(&SearchIndex::new())).map_err(|e| {
            format!(
                "read models {}: {e} (is another iga process using this data dir?)",
                path.display()
            )
        })?;
    let head = store.head().await?;
    let bar = crate::progress::bar(head, "rebuilding read models from events");
    let started = std::time::Instant::now();
    let rebuilt = models
        .rebuild(store.as_ref(), |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
    rebuilt.switch()?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "rebuilt {} read models from {head} events in {secs:.2}s ({:.0} events/s)",
        projections(&SearchIndex::new()).len(),
        head as f64 / secs.max(1e-9)
    );
    Ok(())
}

pub async fn verify(args: DataArgs) -> Result<()> {
    let log =
        iga_eventlog::open(args.event_log.as_deref(), &args.data_dir, Limits::default()).await?;
    let n = match log.verify() {
        Some(checked) => checked?,
        None => return Err(
            "iga verify checks the embedded log (sled or fjall); a JetStream stream is checked by \
                    its servers (`nats stream info`, `nats server check stream`), a KurrentDB \
                    database by its own tools (scavenge and index verification)"
                .into(),
        ),
    };
    println!("event log ok: {n} events, positions contiguous, indexes consistent");
    Ok(())
}

/// Where to publish events downstream: `--publish`, else the event log's NATS
/// servers (with the published stream's own defaults), else nowhere.
fn publish_url(publish: Option<&str>, event_log: Option<&str>) -> Option<String> {
    match publish.map(str::trim) {
        Some("none") | Some("") => None,
        Some(url) => Some(url.to_string()),
        None => event_log
            .map(str::trim)
            .filter(|l| l.starts_with("nats://"))
            .map(|l| {
                // Only the servers and their replicas carry over.
                let (servers, query) = l.split_once('?').unwrap_or((l, ""));
                let replicas: Vec<&str> = query
                    .split('&')
                    .filter(|p| p.starts_with("replicas="))
                    .collect();
                if replicas.is_empty() {
                    servers.to_string()
                } else {
                    format!("{servers}?{}", replicas.join("&"))
                }
            }),
    }
}

fn open_models(data_dir: &Path, search: &Arc<SearchIndex>) -> Result<ReadModels> {
    let path = data_dir.join("readmodels");
    ReadModels::open(&path, projections(search)).map_err(|e| {
        format!(
            "read models {}: {e} (is another iga process using this data dir?)",
            path.display()
        )
        .into()
    })
}

/// The admin token: given, or kept from an earlier start, or generated now.
/// The key sealing webhook secrets: `--secrets-key`, else the data dir's
/// `secrets.key`, created (mode 0600) on first start.
/// Writes `text` and a newline to a new file at `path` that only this user
/// may read (0600), durably; refuses to overwrite one.
fn write_new_secret(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    writeln!(file, "{text}")?;
    file.sync_all()?;
    Ok(())
}

/// Where the checkpoint signing key is kept when not given.
pub const AUDIT_KEY_FILE: &str = "audit-signing.key";

/// The signing key in `text`: base64 of a 32-byte Ed25519 seed.
pub fn parse_audit_key(text: &str) -> std::result::Result<ed25519_dalek::SigningKey, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "not a 32-byte Ed25519 seed".to_string())?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// The checkpoint signing key: given, else the data dir's, else a new one
/// written there (0600).
fn audit_key(given: Option<&str>, data_dir: &Path) -> Result<ed25519_dalek::SigningKey> {
    use base64::Engine as _;
    if let Some(text) = given {
        return Ok(parse_audit_key(text).map_err(|e| format!("IGA_AUDIT_KEY: {e}"))?);
    }
    let path = data_dir.join(AUDIT_KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(parse_audit_key(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    let seed = rand::random::<[u8; 32]>();
    write_new_secret(
        &path,
        &base64::engine::general_purpose::STANDARD.encode(seed),
    )?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn secrets_key(given: Option<&str>, data_dir: &Path) -> Result<SecretsKey> {
    if let Some(text) = given {
        return Ok(SecretsKey::from_base64(text).map_err(|e| format!("IGA_SECRETS_KEY: {e}"))?);
    }
    let path = data_dir.join("secrets.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(SecretsKey::from_base64(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    let key = SecretsKey::generate();
    write_new_secret(&path, &key.to_base64())?;
    Ok(key)
}

fn admin_token(given: Option<&str>, data_dir: &Path) -> Result<String> {
    if let Some(t) = given {
        let min = iga_domain::user::MIN_BOOTSTRAP_TOKEN_LEN;
        if t.chars().count() < min {
            return Err(format!(
                "IGA_ADMIN_TOKEN must be at least {min} characters (generate one with: openssl rand -hex 32)"
            )
            .into());
        }
        return Ok(t.to_string());
    }
    let path = data_dir.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_string());
    }
    let token = format!("iga_{}", hex::encode(rand::random::<[u8; 32]>()));
    write_new_secret(&path, &token)?;
    println!(
        "admin token (shown once; also in {}): {token}",
        path.display()
    );
    Ok(token)
}

/// Waits for SIGTERM or Ctrl-C. The handlers are installed when this is
/// called, not when the returned future is first polled: a SIGTERM sent right
/// after "listening on" must shut down cleanly, not kill the process.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
