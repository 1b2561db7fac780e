//! Reading the reply of `XREADGROUP ... STREAMS key >` (RESP2) without building a map per entry:
//! `[[key, [[id, [field, value, ...]], ...]]]`, or nil when the read timed out.

use redis::Value;

use super::connection::{array, bulk};

/// One stream entry: its id (to ack) and the value of its first field (the payload).
pub struct Entry {
    pub id: Vec<u8>,
    pub payload: Vec<u8>,
}

/// The entries of an XREADGROUP reply for one stream, in stream order.
pub fn entries(reply: Value) -> Result<Vec<Entry>, String> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        other => array(other).ok_or("XREADGROUP: the reply is not an array")?,
    };
    let mut entries = Vec::new();
    for stream in streams {
        let mut stream = array(stream).ok_or("XREADGROUP: a stream is not an array")?;
        let items = match stream.len() {
            2 => stream.pop().and_then(array),
            _ => None,
        }
        .ok_or("XREADGROUP: a stream is not [key, entries]")?;
        entries.reserve(items.len());
        for item in items {
            entries.push(entry(item).ok_or("XREADGROUP: an entry is not [id, [field, value]]")?);
        }
    }
    Ok(entries)
}

fn entry(item: Value) -> Option<Entry> {
    let mut parts = array(item)?.into_iter();
    let id = bulk(parts.next()?)?;
    let payload = bulk(array(parts.next()?)?.into_iter().nth(1)?)?;
    Some(Entry { id, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &[u8]) -> Value {
        Value::BulkString(text.to_vec())
    }

    /// Ids and payloads come out in order; a timed-out read is no entries; a malformed reply is
    /// an error, not a panic.
    #[test]
    fn parses_a_read() {
        let reply = Value::Array(vec![Value::Array(vec![
            bytes(b"bench.queue"),
            Value::Array(vec![
                Value::Array(vec![
                    bytes(b"1-0"),
                    Value::Array(vec![bytes(b"p"), bytes(b"one")]),
                ]),
                Value::Array(vec![
                    bytes(b"1-1"),
                    Value::Array(vec![bytes(b"p"), bytes(b"two")]),
                ]),
            ]),
        ])]);
        let got = entries(reply).expect("a well-formed reply");
        let pairs: Vec<_> = got.iter().map(|e| (&e.id[..], &e.payload[..])).collect();
        assert_eq!(
            pairs,
            [(&b"1-0"[..], &b"one"[..]), (&b"1-1"[..], &b"two"[..])]
        );
        assert!(entries(Value::Nil).expect("nil").is_empty());
        assert!(entries(Value::Int(3)).is_err());
        let no_value = Value::Array(vec![Value::Array(vec![
            bytes(b"k"),
            Value::Array(vec![Value::Array(vec![
                bytes(b"1-0"),
                Value::Array(vec![]),
            ])]),
        ])]);
        assert!(entries(no_value).is_err());
    }
}
