//! JSON as Hookline reads it from outside: well-formed UTF-8, and no object naming a
//! key twice. RFC 8259 leaves duplicate names to the reader; serde_json keeps the last,
//! so `{"url": "a", "url": "b"}` would mean whatever the last one said while a proxy or
//! a log that keeps the first saw another request. Such a body is refused instead.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum StrictJsonError {
    /// Not UTF-8: `valid_up_to` bytes were.
    #[error("the body is not UTF-8 text (the bytes after the first {valid_up_to} are not)")]
    NotUtf8 { valid_up_to: usize },
    /// A key named twice in one object, at this JSON pointer.
    #[error("the key at {pointer} appears more than once in its object")]
    DuplicateKey { pointer: String },
    #[error("{}", where_and_what(.0))]
    Syntax(#[source] serde_json::Error),
}

fn where_and_what(e: &serde_json::Error) -> String {
    format!("line {}, column {}: {e}", e.line(), e.column())
}

/// Parses `body` into a `Value`, refusing what serde_json alone would accept silently.
pub fn parse(body: &[u8]) -> Result<Value, StrictJsonError> {
    let text = std::str::from_utf8(body).map_err(|e| StrictJsonError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    match from_str(text, None) {
        Ok(v) => Ok(v),
        Err(e) if e.is_data() && e.to_string().starts_with(DUPLICATE) => {
            // Rare: parse again, this time keeping the path, to say where.
            let path = RefCell::new(Vec::new());
            let found = RefCell::new(None);
            let _ = from_str(
                text,
                Some(Trail {
                    path: &path,
                    found: &found,
                }),
            );
            let pointer = found.into_inner().unwrap_or_else(|| "/".to_owned());
            Err(StrictJsonError::DuplicateKey { pointer })
        }
        Err(e) => Err(StrictJsonError::Syntax(e)),
    }
}

const DUPLICATE: &str = "duplicate key";

fn from_str(text: &str, trail: Option<Trail<'_>>) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Strict { trail }.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

enum Segment {
    Key(String),
    Index(usize),
}

/// Where the parse is, kept only on the second pass.
#[derive(Clone, Copy)]
struct Trail<'a> {
    path: &'a RefCell<Vec<Segment>>,
    found: &'a RefCell<Option<String>>,
}

impl Trail<'_> {
    fn pointer(&self, last: &str) -> String {
        let mut out = String::new();
        for s in self.path.borrow().iter() {
            match s {
                Segment::Key(k) => out.push_str(&crate::api::pointer("", k)),
                Segment::Index(i) => out.push_str(&format!("/{i}")),
            }
        }
        out + &crate::api::pointer("", last)
    }
}

struct Strict<'a> {
    trail: Option<Trail<'a>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            if let Some(t) = self.trail {
                t.path.borrow_mut().push(Segment::Index(out.len()));
            }
            let next = seq.next_element_seed(Strict { trail: self.trail })?;
            if let Some(t) = self.trail {
                t.path.borrow_mut().pop();
            }
            match next {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                if let Some(t) = self.trail {
                    *t.found.borrow_mut() = Some(t.pointer(&key));
                }
                return Err(de::Error::custom(format_args!("{DUPLICATE} `{key}`")));
            }
            if let Some(t) = self.trail {
                t.path.borrow_mut().push(Segment::Key(key.clone()));
            }
            let value = map.next_value_seed(Strict { trail: self.trail })?;
            if let Some(t) = self.trail {
                t.path.borrow_mut().pop();
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_named_twice_is_refused_with_where_it_is() {
        let cases = [
            (r#"{"url": "a", "url": "b"}"#, "/url"),
            (r#"{"data": {"x": 1, "y": [0, {"k": 1, "k": 2}]}}"#, "/data/y/1/k"),
            (r#"[{"a/b": 1, "a/b": 1}]"#, "/0/a~1b"),
        ];
        for (body, pointer) in cases {
            match parse(body.as_bytes()) {
                Err(StrictJsonError::DuplicateKey { pointer: p }) => assert_eq!(p, pointer, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_same_key_in_different_objects_is_fine_and_values_read_as_serde_json_reads_them() {
        let body = r#"{"a": {"k": 1}, "b": {"k": 2.5e3, "n": -7, "big": 18446744073709551615,
                      "s": "\u00e9\ud83d\ude00", "t": true, "z": null, "l": []}}"#;
        let strict = parse(body.as_bytes()).unwrap();
        let plain: Value = serde_json::from_str(body).unwrap();
        assert_eq!(strict, plain);
        assert_eq!(strict["a"], json!({"k": 1}));
    }

    #[test]
    fn bytes_that_are_not_utf8_or_not_json_say_so() {
        assert!(matches!(
            parse(b"{\"a\": \"\xff\xfe\"}"),
            Err(StrictJsonError::NotUtf8 { valid_up_to: 7 })
        ));
        let e = parse(b"{\"a\": 1,\n \"b\" 2}").unwrap_err();
        assert!(e.to_string().starts_with("line 2, column 6"), "{e}");
        assert!(matches!(parse(b"{} x"), Err(StrictJsonError::Syntax(_))));
    }

    #[test]
    fn nesting_past_the_readers_limit_is_a_syntax_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(matches!(parse(deep.as_bytes()), Err(StrictJsonError::Syntax(_))));
    }
}
