//! The client's side of the upgrade over a stream: the request for a
//! `ws://` URL and the check of the `101`.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::Conn;
use crate::error::{Error, HandshakeError, UsageError};
use crate::http::{HeadParser, ResponseHead};
use crate::ws::config::Config;
use crate::ws::handshake::ClientHandshake;
use crate::ws::role::Role;

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Client side: sends the upgrade request for `url`
    /// (`ws://host[:port]/path?query`; `wss://` when `stream` is already
    /// TLS) with `config.client_subprotocols` and `config.client_headers`,
    /// and validates the `101` response, all within
    /// `config.handshake_timeout`. Returns the connection and the response
    /// head (e.g. for the selected subprotocol).
    pub async fn connect(
        mut stream: S,
        url: &str,
        config: &Config,
    ) -> Result<(Self, ResponseHead), Error> {
        let (host, path) = split_url(url).ok_or(Error::Usage(UsageError::InvalidUrl))?;
        let fut = async {
            let mut out = BytesMut::with_capacity(256);
            let protos: Vec<&str> = config
                .client_subprotocols
                .iter()
                .map(|s| s.as_str())
                .collect();
            #[allow(unused_mut)]
            let mut headers: Vec<(&str, &str)> = config
                .client_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            #[cfg(feature = "deflate")]
            let offer = config
                .deflate
                .as_ref()
                .map(crate::ws::deflate::client_offer);
            #[cfg(feature = "deflate")]
            if let Some(o) = &offer {
                headers.push(("Sec-WebSocket-Extensions", o));
            }
            let hs = ClientHandshake::new(host, &path, &protos, &headers, &mut out)?;
            stream.write_all(&out).await?;
            stream.flush().await?;
            let mut parser = HeadParser::new(config.head_limits);
            let mut buf = BytesMut::with_capacity(1024);
            let resp = loop {
                if let Some(resp) = parser
                    .parse_response(&mut buf)
                    .map_err(HandshakeError::Head)?
                {
                    break resp;
                }
                if tokio::io::AsyncReadExt::read_buf(&mut stream, &mut buf).await? == 0 {
                    return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            };
            #[cfg(feature = "deflate")]
            let params = match &config.deflate {
                Some(d) => hs.validate_with_deflate(&resp, d)?.1,
                None => {
                    hs.validate(&resp)?;
                    None
                }
            };
            #[cfg(not(feature = "deflate"))]
            let params = {
                hs.validate(&resp)?;
                None::<()>
            };
            Ok((resp, buf, params))
        };
        let at = config.handshake_timeout.map(|t| config.timer.now() + t);
        let (resp, leftover, _params) =
            super::deadline::run_until(config.timer, at, fut)
                .await
                .map_err(|()| Error::Handshake(HandshakeError::Timeout))??;
        let conn = Self::from_upgraded(stream, Role::Client, config, leftover);
        #[cfg(feature = "deflate")]
        let conn = match _params {
            Some(p) => conn.with_deflate(p),
            None => conn,
        };
        Ok((conn, resp))
    }
}

/// Splits `ws://host[:port]/path?query` into (`host[:port]`, `/path?query`).
fn split_url(url: &str) -> Option<(&str, String)> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))?;
    let (host, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    if host.is_empty() {
        return None;
    }
    Some((host, path))
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_host_and_target() {
        assert_eq!(split_url("ws://a:1/x?y=1"), Some(("a:1", "/x?y=1".into())));
        assert_eq!(split_url("ws://a?y=1"), Some(("a", "/?y=1".into())));
        assert_eq!(split_url("wss://a"), Some(("a", "/".into())));
        assert_eq!(split_url("http://a/"), None);
        assert_eq!(split_url("ws:///x"), None);
    }
}
