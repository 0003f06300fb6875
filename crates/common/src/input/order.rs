//! `order_by` (AIP-132): one key of the method's sortable keys, optionally `desc`.

use crate::error::ApiError;
use crate::limits::echo;

/// A parsed `order_by`: which key, which direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderBy<K> {
    /// The key to sort on.
    pub key: K,
    /// Descending when `true`.
    pub desc: bool,
}

impl<K: Copy> OrderBy<K> {
    /// Parses `raw` (`""`, `"key"`, `"key asc"` or `"key desc"`) over `keys` (field name → key);
    /// the empty string is `default` ascending. Anything else is `INVALID_ORDER_BY` naming the
    /// keys that are supported.
    pub fn parse(raw: &str, keys: &[(&str, K)], default: K) -> Result<OrderBy<K>, ApiError> {
        crate::limits::order_by(raw)?;
        let words: Vec<&str> = raw.split_whitespace().collect();
        let desc = match words.get(1).copied() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ApiError::invalid(
                    "order_by",
                    "INVALID_ORDER_BY",
                    format!("expected asc or desc, got {}", echo(other)),
                ));
            }
        };
        let Some(first) = words.first() else {
            return Ok(OrderBy {
                key: default,
                desc: false,
            });
        };
        match keys.iter().find(|(name, _)| name == first) {
            Some((_, key)) if words.len() <= 2 => Ok(OrderBy { key: *key, desc }),
            _ => {
                let names: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
                Err(ApiError::invalid(
                    "order_by",
                    "INVALID_ORDER_BY",
                    format!(
                        "cannot order by {}; use {}, optionally with desc",
                        echo(raw),
                        names.join(" or ")
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Key {
        Uscc,
        DisplayName,
    }
    const KEYS: &[(&str, Key)] = &[("uscc", Key::Uscc), ("display_name", Key::DisplayName)];

    #[test]
    fn orders_parse_or_name_the_keys_there_are() {
        let p = |raw| OrderBy::parse(raw, KEYS, Key::Uscc).ok();
        assert_eq!(
            p(""),
            Some(OrderBy {
                key: Key::Uscc,
                desc: false
            })
        );
        assert_eq!(
            p("display_name desc"),
            Some(OrderBy {
                key: Key::DisplayName,
                desc: true
            })
        );
        assert_eq!(
            p("  uscc   asc "),
            Some(OrderBy {
                key: Key::Uscc,
                desc: false
            })
        );
        for bad in ["revenue", "uscc sideways", "uscc desc extra"] {
            let Err(ApiError::InvalidArgument(v)) = OrderBy::parse(bad, KEYS, Key::Uscc) else {
                panic!("{bad} should be refused");
            };
            assert_eq!(v[0].reason, "INVALID_ORDER_BY");
        }
    }
}
