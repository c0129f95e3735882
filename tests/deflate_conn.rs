//! permessage-deflate through `Conn`: both roles over loopback TCP with
//! every configuration pair, the write path under short and pending
//! writes, and hostile compressed input from a raw peer.
#![cfg(feature = "deflate")]

mod conn_support;

use bytes::{Bytes, BytesMut};
use conn_support::chaos_io::{ChaosConfig, ChaosIo};
use conn_support::{bounded, listener, pattern, RawClient};
use flate2::{Compress, Compression, FlushCompress};
use rtwire::ws::deflate::{parse_extensions, server_negotiate, DeflateParams};
use rtwire::ws::{Config, Conn, DeflateConfig, Frame, Message, OpCode, Role};
use rtwire::Error;
use tokio::net::TcpStream;

fn cfg(d: Option<DeflateConfig>) -> Config {
    let b = Config::builder()
        .max_message_size(8 << 20)
        .max_frame_size(8 << 20);
    match d {
        Some(d) => b.deflate(d).build(),
        None => b.build(),
    }
}

/// JSON-like text that compresses the way real messages do.
fn json(n: usize, seed: u32) -> String {
    let mut s = String::with_capacity(n + 64);
    let mut i = seed;
    while s.len() < n {
        s.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"text\":\"message number {i}\"}},",
            i % 17
        ));
        i = i.wrapping_mul(2_654_435_761).wrapping_add(1) % 100_000;
    }
    s.truncate(n);
    s
}

fn messages() -> Vec<Message> {
    let mut v = Vec::new();
    for (i, n) in [0usize, 1, 16, 255, 256, 1000, 4096, 70_000, 1 << 20]
        .into_iter()
        .enumerate()
    {
        v.push(Message::text(json(n, i as u32)));
        v.push(Message::binary(pattern(n, i as u8)));
    }
    v
}

/// Echo server on loopback: returns its address and a task yielding the
/// negotiated parameters of its one connection.
async fn echo_server(
    config: Config,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<Option<DeflateParams>>,
) {
    let (l, addr) = listener().await;
    let task = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let (mut conn, accepted) = Conn::accept(tcp, &config).await.unwrap();
        assert_eq!(accepted.deflate.as_ref(), conn.deflate());
        while let Some(m) = conn.read_message().await.unwrap() {
            if let Message::Text(t) = &m {
                if t.as_str() == "fragment me" {
                    let big = Message::text(json(200_000, 7));
                    conn.send_fragmented(big, 10_000).await.unwrap();
                    continue;
                }
            }
            conn.feed_message(m).await.unwrap();
        }
        accepted.deflate
    });
    (addr, task)
}

async fn client(addr: std::net::SocketAddr, config: &Config) -> Conn<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    Conn::connect(tcp, &format!("ws://{addr}/"), config)
        .await
        .unwrap()
        .0
}

/// Every message echoed exactly, both ways, with fragmented sends both ways.
async fn echo_all(
    server: Option<DeflateConfig>,
    client_cfg: Option<DeflateConfig>,
) -> Option<DeflateParams> {
    let (addr, task) = echo_server(cfg(server)).await;
    let config = cfg(client_cfg);
    let mut c = client(addr, &config).await;
    let params = c.deflate().copied();
    bounded("echo", async {
        for m in messages() {
            c.send_message(m.clone()).await.unwrap();
            let back = c.read_message().await.unwrap().unwrap();
            assert_eq!(back, m);
        }
        let big = Message::binary(pattern(300_000, 9));
        c.send_fragmented(big.clone(), 7_000).await.unwrap();
        assert_eq!(c.read_message().await.unwrap().unwrap(), big);
        c.send_text("fragment me").await.unwrap();
        let back = c.read_message().await.unwrap().unwrap();
        assert_eq!(back, Message::text(json(200_000, 7)));
        c.close(rtwire::ws::CloseCode::NORMAL, "").await.unwrap();
    })
    .await;
    let server_params = task.await.unwrap();
    assert_eq!(server_params, params, "both ends agree");
    params
}

