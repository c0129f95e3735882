//! `Sec-WebSocket-Extensions` (RFC 6455 §9.1) and the permessage-deflate
//! negotiation of RFC 7692 §7.1: parsing offers and answers, choosing an
//! offer (server), building the offer and checking the answer (client).

use super::{DeflateConfig, DeflateParams};
use crate::error::HandshakeError;

/// One parameter of an extension element: a name and an optional value
/// (a quoted-string value is unquoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionParam {
    /// Parameter name, as sent.
    pub name: String,
    /// Its value, if it had one.
    pub value: Option<String>,
}

/// One element of an extension list: `name; p1; p2=v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionElement {
    /// Extension token, as sent.
    pub name: String,
    /// Its parameters, in order.
    pub params: Vec<ExtensionParam>,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses one or more `Sec-WebSocket-Extensions` values (a header may be
/// repeated; call once per value and concatenate, or join with `,`).
/// `None` when the value is not `1#extension` as RFC 6455 §9.1 defines it.
///
/// ```
/// use rtwire::ws::deflate::parse_extensions;
/// let e = parse_extensions(b"permessage-deflate; client_max_window_bits=\"10\", x").unwrap();
/// assert_eq!(e[0].name, "permessage-deflate");
/// assert_eq!(e[0].params[0].value.as_deref(), Some("10"));
/// assert_eq!(e[1].name, "x");
/// ```
pub fn parse_extensions(value: &[u8]) -> Option<Vec<ExtensionElement>> {
    let mut p = Parser { s: value, i: 0 };
    let mut out = Vec::new();
    loop {
        p.ows();
        if p.eat(b',') {
            // Empty list elements are allowed (`1#` with null elements).
            continue;
        }
        if p.done() {
            break;
        }
        let name = p.token()?;
        let mut params = Vec::new();
        loop {
            p.ows();
            if !p.eat(b';') {
                break;
            }
            p.ows();
            let pname = p.token()?;
            p.ows();
            let value = if p.eat(b'=') {
                p.ows();
                Some(if p.peek() == Some(b'"') {
                    p.quoted()?
                } else {
                    p.token()?
                })
            } else {
                None
            };
            params.push(ExtensionParam { name: pname, value });
        }
        out.push(ExtensionElement { name, params });
        p.ows();
        if !p.done() && !p.eat(b',') {
            return None;
        }
    }
    Some(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> Option<String> {
        self.eat(b'"');
        let mut v = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    self.i += 1;
                    v.push(self.peek()?);
                    self.i += 1;
                }
                b => {
                    v.push(b);
                    self.i += 1;
                }
            }
        }
        // RFC 6455 §9.1: a quoted value must still be a token.
        (!v.is_empty() && v.iter().all(|&b| is_tchar(b)))
            .then(|| String::from_utf8_lossy(&v).into_owned())
    }
}

/// RFC 7692 §7.1.2: `8` to `15`, written without leading zeros.
fn window_bits(v: &str) -> Option<u8> {
    match v.as_bytes() {
        [b @ b'8'..=b'9'] => Some(b - b'0'),
        [b'1', b @ b'0'..=b'5'] => Some(10 + b - b'0'),
        _ => None,
    }
}

/// The parameters of one permessage-deflate element, each at most once
/// and well-formed (`None` otherwise: the element is declined, or the
/// answer refused).
#[derive(Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `Some(bits)` when present (it always has a value).
    server_max_window_bits: Option<u8>,
    /// `Some(None)` when present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

fn parse_params(e: &ExtensionElement) -> Option<Parsed> {
    let mut p = Parsed::default();
    for (i, param) in e.params.iter().enumerate() {
        let name = param.name.to_ascii_lowercase();
        if e.params[..i]
            .iter()
            .any(|q| q.name.eq_ignore_ascii_case(&name))
        {
            return None;
        }
        let v = param.value.as_deref();
        match name.as_str() {
            "server_no_context_takeover" if v.is_none() => p.server_no_context_takeover = true,
            "client_no_context_takeover" if v.is_none() => p.client_no_context_takeover = true,
            "server_max_window_bits" => p.server_max_window_bits = Some(window_bits(v?)?),
            "client_max_window_bits" => {
                p.client_max_window_bits = Some(match v {
                    None => None,
                    Some(v) => Some(window_bits(v)?),
                })
            }
            _ => return None,
        }
    }
    Some(p)
}

