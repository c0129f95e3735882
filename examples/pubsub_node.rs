//! One instance of a service on a shared Redis: a subscriber or a
//! publisher of one channel, printing what rtwire's Redis backend does, one
//! line per event, so that several of these processes (and a test driving
//! them, `tests/pubsub_multiprocess.rs`) can observe the library across
//! process boundaries.
//!
//! ```text
//! cargo run --features redis --example pubsub_node -- sub URL CHANNEL [--from POS]
//! cargo run --features redis --example pubsub_node -- pub URL CHANNEL COUNT PREFIX [--every-ms MS]
//! ```
//!
//! `URL` is a Redis URL (`redis://127.0.0.1:6379/`), `CHANNEL` a channel
//! name, `POS` a position in its wire form (`"{epoch:x}-{offset}"`).
//!
//! ## `sub`
//!
//! Subscribes to `CHANNEL` and prints `ready`. With `--from POS` it then
//! replays [`Store::since`]`(POS)`: each publication as a `pub` line, or,
//! when the history cannot catch it up, one `reset REASON TOP` line. Then
//! it prints every live [`Delivery`] as it comes, until killed:
//!
//! | line | what |
//! | --- | --- |
//! | `ready` | subscribed: publications from now on will be delivered |
//! | `pub POS DATA` | a publication (replayed or live), `DATA` as UTF-8 |
//! | `replayed N TOP` | the replay is over: `N` publications, up to `TOP` |
//! | `reset REASON TOP` | the replay cannot catch up (`REASON` is a [`GapReason`](rtwire::pubsub::GapReason)) |
//! | `overlap POS` | a live publication the replay already printed (see below) |
//! | `lagged N` | [`Delivery::Lagged`]: this subscriber missed `N` |
//! | `reset REASON` | [`Delivery::Reset`] |
//! | `stats R H X D` | the bus's counters changed: reconnects, healed, resets, duplicates ([`RedisBusStats`]) |
//! | `closed` | the subscription ended (the bus closed) |
//! | `error MSG` | an operation failed; the process exits with status 1 |
//!
//! The subscription is made *before* the replay, so that nothing published
//! in between is missed; a publication made in that window is therefore
//! both replayed and delivered live. Those live copies (same epoch, offset
//! at most the replay's top: replayed already, or skipped by the reset)
//! are printed as `overlap POS` instead of `pub`: that is the seam of the
//! resume protocol, not a duplicate of the library's. Nothing else is filtered, deduplicated or reordered: every
//! other delivery is printed as rtwire delivered it.
//!
//! ## `pub`
//!
//! Publishes `COUNT` publications with data `PREFIX-1` ... `PREFIX-COUNT`
//! (sleeping `MS` between them with `--every-ms`), printing `published POS`
//! after each is stored, then `done`, and exits. A failed publish prints
//! `error MSG` and exits with status 1.
//!
//! Every line is flushed as it is written.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use rtwire::pubsub::redis::{connect, RedisBus, RedisBusStats, RedisConfig, RedisStore};
use rtwire::pubsub::{
    Bus, ChannelName, Delivery, Position, PubSubError, PublishRequest, Since, Store,
};

/// The most publications a `--from` replay asks for.
const REPLAY_LIMIT: usize = 100_000;

fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the test went away) ends the process.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

macro_rules! say {
    ($($t:tt)*) => { say(format_args!($($t)*)) };
}

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  pubsub_node sub URL CHANNEL [--from POS]\n  \
         pubsub_node pub URL CHANNEL COUNT PREFIX [--every-ms MS]"
    );
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["sub", url, channel, rest @ ..] => {
            let from = match rest {
                [] => None,
                ["--from", pos] => match Position::parse(pos) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        eprintln!("--from {pos}: {e}");
                        return usage();
                    }
                },
                _ => return usage(),
            };
            sub(url, channel, from).await
        }
        ["pub", url, channel, count, prefix, rest @ ..] => {
            let Ok(count) = count.parse::<u64>() else {
                return usage();
            };
            let every = match rest {
                [] => None,
                ["--every-ms", ms] => match ms.parse::<u64>() {
                    Ok(ms) => Some(Duration::from_millis(ms)),
                    Err(_) => return usage(),
                },
                _ => return usage(),
            };
            publish(url, channel, count, prefix, every).await
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("error {e}");
            ExitCode::FAILURE
        }
    }
}

async fn open(url: &str) -> Result<(RedisStore, RedisBus), PubSubError> {
    connect(RedisConfig::default().url(url)).await
}

async fn sub(url: &str, channel: &str, from: Option<Position>) -> Result<(), PubSubError> {
    let channel = ChannelName::new(channel)?;
    let (store, bus) = open(url).await?;
    let mut subscription = bus.subscribe(&channel).await?;
    say!("ready");

    // The replay's top: live copies at or before it were replayed already.
    let mut seam: Option<Position> = None;
    if let Some(from) = from {
        match store.since(&channel, Some(from), REPLAY_LIMIT).await? {
            Since::Publications { publications, top } => {
                for p in &publications {
                    say!("pub {} {}", p.position, String::from_utf8_lossy(&p.data));
                }
                say!("replayed {} {top}", publications.len());
                seam = Some(top);
            }
            Since::CannotCatchUp { reason, top } => {
                say!("reset {reason:?} {top}");
                seam = Some(top);
            }
        }
    }

    let mut stats = RedisBusStats::default();
    while let Some(delivery) = subscription.recv().await {
        let now = bus.stats();
        let changed = (now.reconnects, now.healed, now.resets, now.duplicates)
            != (
                stats.reconnects,
                stats.healed,
                stats.resets,
                stats.duplicates,
            );
        if changed {
            stats = now;
            say!(
                "stats {} {} {} {}",
                now.reconnects,
                now.healed,
                now.resets,
                now.duplicates
            );
        }
        match delivery {
            Delivery::Publication(p) => match seam {
                Some(s) if p.position.epoch == s.epoch && p.position.offset <= s.offset => {
                    say!("overlap {}", p.position);
                }
                _ => say!("pub {} {}", p.position, String::from_utf8_lossy(&p.data)),
            },
            Delivery::Lagged { missed } => say!("lagged {missed}"),
            Delivery::Reset { reason } => say!("reset {reason:?}"),
            other => say!("unknown {other:?}"),
        }
    }
    say!("closed");
    Ok(())
}

async fn publish(
    url: &str,
    channel: &str,
    count: u64,
    prefix: &str,
    every: Option<Duration>,
) -> Result<(), PubSubError> {
    let channel = ChannelName::new(channel)?;
    let (store, bus) = open(url).await?;
    for i in 1..=count {
        let publication = store
            .append(PublishRequest::new(
                channel.clone(),
                format!("{prefix}-{i}"),
            ))
            .await?;
        // The bus contract: publish what the store accepted (a no-op for
        // Redis, whose append already published it).
        bus.publish(&publication).await?;
        say!("published {}", publication.position);
        if let (Some(d), true) = (every, i < count) {
            tokio::time::sleep(d).await;
        }
    }
    say!("done");
    store.close().await;
    bus.close().await;
    Ok(())
}
