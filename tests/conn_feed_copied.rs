//! `feed_binary_copied` / `feed_text_copied`: messages fed from borrowed
//! bytes arrive exactly as `feed_message` sends them, in both roles, over
//! loopback TCP (a real peer), through the fast path and the wait for room,
//! with and without permessage-deflate; misuse is refused with the same
//! typed errors, and a refused feed queues nothing.
//!
//! (Order against every other write, under short and stalled writes, is
//! the `conn_write_prop` property, which feeds copied messages too.)

mod conn_support;

use bytes::BytesMut;
use conn_support::{bounded, listener, pattern};
use rtwire::ws::{CloseCode, Config, Conn, Frame, Message, OpCode, Role};
use rtwire::{Error, UsageError};
use tokio::net::TcpStream;

/// Sizes across the short-header, 16-bit and 64-bit lengths and the
/// vectored threshold (copied messages are never vectored).
const SIZES: [usize; 8] = [0, 1, 125, 126, 4095, 4096, 65_536, 300_000];

fn messages() -> Vec<Message> {
    let mut v = Vec::new();
    for (i, n) in SIZES.into_iter().enumerate() {
        v.push(Message::binary(pattern(n, i as u8)));
        let text: String = (0..n).map(|k| (b'a' + (k % 26) as u8) as char).collect();
        v.push(Message::text(text));
    }
    v
}

async fn feed_copied<S>(conn: &mut Conn<S>, m: &Message) -> Result<(), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match m {
        Message::Text(t) => conn.feed_text_copied(t.as_str()).await,
        Message::Binary(b) => conn.feed_binary_copied(b).await,
    }
}

/// A server that feeds every message copied, then flushes once (or after
/// each one when `flush_each`), then reads messages until the client
/// closes and returns them.
async fn run_pair(config: Config, flush_each: bool) {
    let (l, addr) = listener().await;
    let server_cfg = config.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let (mut conn, _) = Conn::accept(tcp, &server_cfg).await.unwrap();
        for m in messages() {
            feed_copied(&mut conn, &m).await.unwrap();
            if flush_each {
                conn.flush().await.unwrap();
            }
        }
        conn.flush().await.unwrap();
        let mut got = Vec::new();
        while let Some(m) = conn.read_message().await.unwrap() {
            got.push(m);
        }
        got
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut client, _) = Conn::connect(tcp, &format!("ws://{addr}/"), &config)
        .await
        .unwrap();
    bounded("copied messages both ways", async {
        for (i, want) in messages().into_iter().enumerate() {
            let got = client.read_message().await.unwrap().unwrap();
            assert_eq!(got, want, "server -> client message {i}");
        }
        // The client role masks what it copies.
        for m in messages() {
            feed_copied(&mut client, &m).await.unwrap();
        }
        client.close(CloseCode::NORMAL, "").await.unwrap();
    })
    .await;
    let got = server.await.unwrap();
    assert_eq!(got, messages(), "client -> server");
}

#[tokio::test]
async fn copied_messages_arrive_exactly_both_ways() {
    let config = Config::builder().max_message_size(1 << 20).build();
    run_pair(config.clone(), false).await;
    run_pair(config, true).await;
}

/// A high-water mark far below the messages: most feeds find the queue
/// full and take the wait-for-room path (the bytes copied into a `Bytes`
/// first).
#[tokio::test]
async fn copied_messages_wait_for_room_under_a_tiny_high_water_mark() {
    let config = Config::builder()
        .max_message_size(1 << 20)
        .write_buffer_high_water(512)
        .build();
    run_pair(config, false).await;
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn copied_messages_are_compressed_when_deflate_is_negotiated() {
    let config = Config::builder()
        .max_message_size(1 << 20)
        .deflate(rtwire::ws::DeflateConfig::default())
        .build();
    run_pair(config, false).await;
}

/// Refused like `feed_message`, and a refused feed queues nothing: the
/// open fragmented message then completes and is the only thing the peer
/// gets before the close.
#[tokio::test]
async fn misuse_is_refused_and_queues_nothing() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let (mut conn, _) = Conn::accept(tcp, &Config::default()).await.unwrap();
        conn.feed_frame(Frame::text("part one, ").with_fin(false))
            .await
            .unwrap();
        assert!(matches!(
            conn.feed_text_copied("inside the message").await,
            Err(Error::Usage(UsageError::FragmentOrder))
        ));
        assert!(matches!(
            conn.feed_binary_copied(b"inside the message").await,
            Err(Error::Usage(UsageError::FragmentOrder))
        ));
        conn.feed_frame(Frame::new(OpCode::Continuation, "part two"))
            .await
            .unwrap();
        conn.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(matches!(
            conn.feed_text_copied("after close").await,
            Err(Error::ConnectionClosed)
        ));
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut client, _) = Conn::connect(tcp, &format!("ws://{addr}/"), &Config::default())
        .await
        .unwrap();
    bounded("misuse", async {
        let m = client.read_message().await.unwrap().unwrap();
        assert_eq!(m, Message::text("part one, part two"));
        assert_eq!(client.read_message().await.unwrap(), None);
    })
    .await;
    server.await.unwrap();
}

