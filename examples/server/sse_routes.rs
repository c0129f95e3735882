//! SSE routes of the `server` example.
//!
//! - `/sse`: a fixed table of five events with a `Last-Event-ID` contract
//!   (see [`serve_sse`]).
//! - `/clock`: one event a second from a [`ReplayStore`], resumable with
//!   `Last-Event-ID` (see [`serve_clock`]).
//!
//! The caller has already read the request head from the socket; anything
//! after the head is ignored (SSE requests are bodiless GETs).

use std::io;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rtwire::http::RequestHead;
use rtwire::sse::{self, accept, Event, Gap, ReplayStore, SseStream};
use tokio::net::TcpStream;

/// `(id, event type, data)` of `/sse`.
const TABLE: [(u64, Option<&str>, &str); 5] = [
    (1, Some("greeting"), "hello"),
    (2, None, "line one\nline two"),
    (3, Some("update"), "héllo wörld ✓ 🚀"),
    (4, Some("update"), "alpha\n\nomega"),
    (5, Some("done"), "bye"),
];

/// Maps the stream's end to the route's result: a client that left is a
/// normal end.
fn outcome(r: Result<(), rtwire::Error>) -> io::Result<()> {
    match r {
        Ok(()) | Err(rtwire::Error::ConnectionClosed) => Ok(()),
        Err(rtwire::Error::Io(e)) => Err(e),
        Err(e) => Err(io::Error::other(e)),
    }
}

/// `/sse`. Let k be the `Last-Event-ID` header as an integer (0 when
/// missing or not an integer). Sends `retry: 500`, then every event of the
/// table with id > k, in order, each with its `id:`. If k < 3 the response
/// ends after id 3; otherwise it stays open after id 5 (with heartbeats)
/// until the client leaves.
pub async fn serve_sse(io: TcpStream, head: RequestHead) -> io::Result<()> {
    serve_sse_with(io, head, Some(Duration::from_secs(15))).await
}

/// [`serve_sse`] with another heartbeat interval.
pub async fn serve_sse_with(
    mut io: TcpStream,
    head: RequestHead,
    heartbeat: Option<Duration>,
) -> io::Result<()> {
    // The contract reads the header only.
    let config = sse::Config::new()
        .retry(Some(500))
        .heartbeat(heartbeat)
        .last_event_id_param(None);
    let req = match accept(&head, &config) {
        Ok(req) => req,
        Err(rejection) => return rejection.send(&mut io).await,
    };
    let k: i64 = req
        .last_event_id()
        .and_then(|id| id.parse().ok())
        .unwrap_or(0);
    let last = if k < 3 { 3 } else { 5 };
    outcome(
        async {
            let mut sse = SseStream::start(io, req, &config).await?;
            for (id, event, data) in TABLE {
                if (id as i64) <= k || id > last {
                    continue;
                }
                let mut ev = Event::new(data)
                    .with_id(id.to_string())
                    .map_err(io::Error::other)?;
                if let Some(t) = event {
                    ev = ev.with_event(t).map_err(io::Error::other)?;
                }
                sse.send(&ev).await?;
            }
            if k < 3 {
                sse.finish().await?;
                return Ok(());
            }
            sse.idle().await.map(|never| match never {})
        }
        .await,
    )
}

const CLOCK: &str = "clock";

/// A clock publishing one `tick` event a second into a replay store.
pub struct Clock {
    store: ReplayStore,
}

impl Clock {
    /// Starts a clock ticking every second (needs a tokio runtime). The
    /// ticking task ends when the last `Arc<Clock>` is dropped.
    pub fn start() -> Arc<Clock> {
        Clock::with_period(Duration::from_secs(1))
    }

    /// Starts a clock ticking every `period`.
    pub fn with_period(period: Duration) -> Arc<Clock> {
        let clock = Arc::new(Clock {
            store: ReplayStore::new(120),
        });
        let weak: Weak<Clock> = Arc::downgrade(&clock);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            loop {
                every.tick().await;
                let Some(clock) = weak.upgrade() else { return };
                let ev = Event::new(now_utc()).with_event("tick").map_err(|_| ());
                if let Ok(ev) = ev {
                    // The clock's one channel always exists: never full.
                    let _ = clock.store.append(CLOCK, ev);
                }
            }
        });
        clock
    }

    /// The store the clock publishes into.
    pub fn store(&self) -> &ReplayStore {
        &self.store
    }
}

/// The time of day as `HH:MM:SS UTC`.
fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        (day / 60) % 60,
        day % 60
    )
}

/// `/clock`: resumes after `Last-Event-ID` (header, or the `last_event_id`
/// query parameter) from the clock's store, then follows live ticks. A new
/// client first gets the latest tick. Missed ticks that are no longer
/// retained are announced with a `gap` event.
pub async fn serve_clock(
    mut io: TcpStream,
    head: RequestHead,
    clock: Arc<Clock>,
) -> io::Result<()> {
    let config = sse::Config::new().retry(Some(1000));
    let req = match accept(&head, &config) {
        Ok(req) => req,
        Err(rejection) => return rejection.send(&mut io).await,
    };
    let store = clock.store();
    let first = match req.last_event_id() {
        Some(id) => store.get_since(CLOCK, id, 120),
        // A new client sees the current time at once.
        None => store.get_after(CLOCK, store.latest_id(CLOCK).saturating_sub(1), 1),
    };
    outcome(
        async {
            let mut live = store.subscribe(CLOCK).map_err(io::Error::other)?;
            let mut sse = SseStream::start(io, req, &config).await?;
            let mut replay = first;
            loop {
                if let Some(gap) = replay.gap {
                    let why = match gap {
                        Gap::Evicted { first_retained } => {
                            format!("missed ticks before {first_retained}")
                        }
                        _ => "unknown last event id".to_owned(),
                    };
                    let ev = Event::new(why)
                        .with_event("gap")
                        .map_err(io::Error::other)?;
                    sse.send(&ev).await?;
                }
                for ev in &replay.events {
                    sse.send_encoded(ev.encoded()).await?;
                }
                if !replay.more {
                    tokio::select! {
                        changed = live.changed() => if changed.is_err() { return Ok(()) },
                        gone = sse.idle() => { gone?; }
                    }
                }
                replay = store.get_after(CLOCK, replay.cursor, 120);
            }
        }
        .await,
    )
}
