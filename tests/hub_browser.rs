//! The demo's chat page in a real browser: headless Chromium driven by
//! playwright-core (`tests/node/chat_resume.mjs`) on two `server`
//! processes sharing one real `redis-server`. Server B is killed (and,
//! separately, drained) while alice posts; bob's page must reconnect by
//! itself and show every message once. The script starts, kills and
//! restarts the servers itself; this test builds the example, starts
//! Redis and runs it.
//!
//! Needs `node` with `tests/node/node_modules` and Chromium at
//! `/usr/bin/chromium` (or `$CHROMIUM`): `scripts/test.sh` installs both.
//! A missing one fails the test; it never skips.
#![cfg(all(feature = "redis", feature = "serde", feature = "deflate"))]

mod example_support;
mod redis_support;

use std::path::Path;
use std::process::Command;

use redis_support::RedisServer;

#[test]
fn the_chat_page_on_two_servers_shows_every_message_after_its_server_is_killed_or_drained() {
    let redis = RedisServer::start();
    let server = example_support::build_example("server", "serde,redis,deflate");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let out = Command::new("node")
        .arg("chat_resume.mjs")
        .current_dir(&dir)
        .env("SERVER_BIN", &server)
        .env("REDIS_URL", redis.url())
        .output()
        .expect("node (scripts/test.sh installs the test peers)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("chat_resume: ok"),
        "chat_resume.mjs failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