/// After our close is queued (the peer's not yet seen), a copied feed is
/// `AlreadyClosing`, as `feed_message` is.
#[tokio::test]
async fn a_copied_feed_after_our_close_frame_is_already_closing() {
    let (a, _b) = tokio::io::duplex(1 << 16);
    let mut conn = Conn::from_upgraded(a, Role::Server, &Config::default(), BytesMut::new());
    conn.feed_frame(Frame::close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(matches!(
        conn.feed_binary_copied(b"x").await,
        Err(Error::AlreadyClosing)
    ));
    assert!(matches!(
        conn.feed_message(Message::binary(&b"x"[..])).await,
        Err(Error::AlreadyClosing)
    ));
}

/// A copied feed that waits for room and is dropped has queued nothing:
/// the peer gets the message that filled the queue, then the next one fed,
/// and never the cancelled one.
#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_copied_feed_queues_nothing() {
    use std::future::{poll_fn, Future};
    use std::task::Poll;

    // A 64-byte pipe: the 4 KiB message stays queued above the mark.
    let (client_io, server_io) = tokio::io::duplex(64);
    let config = Config::builder().write_buffer_high_water(16).build();
    let mut server = Conn::from_upgraded(server_io, Role::Server, &config, BytesMut::new());
    let mut client = Conn::from_upgraded(client_io, Role::Client, &config, BytesMut::new());
    let big = pattern(4096, 3);
    server.feed_binary_copied(&big).await.unwrap();
    let queued = server.buffered();
    {
        let mut late = std::pin::pin!(server.feed_text_copied("cancelled"));
        let polled = poll_fn(|cx| Poll::Ready(late.as_mut().poll(cx))).await;
        assert!(polled.is_pending(), "the feed waits for room");
    }
    assert!(server.buffered() <= queued, "nothing was added");
    let reader = async {
        let a = client.read_message().await.unwrap().unwrap();
        let b = client.read_message().await.unwrap().unwrap();
        (a, b)
    };
    let writer = async {
        server.feed_text_copied("next").await.unwrap();
        server.flush().await.unwrap();
    };
    let ((a, b), ()) = bounded("drain", async { tokio::join!(reader, writer) }).await;
    assert_eq!(a, Message::binary(big));
    assert_eq!(b, Message::text("next"));
}

/// 5,000 pseudo-random letters: still over 1 KiB when compressed.
fn open() -> String {
    let mut x: u32 = 12_345;
    (0..5000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (b'a' + ((x >> 16) % 26) as u8) as char
        })
        .collect()
}

/// A split connection's write half, client role (masked), with deflate
/// when the feature is on: copied feeds arrive exactly, and misuse is
/// refused there too, on the fast path and over the high-water mark.
#[tokio::test]
async fn a_write_half_feeds_copied_messages_and_refuses_misuse() {
    let builder = Config::builder()
        .max_message_size(1 << 20)
        .write_buffer_high_water(1024);
    #[cfg(feature = "deflate")]
    let builder = builder.deflate(rtwire::ws::DeflateConfig::default());
    let config = builder.build();
    let (l, addr) = listener().await;
    let server_cfg = config.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let (mut conn, _) = Conn::accept(tcp, &server_cfg).await.unwrap();
        let mut got = Vec::new();
        while let Some(m) = conn.read_message().await.unwrap() {
            got.push(m);
        }
        got
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, _) = Conn::connect(tcp, &format!("ws://{addr}/"), &config)
        .await
        .unwrap();
    let (mut rh, mut wh) = client.split();
    let reads = tokio::spawn(async move { while let Ok(Some(_)) = rh.read_message().await {} });
    bounded("write half", async {
        for m in messages() {
            match &m {
                Message::Text(t) => wh.feed_text_copied(t.as_str()).await.unwrap(),
                Message::Binary(b) => wh.feed_binary_copied(b).await.unwrap(),
            }
        }
        // A first fragment larger than the 1 KiB mark: the queue is over
        // it, so the copied feed below takes the slow path, and is refused
        // before any wait, with nothing queued.
        wh.feed_frame(Frame::text(open()).with_fin(false))
            .await
            .unwrap();
        assert!(wh.buffered() > 1024);
        assert!(matches!(
            wh.feed_binary_copied(&pattern(5000, 1)).await,
            Err(Error::Usage(UsageError::FragmentOrder))
        ));
        wh.flush().await.unwrap();
        assert!(matches!(
            wh.feed_text_copied("inside").await,
            Err(Error::Usage(UsageError::FragmentOrder))
        ));
        wh.feed_frame(Frame::new(OpCode::Continuation, "message"))
            .await
            .unwrap();
        wh.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(wh.feed_text_copied("after close").await.is_err());
    })
    .await;
    let got = server.await.unwrap();
    let mut want = messages();
    want.push(Message::text(open() + "message"));
    assert_eq!(got, want);
    reads.abort();
}