/// Server side: the first acceptable permessage-deflate offer among
/// `offers`, answered by `config` (RFC 7692 §7.1). An offer is declined
/// when a parameter is unknown, repeated, or out of range, or when it asks
/// for a server window of 8 bits. `None`: no deflate on this connection.
pub fn server_negotiate(
    offers: &[ExtensionElement],
    config: &DeflateConfig,
) -> Option<DeflateParams> {
    offers
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case("permessage-deflate"))
        .find_map(|e| {
            let o = parse_params(e)?;
            let ours = DeflateConfig::bits(config.server_max_window_bits);
            let server_bits = o.server_max_window_bits.unwrap_or(15).min(ours);
            if server_bits < 9 {
                return None;
            }
            let (client_bits, client_in_answer) = match o.client_max_window_bits {
                None => (15, false),
                Some(offered) => {
                    let b = offered
                        .unwrap_or(15)
                        .min(DeflateConfig::bits(config.client_max_window_bits));
                    (
                        b,
                        config.client_max_window_bits.is_some() || offered.is_some(),
                    )
                }
            };
            Some(DeflateParams {
                server_no_context_takeover: o.server_no_context_takeover
                    || config.server_no_context_takeover,
                client_no_context_takeover: o.client_no_context_takeover
                    || config.client_no_context_takeover,
                server_max_window_bits: server_bits,
                client_max_window_bits: client_bits,
                level: config.level.min(9),
                threshold: config.threshold,
                server_bits_in_answer: server_bits < 15 || o.server_max_window_bits.is_some(),
                client_bits_in_answer: client_in_answer,
            })
        })
}

/// Client side: the `Sec-WebSocket-Extensions` offer for `config`.
///
/// ```
/// use rtwire::ws::deflate::client_offer;
/// use rtwire::ws::DeflateConfig;
/// assert_eq!(
///     client_offer(&DeflateConfig::default()),
///     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
/// );
/// ```
pub fn client_offer(config: &DeflateConfig) -> String {
    let mut s = String::from("permessage-deflate");
    if config.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if let Some(b) = config.server_max_window_bits {
        s.push_str(&format!("; server_max_window_bits={}", b.clamp(9, 15)));
    }
    s.push_str("; client_max_window_bits");
    if let Some(b) = config.client_max_window_bits {
        s.push_str(&format!("={}", b.clamp(9, 15)));
    }
    s
}