#[tokio::test]
async fn defaults_negotiate_no_context_takeover_and_echo() {
    let p = echo_all(
        Some(DeflateConfig::default()),
        Some(DeflateConfig::default()),
    )
    .await
    .expect("negotiated");
    assert!(p.server_no_context_takeover && p.client_no_context_takeover);
    assert_eq!(
        (p.server_max_window_bits, p.client_max_window_bits),
        (15, 15)
    );
}

#[tokio::test]
async fn context_takeover_at_every_window_echoes() {
    for bits in [9u8, 12, 15] {
        let p = echo_all(
            Some(DeflateConfig::context_takeover(bits)),
            Some(DeflateConfig::context_takeover(15)),
        )
        .await
        .expect("negotiated");
        assert!(!p.server_no_context_takeover && !p.client_no_context_takeover);
        assert_eq!(p.server_max_window_bits, bits);
        assert_eq!(p.client_max_window_bits, bits);
    }
}

#[tokio::test]
async fn mixed_configurations_echo() {
    // The server takes over context, the client asks it not to.
    let p = echo_all(
        Some(DeflateConfig::context_takeover(15)),
        Some(DeflateConfig::default()),
    )
    .await
    .unwrap();
    assert!(p.server_no_context_takeover && p.client_no_context_takeover);
    // Only one side wants deflate: none.
    assert_eq!(echo_all(None, Some(DeflateConfig::default())).await, None);
    assert_eq!(echo_all(Some(DeflateConfig::default()), None).await, None);
}

fn params(server: &DeflateConfig, offer: &str) -> DeflateParams {
    server_negotiate(&parse_extensions(offer.as_bytes()).unwrap(), server).unwrap()
}

/// Reads every message a client-role connection finds in `wire`.
async fn read_back(wire: Vec<u8>, p: DeflateParams) -> Vec<Message> {
    let (io, _peer) = tokio::io::duplex(64);
    drop(_peer);
    let mut c = Conn::from_upgraded(io, Role::Client, &cfg(None), BytesMut::from(&wire[..]))
        .with_deflate(p);
    let mut out = Vec::new();
    loop {
        match c.read_message().await {
            Ok(Some(m)) => out.push(m),
            Ok(None) => return out,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return out,
            Err(e) => panic!("reading back: {e}"),
        }
    }
}

#[tokio::test]
async fn the_write_path_survives_short_and_pending_writes() {
    for (i, server) in [
        DeflateConfig::default(),
        DeflateConfig::context_takeover(10),
    ]
    .into_iter()
    .enumerate()
    {
        let p = params(&server, "permessage-deflate; client_max_window_bits");
        for vectored in [false, true] {
            let (io, captured) = ChaosIo::new(ChaosConfig {
                seed: 7 + i as u64,
                vectored,
                pending_per_256: 60,
                one_byte_per_256: 40,
                full_per_256: 20,
                max_chunk: 3000,
            });
            let mut conn =
                Conn::from_upgraded(io, Role::Server, &cfg(None), BytesMut::new()).with_deflate(p);
            let msgs = messages();
            bounded("writes", async {
                for (k, m) in msgs.iter().enumerate() {
                    if k % 3 == 0 {
                        conn.send_message(m.clone()).await.unwrap();
                    } else if k % 3 == 1 {
                        conn.feed_message(m.clone()).await.unwrap();
                    } else {
                        conn.send_fragmented(m.clone(), 999).await.unwrap();
                    }
                }
                conn.flush().await.unwrap();
            })
            .await;
            let wire = captured.lock().unwrap().bytes.clone();
            let stats = captured.lock().unwrap().stats;
            assert!(stats.partial_writes > 0 && stats.pendings > 0, "{stats:?}");
            let payload: usize = msgs.iter().map(|m| m.payload().len()).sum();
            assert!(wire.len() < payload * 3 / 4, "{} of {payload}", wire.len());
            assert_eq!(read_back(wire, p).await, msgs);
        }
    }
}

