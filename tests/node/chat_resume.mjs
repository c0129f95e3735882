// The demo chat page in a real browser (headless Chromium, driven by
// playwright-core) on two demo servers sharing one Redis: alice's page on
// server A, bob's on server B. B is taken down while alice posts (once
// with SIGKILL, once drained with SIGTERM) and started again on the same
// address; bob's page reconnects by itself and must show every message
// exactly once, and say how many it restored. Run by tests/hub_browser.rs:
//
//   SERVER_BIN=target/debug/examples/server REDIS_URL=redis://127.0.0.1:PORT/ \
//   [CHROMIUM=/usr/bin/chromium] node tests/node/chat_resume.mjs
//
// Every wait is for something on the page; STUCK only ends a stuck run.
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

const { SERVER_BIN, REDIS_URL } = process.env;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const STUCK = 40000;
if (!SERVER_BIN || !REDIS_URL) throw new Error("SERVER_BIN and REDIS_URL must be set");

const servers = new Set();

function startServer(id, addr = "127.0.0.1:0") {
  const p = spawn(SERVER_BIN, [addr, "--redis", REDIS_URL, "--instance-id", id, "--drain-ms", "300"], {
    stdio: ["ignore", "inherit", "pipe"],
  });
  servers.add(p);
  p.on("exit", () => servers.delete(p));
  return new Promise((resolve, reject) => {
    let buf = "";
    p.stderr.on("data", (d) => {
      process.stderr.write(d);
      buf += d;
      const m = /open http:\/\/([^/ ]+)\//.exec(buf);
      if (m && !p.addr) {
        p.addr = m[1];
        resolve(p);
      }
    });
    p.on("exit", (code) => {
      if (!p.addr) reject(new Error(`server ${id} exited (${code}) before listening`));
    });
  });
}

function exited(p) {
  return new Promise((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.on("exit", resolve)));
}

async function openChat(browser, addr, user) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error(`[${user} page error]`, e));
  await page.goto(`http://${addr}/chat.html?user=${user}`);
  await page.waitForFunction((u) => document.getElementById("status").textContent === "connected as " + u, user, { timeout: STUCK });
  return page;
}

async function post(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

// The chat lines of `page` (messages only), as shown.
function messages(page) {
  return page.$$eval("#log .msg", (ds) => ds.map((d) => d.textContent.replace(/^\S+ /, "")));
}

async function waitForLine(page, pattern) {
  await page.waitForFunction(
    (src) => [...document.querySelectorAll("#log div")].some((d) => new RegExp(src).test(d.textContent)),
    pattern,
    { timeout: STUCK },
  );
}

function assertOnce(lines, wanted, who) {
  for (const w of wanted) {
    const n = lines.filter((l) => l.endsWith(w)).length;
    if (n !== 1) throw new Error(`${who}: "${w}" shown ${n} times; lines: ${JSON.stringify(lines)}`);
  }
}

async function scenario(browser, name, takeDown, alice, bob, b) {
  const texts = [1, 2, 3, 4, 5].map((i) => `${name}-${i}`);
  await post(alice, `${name}-before`);
  await waitForLine(bob, `alice: ${name}-before$`);
  await takeDown(b);
  await bob.waitForFunction(() => document.getElementById("status").textContent.startsWith("disconnected"), null, { timeout: STUCK });
  for (const t of texts) await post(alice, t);
  await waitForLine(alice, `alice: ${texts[4]}$`);
  const b2 = await startServer("b", b.addr);
  await waitForLine(bob, `alice: ${texts[4]}$`);
  await waitForLine(bob, "5 messages restored in general");
  const lines = await messages(bob);
  assertOnce(lines, [`alice: ${name}-before`, ...texts.map((t) => `alice: ${t}`)], "bob");
  assertOnce(await messages(alice), texts.map((t) => `alice: ${t}`), "alice");
  console.log(`${name}: bob's page shows all ${texts.length} messages posted while server B was down, once each, and "5 messages restored"`);
  return b2;
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const a = await startServer("a");
  let b = await startServer("b");
  const alice = await openChat(browser, a.addr, "alice");
  const bob = await openChat(browser, b.addr, "bob");
  // Presence across the two servers: each page lists the other user.
  await bob.waitForFunction(() => document.getElementById("online").textContent.includes("alice"), null, { timeout: STUCK });
  await alice.waitForFunction(() => document.getElementById("online").textContent.includes("bob"), null, { timeout: STUCK });
  b = await scenario(browser, "killed", async (s) => { s.kill("SIGKILL"); await exited(s); }, alice, bob, b);
  b = await scenario(browser, "drained", async (s) => { s.kill("SIGTERM"); await exited(s); }, alice, bob, b);
  // The drained server released bob's presence: after the restarts alice
  // sees one bob, not a ghost of his previous server.
  await alice.waitForFunction(() => /^bob$/m.test([...document.querySelectorAll("#online li")].map((l) => l.textContent).join("\n")), null, { timeout: STUCK });
  console.log("chat_resume: ok");
} finally {
  await browser.close();
  for (const p of servers) p.kill("SIGKILL");
}
