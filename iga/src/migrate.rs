//! `iga migrate`: moves a stopped data dir's embedded event log to another
//! engine ([`iga_eventlog::migrate`] does the work; this draws its progress
//! and says what it did).

use iga_eventlog::migrate::{EmbeddedEngine, Step};

use crate::cli::{anyhow_like::Result, MigrateArgs};

pub fn migrate(args: MigrateArgs) -> Result<()> {
    let data_dir = &args.data_dir;
    if let Some(to) = args.to.as_deref() {
        let to = match to {
            "sled" => EmbeddedEngine::Sled,
            _ => EmbeddedEngine::Fjall,
        };
        let bar = indicatif::ProgressBar::new(0);
        let mut phase = "";
        let started = std::time::Instant::now();
        let done = iga_eventlog::migrate::migrate(data_dir, to, &mut |step: Step| {
            if step.phase != phase {
                phase = step.phase;
                bar.reset();
                bar.set_style(crate::progress::style(step.total.is_some()));
                bar.set_message(step.phase);
            }
            if let Some(total) = step.total {
                bar.set_length(total);
            }
            bar.set_position(step.done);
        });
        bar.finish_and_clear();
        let done = done?;
        match done.kept {
            Some(kept) => println!(
                "event log moved to {} ({}): {} events copied and checked in {:.1}s; \
                 the old log is kept in {} until `iga migrate --remove-old`",
                to.name(),
                done.log.display(),
                done.events,
                started.elapsed().as_secs_f64(),
                kept.display()
            ),
            None => println!(
                "the event log is already on {} ({}, {} events): nothing to do",
                to.name(),
                done.log.display(),
                done.events
            ),
        }
    }
    if args.remove_old {
        let removed = iga_eventlog::migrate::remove_old(data_dir)?;
        if removed.is_empty() {
            println!("no old event log to remove in {}", data_dir.display());
        }
        for dir in removed {
            println!("removed {}", dir.display());
        }
    }
    Ok(())
}