#[tokio::test]
async fn small_messages_go_uncompressed_and_large_ones_compressed() {
    let p = params(
        &DeflateConfig::default().threshold(100),
        "permessage-deflate",
    );
    let (io, captured) = ChaosIo::new(ChaosConfig::steady(true));
    let mut conn =
        Conn::from_upgraded(io, Role::Server, &cfg(None), BytesMut::new()).with_deflate(p);
    conn.send_text("x".repeat(99)).await.unwrap();
    let n = captured.lock().unwrap().bytes.len();
    assert_eq!(
        captured.lock().unwrap().bytes[0],
        0x81,
        "FIN, text, no RSV1"
    );
    conn.send_text("x".repeat(100)).await.unwrap();
    let wire = captured.lock().unwrap().bytes.clone();
    assert_eq!(wire[n], 0xC1, "FIN, RSV1, text");
    assert!(wire.len() - n < 20);
    // Control frames never carry RSV1.
    conn.ping(Bytes::from_static(b"p")).await.unwrap();
    let wire = captured.lock().unwrap().bytes.clone();
    assert_eq!(wire[wire.len() - 3], 0x89);
}

#[tokio::test]
async fn read_frame_returns_inflated_frames_without_rsv1() {
    let (addr, _task) = {
        let (l, addr) = listener().await;
        let t = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let (mut conn, _) =
                Conn::accept(tcp, &cfg(Some(DeflateConfig::default().threshold(0))))
                    .await
                    .unwrap();
            conn.send_fragmented(Message::text(json(50_000, 3)), 4096)
                .await
                .unwrap();
            let _ = conn.read_message().await;
        });
        (addr, t)
    };
    let mut c = client(addr, &cfg(Some(DeflateConfig::default()))).await;
    let mut got = Vec::new();
    loop {
        let f = bounded("frame", c.read_frame()).await.unwrap();
        assert_eq!(f.rsv, 0);
        got.extend_from_slice(&f.payload);
        if f.fin {
            break;
        }
    }
    assert_eq!(got, json(50_000, 3).as_bytes());
}

/// Raw deflate of `data` with a sync flush and its trailer removed.
fn compress(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(9), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity());
        }
        let before = c.total_in();
        c.compress_vec(input, &mut out, FlushCompress::Sync)
            .unwrap();
        input = &input[(c.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A server with deflate and a 1 MiB message limit, and a raw client that
/// negotiated deflate.
async fn hostile_pair() -> RawClient {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let config = Config::builder()
            .max_message_size(1 << 20)
            .deflate(DeflateConfig::default())
            .build();
        let (mut conn, accepted) = Conn::accept(tcp, &config).await.unwrap();
        assert!(accepted.deflate.is_some());
        while let Ok(Some(m)) = conn.read_message().await {
            conn.feed_message(m).await.unwrap();
        }
    });
    let mut c = RawClient::connect(
        addr,
        "/",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .await;
    assert!(c
        .resp
        .header("sec-websocket-extensions")
        .is_some_and(|v| v.starts_with(b"permessage-deflate")));
    c.r.dec.set_per_message_deflate(true);
    c
}

fn compressed(opcode: OpCode, payload: Vec<u8>, fin: bool) -> Frame {
    let mut f = Frame::new(opcode, payload).with_fin(fin);
    f.rsv = 0b100;
    f
}

#[tokio::test]
async fn a_compressed_message_is_echoed_to_a_raw_peer() {
    let mut c = hostile_pair().await;
    let text = json(5000, 1);
    c.send(compressed(OpCode::Text, compress(text.as_bytes()), true))
        .await;
    let f = c.frame().await;
    assert_eq!(f.rsv, 0b100, "echoed compressed (above the threshold)");
}

#[tokio::test]
async fn a_bomb_closes_with_1009() {
    let mut c = hostile_pair().await;
    // 256 MiB of zeros in about 256 KiB.
    let mut z = Vec::new();
    {
        let mut comp = Compress::new(Compression::new(9), false);
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            z.reserve(8192);
            let mut input = &zeros[..];
            while !input.is_empty() {
                if z.capacity() - z.len() < 1024 {
                    z.reserve(z.capacity());
                }
                let before = comp.total_in();
                comp.compress_vec(input, &mut z, FlushCompress::None)
                    .unwrap();
                input = &input[(comp.total_in() - before) as usize..];
            }
        }
        z.reserve(4096);
        comp.compress_vec(&[], &mut z, FlushCompress::Sync).unwrap();
    }
    assert!(z.len() < 400_000, "{}", z.len());
    c.send(compressed(OpCode::Binary, z, true)).await;
    assert_eq!(c.r.expect_close().await, Some(1009));
}

