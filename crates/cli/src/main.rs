//! `tandem`: the command line over the engine — parse arguments, run the
//! engine, print results, choose the exit code.
//!
//! Exit codes: 0 done; 1 some items failed (each named on stderr) and the
//! rest synced; 2 usage or config error; 3 stopped by a safety brake,
//! nothing written.

mod output;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tandem_engine::{Config, Engine, EngineError, Options};
use tandem_record::Side;

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Two-way sync for contacts, calendars and business records"
)]
struct Cli {
    /// The config file.
    #[arg(short, long, global = true, default_value = "tandem.toml")]
    config: PathBuf,
    /// More logging on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read the config and reach every store.
    Check,
    /// Show what a sync would do, writing nothing.
    Plan {
        /// Pairs to plan (all when none).
        pairs: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Sync pairs (all when none named).
    Sync {
        pairs: Vec<String>,
        /// Go on even when a safety brake applies.
        #[arg(long)]
        force: bool,
    },
    /// What each pair holds and how the last runs went.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Open conflicts waiting in the inbox.
    Conflicts {
        #[arg(long)]
        json: bool,
    },
    /// Settle a conflict by keeping one side's values, then sync that item.
    Resolve {
        id: i64,
        #[arg(long, value_enum)]
        keep: Keep,
    },
    /// Past runs and their writes, newest first.
    History {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Put back what a run wrote.
    Undo { run: i64 },
}

#[derive(Clone, Copy, ValueEnum)]
enum Keep {
    A,
    B,
}

const EXIT_FAILED_ITEMS: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_BRAKE: u8 = 3;

/// Records are parsed on worker threads and freed on the main one, a
/// pattern glibc's malloc serves poorly: with an arena per thread the freed
/// memory stays spread over many arenas (a 100k-item first sync peaked at
/// 124 MB), and with one arena every thread contends for its lock and
/// frees spend their time consolidating. mimalloc frees across threads
/// cheaply and returns memory (bench/README.md has the numbers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns freed pages to the system at once rather than after mimalloc's
/// default delay of a second: a 100k-item first sync peaks at about 86 MB
/// instead of 110 MB. (`mi_option_purge_delay` in mimalloc v3's
/// mimalloc.h; the crate names no constant for it.)
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn tune_allocator() {
    // SAFETY: setting an option takes no pointers; called first in main.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tandem: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tandem: {e}");
            let code = match e {
                EngineError::Config(_) | EngineError::Usage(_) => EXIT_USAGE,
                _ => EXIT_FAILED_ITEMS,
            };
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> Result<u8, EngineError> {
    let config = Config::load(&cli.config)?;
    let mut engine = Engine::open(config)?;
    match cli.command {
        Command::Check => {
            for line in engine.check().await? {
                println!("{line}");
            }
            println!("config ok: {}", engine.config.path.display());
            Ok(0)
        }
        Command::Plan { pairs, json } => {
            let opts = Options {
                dry_run: true,
                ..Options::default()
            };
            let outcome = engine.sync(&pairs, &opts).await?;
            output::plan(&outcome, json);
            Ok(exit_code(&outcome))
        }
        Command::Sync { pairs, force } => {
            let bar = output::progress_bar();
            let progress = |done: u64, total: u64| {
                if let Some(bar) = &bar {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            };
            let opts = Options {
                force,
                progress: Some(&progress),
                ..Options::default()
            };
            let outcome = engine.sync(&pairs, &opts).await;
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let outcome = outcome?;
            output::summary(&outcome);
            Ok(exit_code(&outcome))
        }
        Command::Status { json } => {
            output::status(&engine.status()?, &engine.history(5)?, json);
            Ok(0)
        }
        Command::Conflicts { json } => {
            output::conflicts(&engine.conflicts()?, json);
            Ok(0)
        }
        Command::Resolve { id, keep } => {
            let side = match keep {
                Keep::A => Side::A,
                Keep::B => Side::B,
            };
            let outcome = engine.resolve(id, side).await?;
            output::summary(&outcome);
            Ok(exit_code(&outcome))
        }
        Command::History { json, limit } => {
            output::history(&engine.history(limit)?, json);
            Ok(0)
        }
        Command::Undo { run } => {
            let (undo_run, report) = engine.undo(run).await?;
            println!(
                "run {undo_run}: undid {} write(s) of run {run}{}",
                report.restored,
                if report.skipped > 0 {
                    format!(", left {} unfinished write(s) alone", report.skipped)
                } else {
                    String::new()
                }
            );
            for f in &report.failures {
                eprintln!("error: {f}");
            }
            Ok(if report.failures.is_empty() {
                0
            } else {
                EXIT_FAILED_ITEMS
            })
        }
    }
}

fn exit_code(outcome: &tandem_engine::RunOutcome) -> u8 {
    if outcome.braked() {
        EXIT_BRAKE
    } else if outcome.failed() {
        EXIT_FAILED_ITEMS
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    /// The option `tune_allocator` sets is the purge delay: the only one
    /// whose default is 1000 (ms, in mimalloc v3's options.c). A mimalloc
    /// release that renumbers its options fails here, not silently.
    #[test]
    fn the_tuned_option_is_the_purge_delay() {
        use super::PURGE_DELAY;
        // SAFETY: reading an option takes no pointers.
        let value = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(value, 1000);
    }
}
