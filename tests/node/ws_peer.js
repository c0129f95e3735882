// A Node `ws` peer for tests/deflate_interop.rs and benches/deflate.sh,
// always with permessage-deflate.
//
//   node ws_peer.js client URL VARIANT   echo round trips against URL; the
//                                        content of every echo is checked
//                                        here; prints "OK ext=<header>" and
//                                        exits 0, or exits 1 with the reason
//   node ws_peer.js server VARIANT       echo server on 127.0.0.1:0; prints
//                                        "PORT <n>"; a text "__report__"
//                                        is answered with JSON {ext, digests}
//                                        (SHA-1 of every message received)
//
// VARIANT: "default" = perMessageDeflate: true (ws's defaults, threshold
// 1024, so small messages go uncompressed); "small" = threshold 0 and both
// windows at 10 bits; "bench" = threshold 0, ws's default windows.
'use strict';
const crypto = require('crypto');
const { WebSocket, WebSocketServer } = require('ws');

function deflateOptions(variant) {
  switch (variant) {
    case 'default':
      return true;
    case 'small':
      return { threshold: 0, clientMaxWindowBits: 10, serverMaxWindowBits: 10 };
    case 'bench':
      return { threshold: 0 };
    default:
      throw new Error('unknown variant ' + variant);
  }
}

// JSON-like text of exactly n bytes (records, cut at a character boundary,
// padded with spaces). The same generator exists in Python and Rust.
function jsonLike(n) {
  const parts = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const r = `{"id":${i},"user":"user-${i}","email":"user-${i}@example.com",` +
      `"active":${i % 3 === 0},"score":${(i * 37) % 1000},"tags":["alpha","beta"],` +
      `"note":"caf\u00e9 \u2713"},`;
    parts.push(r);
    len += Buffer.byteLength(r);
  }
  const b = Buffer.from(parts.join(''));
  let cut = Math.min(n, b.length);
  while (cut > 0 && cut < b.length && (b[cut] & 0xc0) === 0x80) cut--;
  return Buffer.concat([b.subarray(0, cut), Buffer.alloc(n - cut, 0x20)]);
}

function messages() {
  const out = [];
  for (const n of [16, 1024, 65536, 1 << 20]) {
    out.push({ binary: false, data: jsonLike(n), frags: 1 });
    out.push({ binary: true, data: crypto.randomBytes(n), frags: 1 });
  }
  out.push({ binary: false, data: jsonLike(65536), frags: 3 });
  out.push({ binary: true, data: crypto.randomBytes(100000), frags: 4 });
  out.push({ binary: true, data: jsonLike(200000), frags: 5 });
  out.push({ binary: false, data: Buffer.alloc(0), frags: 1 });
  return out;
}

function sendMsg(ws, m) {
  if (m.frags <= 1) {
    ws.send(m.data, { binary: m.binary });
    return;
  }
  const step = Math.ceil(m.data.length / m.frags);
  for (let i = 0; i < m.frags; i++) {
    const part = m.data.subarray(i * step, Math.min(m.data.length, (i + 1) * step));
    ws.send(part, { binary: m.binary, fin: i === m.frags - 1 });
  }
}

function fail(msg) {
  process.stdout.write('FAIL ' + msg + '\n');
  process.exit(1);
}

function client(url, variant) {
  const ws = new WebSocket(url, { perMessageDeflate: deflateOptions(variant), maxPayload: 64 << 20 });
  let ext = null;
  ws.on('upgrade', (res) => { ext = res.headers['sec-websocket-extensions'] || null; });
  ws.on('error', (e) => fail('error ' + e.message));
  const msgs = messages();
  let i = 0;
  ws.on('open', () => {
    if (!ext || !ext.startsWith('permessage-deflate')) fail('not negotiated: ' + ext);
    sendMsg(ws, msgs[0]);
  });
  ws.on('message', (data, isBinary) => {
    const m = msgs[i];
    if (isBinary !== m.binary) fail(`message ${i}: binary=${isBinary}, sent ${m.binary}`);
    if (!Buffer.from(data).equals(m.data)) fail(`message ${i}: ${data.length} bytes back, ${m.data.length} sent, content differs`);
    i++;
    if (i === msgs.length) {
      ws.close(1000);
    } else {
      sendMsg(ws, msgs[i]);
    }
  });
  ws.on('close', (code) => {
    if (i !== msgs.length) fail(`closed (${code}) after ${i} of ${msgs.length} echoes`);
    process.stdout.write(`OK ext=${ext} messages=${i}\n`);
    process.exit(0);
  });
}

function server(variant) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflateOptions(variant), maxPayload: 64 << 20 });
  wss.on('headers', (headers, req) => {
    const h = headers.find((x) => x.toLowerCase().startsWith('sec-websocket-extensions:'));
    req.ext = h ? h.slice(h.indexOf(':') + 1).trim() : null;
  });
  wss.on('connection', (ws, req) => {
    const digests = [];
    ws.on('message', (data, isBinary) => {
      const b = Buffer.from(data);
      if (!isBinary && b.toString() === '__report__') {
        ws.send(JSON.stringify({ ext: req.ext, digests }));
        return;
      }
      digests.push(`${isBinary ? 'b' : 't'}:${b.length}:${crypto.createHash('sha1').update(b).digest('hex')}`);
      ws.send(b, { binary: isBinary });
    });
  });
  wss.on('listening', () => process.stdout.write(`PORT ${wss.address().port}\n`));
}

const [mode, a, b] = process.argv.slice(2);
if (mode === 'client') client(a, b);
else if (mode === 'server') server(a);
else fail('usage: ws_peer.js client URL VARIANT | server VARIANT');