#[tokio::test]
async fn rsv1_where_it_may_not_be_is_1002() {
    // On a continuation.
    let mut c = hostile_pair().await;
    c.send(compressed(OpCode::Text, compress(b"hello"), false))
        .await;
    c.send(compressed(OpCode::Continuation, compress(b"x"), true))
        .await;
    assert_eq!(c.r.expect_close().await, Some(1002));
    // On a ping.
    let mut c = hostile_pair().await;
    c.send(compressed(OpCode::Ping, b"p".to_vec(), true)).await;
    assert_eq!(c.r.expect_close().await, Some(1002));
    // Without deflate negotiated.
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let (mut conn, _) = Conn::accept(tcp, &cfg(None)).await.unwrap();
        while let Ok(Some(_)) = conn.read_message().await {}
    });
    let mut c = RawClient::connect(
        addr,
        "/",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .await;
    assert!(c.resp.header("sec-websocket-extensions").is_none());
    c.send(compressed(OpCode::Text, compress(b"hello"), true))
        .await;
    assert_eq!(c.r.expect_close().await, Some(1002));
}

#[tokio::test]
async fn corrupt_data_and_bad_utf8_are_1007() {
    let mut c = hostile_pair().await;
    c.send(compressed(
        OpCode::Binary,
        vec![0xff, 0xfe, 0xfd, 0x00, 0x01],
        true,
    ))
    .await;
    assert_eq!(c.r.expect_close().await, Some(1007));
    let mut c = hostile_pair().await;
    c.send(compressed(
        OpCode::Text,
        compress(&[b'a', 0xc3, 0x28, b'b']),
        true,
    ))
    .await;
    assert_eq!(c.r.expect_close().await, Some(1007));
}

#[tokio::test]
async fn a_client_refuses_an_answer_it_did_not_ask_for() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for answer in [
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; bogus",
        "permessage-deflate, permessage-deflate",
        "x-webkit-deflate-frame",
        // Asked for server_no_context_takeover (the default), not granted.
        "permessage-deflate",
    ] {
        let (l, addr) = listener().await;
        let owned = answer.to_owned();
        tokio::spawn(async move {
            let answer = owned;
            let (mut tcp, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tcp.read(&mut buf).await.unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&head).to_string();
            let key = text
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .trim()
                .to_owned();
            let accept = rtwire::ws::handshake::accept_key(key.as_bytes());
            let resp = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n",
                std::str::from_utf8(&accept).unwrap()
            );
            tcp.write_all(resp.as_bytes()).await.unwrap();
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let r = Conn::connect(
            tcp,
            &format!("ws://{addr}/"),
            &cfg(Some(DeflateConfig::default())),
        )
        .await;
        assert!(
            matches!(
                r,
                Err(Error::Handshake(
                    rtwire::HandshakeError::ExtensionNotOffered(_)
                ))
            ),
            "{answer}: {:?}",
            r.map(|_| ())
        );
    }
}

