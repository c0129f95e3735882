//! Topics from a query parameter (`?topics=a,b`), as the seeds' `ParseTopics`.

/// Where topics come from and how many and how long they may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicsConfig {
    /// The query parameter, e.g. `"topics"` for `?topics=a,b`.
    pub param: String,
    /// Most topics in one request.
    pub max_count: usize,
    /// Longest topic, in bytes.
    pub max_len: usize,
}

/// Parses a comma-separated topic list, as the seeds' `ParseTopics(raw,
/// maxCount, maxLen)`: items are trimmed, duplicates dropped (first kept);
/// an empty list is allowed; an empty item, an item longer than `max_len`,
/// an item with a character outside printable ASCII (or a space), or more
/// than `max_count` items is an error.
///
/// ```
/// use rtwire::ws::handshake::parse_topics;
/// assert_eq!(parse_topics("a, b,a", 4, 8).unwrap(), ["a", "b"]);
/// assert!(parse_topics("a,,b", 4, 8).is_err());
/// assert!(parse_topics("a,b,c", 2, 8).is_err());
/// assert!(parse_topics("waytoolong", 4, 8).is_err());
/// ```
pub fn parse_topics(raw: &str, max_count: usize, max_len: usize) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    if raw.trim().is_empty() {
        return Ok(out);
    }
    for item in raw.split(',') {
        let t = item.trim();
        if t.is_empty() {
            return Err("empty topic".into());
        }
        if t.len() > max_len {
            return Err(format!("topic longer than {max_len} bytes"));
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("topic has a character outside printable ASCII".into());
        }
        if out.iter().any(|o| o == t) {
            continue;
        }
        if out.len() == max_count {
            return Err(format!("more than {max_count} topics"));
        }
        out.push(t.to_owned());
    }
    Ok(out)
}