/// Client side: checks the server's answer (`elements`, every
/// `Sec-WebSocket-Extensions` value parsed) against the offer made from
/// `config` (RFC 7692 §7.1): nothing but one permessage-deflate element,
/// no unknown, repeated or out-of-range parameter, windows no larger than
/// offered, and what was asked for granted. `Ok(None)`: the server
/// declined (no deflate).
pub fn validate_response(
    elements: &[ExtensionElement],
    config: &DeflateConfig,
) -> Result<Option<DeflateParams>, HandshakeError> {
    let refuse = |why: &str| Err(HandshakeError::ExtensionNotOffered(why.to_owned()));
    let Some(e) = elements.first() else {
        return Ok(None);
    };
    if elements.len() > 1 {
        return refuse("more than one extension in the answer");
    }
    if !e.name.eq_ignore_ascii_case("permessage-deflate") {
        return refuse(&e.name);
    }
    let Some(a) = parse_params(e) else {
        return refuse("permessage-deflate with an invalid, unknown or repeated parameter");
    };
    if config.server_no_context_takeover && !a.server_no_context_takeover {
        return refuse("permessage-deflate without the server_no_context_takeover asked for");
    }
    let server_bits = match (config.server_max_window_bits, a.server_max_window_bits) {
        (Some(_), None) => {
            return refuse("permessage-deflate without the server_max_window_bits asked for")
        }
        (Some(asked), Some(b)) if b > asked.clamp(9, 15) => {
            return refuse("permessage-deflate with a larger server_max_window_bits than offered")
        }
        (_, b) => b.unwrap_or(15),
    };
    let ours = DeflateConfig::bits(config.client_max_window_bits);
    let client_bits = match a.client_max_window_bits {
        None => ours,
        Some(None) => return refuse("permessage-deflate: client_max_window_bits without a value"),
        Some(Some(b))
            if config
                .client_max_window_bits
                .is_some_and(|o| b > o.clamp(9, 15)) =>
        {
            return refuse("permessage-deflate with a larger client_max_window_bits than offered")
        }
        // 8 is honoured with stored blocks (zlib has no 8-bit raw window).
        Some(Some(b)) => b.min(ours),
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: a.server_no_context_takeover,
        client_no_context_takeover: a.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        level: config.level.min(9),
        threshold: config.threshold,
        server_bits_in_answer: a.server_max_window_bits.is_some(),
        client_bits_in_answer: a.client_max_window_bits.is_some(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(offer: &str, config: &DeflateConfig) -> Option<String> {
        let offers = parse_extensions(offer.as_bytes()).unwrap();
        server_negotiate(&offers, config).map(|p| p.response_header())
    }

    fn ctx() -> DeflateConfig {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            ..DeflateConfig::default()
        }
    }

    #[test]
    fn parses_lists_params_and_quoted_values() {
        let e = parse_extensions(b" foo ,, permessage-deflate ;a; b = \"12\" ,bar;c=d").unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].params.len(), 2);
        assert_eq!(e[1].params[1].value.as_deref(), Some("12"));
        for bad in [
            &b"a;"[..],
            b"a b",
            b"a;b=",
            b"a;b=\"x",
            b"a;b=\"\"",
            b"a;b=\"x y\"",
            b";a",
        ] {
            assert_eq!(
                parse_extensions(bad),
                None,
                "{:?}",
                std::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn server_answers_per_rfc_7692() {
        let c = ctx();
        assert_eq!(neg("permessage-deflate", &c).unwrap(), "permessage-deflate");
        assert_eq!(
            neg("permessage-deflate; server_max_window_bits=10", &c).unwrap(),
            "permessage-deflate; server_max_window_bits=10"
        );
        // client_max_window_bits may only be answered when offered.
        let c12 = DeflateConfig {
            client_max_window_bits: Some(12),
            ..ctx()
        };
        assert_eq!(
            neg("permessage-deflate", &c12).unwrap(),
            "permessage-deflate"
        );
        assert_eq!(
            neg("permessage-deflate; client_max_window_bits", &c12).unwrap(),
            "permessage-deflate; client_max_window_bits=12"
        );
        assert_eq!(
            neg("permessage-deflate; client_max_window_bits=10", &c12).unwrap(),
            "permessage-deflate; client_max_window_bits=10"
        );
        // Our own window limit is announced unasked.
        let s11 = DeflateConfig {
            server_max_window_bits: Some(11),
            ..ctx()
        };
        assert_eq!(
            neg("permessage-deflate; server_max_window_bits=13", &s11).unwrap(),
            "permessage-deflate; server_max_window_bits=11"
        );
        assert_eq!(
            neg(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                &c
            )
            .unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn bad_offers_are_declined_and_the_next_one_taken() {
        let c = ctx();
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits=8",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(neg(bad, &c), None, "{bad}");
            assert_eq!(
                neg(
                    &format!("{bad}, permessage-deflate; client_max_window_bits"),
                    &c
                )
                .unwrap(),
                "permessage-deflate",
                "{bad}"
            );
        }
    }

    #[test]
    fn client_checks_the_answer() {
        let c = DeflateConfig {
            server_max_window_bits: Some(12),
            ..DeflateConfig::default()
        };
        let check = |answer: &str| {
            let e = parse_extensions(answer.as_bytes()).unwrap();
            validate_response(&e, &c)
        };
        let ok = check("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
            .unwrap()
            .unwrap();
        assert_eq!(ok.server_max_window_bits, 10);
        assert!(
            ok.client_no_context_takeover,
            "we offered it, so we keep to it"
        );
        assert_eq!(check("").unwrap(), None);
        for bad in [
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=13",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; bogus",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover; server_max_window_bits=12",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12, permessage-deflate",
            "x-other",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