#[tokio::test]
async fn a_shared_compressed_frame_goes_only_where_it_fits() {
    use rtwire::ws::deflate::encode_compressed;
    let text = json(3000, 5);
    let frame = encode_compressed(OpCode::Text, text.as_bytes(), 15, 6);
    let offer = "permessage-deflate; client_max_window_bits";
    // No context takeover on the server side: it fits, and reads back.
    let p = params(&DeflateConfig::default(), offer);
    let (io, captured) = ChaosIo::new(ChaosConfig::steady(true));
    let mut conn =
        Conn::from_upgraded(io, Role::Server, &cfg(None), BytesMut::new()).with_deflate(p);
    assert_eq!(conn.shared_deflate_window(), Some(15));
    conn.feed_encoded(frame.clone()).await.unwrap();
    conn.flush().await.unwrap();
    let wire = captured.lock().unwrap().bytes.clone();
    assert_eq!(read_back(wire, p).await, vec![Message::text(text)]);
    // Context takeover, or no deflate at all: refused, nothing queued.
    let p = params(&DeflateConfig::context_takeover(15), offer);
    let (io, captured) = ChaosIo::new(ChaosConfig::steady(true));
    let mut conn =
        Conn::from_upgraded(io, Role::Server, &cfg(None), BytesMut::new()).with_deflate(p);
    assert_eq!(conn.shared_deflate_window(), None);
    assert!(matches!(
        conn.feed_encoded(frame.clone()).await,
        Err(Error::Usage(_))
    ));
    let (io, _) = ChaosIo::new(ChaosConfig::steady(true));
    let mut plain = Conn::from_upgraded(io, Role::Server, &cfg(None), BytesMut::new());
    assert!(matches!(
        plain.feed_encoded(frame).await,
        Err(Error::Usage(_))
    ));
    conn.flush().await.unwrap();
    assert!(captured.lock().unwrap().bytes.is_empty());
}

#[tokio::test]
async fn fragmented_sends_keep_their_frame_size_and_stream_their_data() {
    use rtwire::ws::{Decoder, Limits};
    let p = params(
        &DeflateConfig::context_takeover(15),
        "permessage-deflate; client_max_window_bits",
    );
    let (io, captured) = ChaosIo::new(ChaosConfig::steady(true));
    let mut conn =
        Conn::from_upgraded(io, Role::Server, &cfg(None), BytesMut::new()).with_deflate(p);
    let random = Message::binary(pattern(300_000, 3));
    conn.send_fragmented(random.clone(), 1000).await.unwrap();
    // Fragments fed one by one: each frame carries its own data.
    for (i, part) in [json(5000, 1), json(5000, 2), json(5000, 3)]
        .iter()
        .enumerate()
    {
        let op = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        conn.feed_frame(Frame::new(op, part.clone()).with_fin(i == 2))
            .await
            .unwrap();
    }
    conn.flush().await.unwrap();
    let wire = captured.lock().unwrap().bytes.clone();
    let mut dec = Decoder::new(Role::Client, Limits::unlimited());
    dec.set_per_message_deflate(true);
    let mut buf = BytesMut::from(&wire[..]);
    let mut frames = Vec::new();
    while let Some(f) = dec.decode(&mut buf).unwrap() {
        frames.push(f);
    }
    let (first, streamed) = frames.split_at(frames.len() - 3);
    assert_eq!(first[0].rsv, 0b100);
    assert!(first.iter().all(|f| f.payload.len() <= 1000));
    assert!(first[1..].iter().all(|f| f.rsv == 0));
    assert!(
        streamed.iter().all(|f| !f.payload.is_empty()),
        "{streamed:?}"
    );
    let whole = json(5000, 1) + &json(5000, 2) + &json(5000, 3);
    assert_eq!(read_back(wire, p).await, vec![random, Message::text(whole)]);
}

#[tokio::test]
async fn split_halves_compress_and_inflate_concurrently() {
    let (addr, task) = echo_server(cfg(Some(DeflateConfig::context_takeover(12)))).await;
    let c = client(addr, &cfg(Some(DeflateConfig::context_takeover(15)))).await;
    let (mut r, mut w) = c.split();
    let msgs: Vec<Message> = (0..200)
        .map(|i| Message::text(json(300 + i * 37, i as u32)))
        .collect();
    let sent = msgs.clone();
    let writer = tokio::spawn(async move {
        for m in sent {
            w.feed_message(m).await.unwrap();
        }
        w.flush().await.unwrap();
        w
    });
    bounded("echoes", async {
        for m in &msgs {
            assert_eq!(&r.read_message().await.unwrap().unwrap(), m);
        }
    })
    .await;
    let mut w = writer.await.unwrap();
    w.close(rtwire::ws::CloseCode::NORMAL, "").await.unwrap();
    while r.read_message().await.unwrap().is_some() {}
    assert!(task.await.unwrap().is_some());
}
