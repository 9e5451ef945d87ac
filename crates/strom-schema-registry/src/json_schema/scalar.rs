//! Strings and numbers: lengths, pattern, bounds and `multipleOf`.

use serde_json::Value;

use super::differences::{add_at, difference_type, Diff};
use super::model::Node;

fn number(value: Option<&Value>) -> Option<f64> {
    value.and_then(Value::as_f64)
}

/// `{keyword}` added, removed, increased or decreased: `{PREFIX}_ADDED` and so on.
fn compare_limit(
    path: &[String],
    keyword: &str,
    prefix: &str,
    original: Option<&Value>,
    update: Option<&Value>,
    out: &mut Vec<Diff>,
) {
    let change = match (number(original), number(update)) {
        (None, None) => return,
        (None, Some(_)) => "ADDED",
        (Some(_), None) => "REMOVED",
        (Some(o), Some(u)) if o < u => "INCREASED",
        (Some(o), Some(u)) if o > u => "DECREASED",
        _ => return,
    };
    add_at(out, path, keyword, difference_type(prefix, change));
}

/// [`compare_limit`] of each `(keyword, PREFIX)` the two schemas may set.
pub(super) fn compare_limits(
    path: &[String],
    limits: &[(&str, &str)],
    original: Node,
    update: Node,
    out: &mut Vec<Diff>,
) {
    for (keyword, prefix) in limits {
        compare_limit(
            path,
            keyword,
            prefix,
            original.get(keyword),
            update.get(keyword),
            out,
        );
    }
}

pub(super) fn compare_string(path: &[String], original: Node, update: Node, out: &mut Vec<Diff>) {
    let limits = [("maxLength", "MAX_LENGTH"), ("minLength", "MIN_LENGTH")];
    compare_limits(path, &limits, original, update, out);
    match (original.get("pattern"), update.get("pattern")) {
        (None, Some(_)) => add_at(out, path, "pattern", "PATTERN_ADDED"),
        (Some(_), None) => add_at(out, path, "pattern", "PATTERN_REMOVED"),
        (Some(o), Some(u)) if o != u => add_at(out, path, "pattern", "PATTERN_CHANGED"),
        _ => {}
    }
}

pub(super) fn compare_number<'a>(
    path: &[String],
    original: Node<'a>,
    update: Node<'a>,
    out: &mut Vec<Diff>,
) {
    let limits = [("maximum", "MAXIMUM"), ("minimum", "MINIMUM")];
    compare_limits(path, &limits, original, update, out);
    // Draft 4's boolean exclusiveMaximum/Minimum only qualify maximum/minimum: not compared.
    let limit = |n: &Node<'a>, k: &str| -> Option<&'a Value> { n.get(k).filter(|v| v.is_number()) };
    match (
        limit(&original, "exclusiveMaximum"),
        limit(&update, "exclusiveMaximum"),
    ) {
        (None, None) => {}
        (None, Some(_)) => add_at(out, path, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM_ADDED"),
        (Some(_), None) => add_at(out, path, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM_REMOVED"),
        (Some(o), Some(u)) => {
            let (o, u) = (number(Some(o)), number(Some(u)));
            if o < u {
                add_at(out, path, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM_INCREASED");
            } else if o > u {
                // Confluent compares a decrease with the update's `maximum` (absent: with none).
                let bound = number(update.get("maximum"));
                if bound.is_none_or(|m| o > Some(m)) {
                    add_at(out, path, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM_DECREASED");
                }
            }
        }
    }
    compare_limit(
        path,
        "exclusiveMinimum",
        "EXCLUSIVE_MINIMUM",
        limit(&original, "exclusiveMinimum"),
        limit(&update, "exclusiveMinimum"),
        out,
    );
    let multiple = |n: &Node| {
        n.get("multipleOf")
            .and_then(|v| Decimal::parse(&v.to_string()))
    };
    let (o, u) = (multiple(&original), multiple(&update));
    let equal = match (&o, &u) {
        (None, None) => true,
        (Some(o), Some(u)) => o.cmp_value(u) == std::cmp::Ordering::Equal,
        _ => false,
    };
    if !equal {
        let ty = match (o, u) {
            (None, _) => "MULTIPLE_OF_ADDED",
            (_, None) => "MULTIPLE_OF_REMOVED",
            (Some(o), Some(u)) => {
                if !o.is_zero() && u.divisible_by(&o) {
                    "MULTIPLE_OF_EXPANDED"
                } else if !u.is_zero() && o.divisible_by(&u) {
                    "MULTIPLE_OF_REDUCED"
                } else {
                    "MULTIPLE_OF_CHANGED"
                }
            }
        };
        add_at(out, path, "multipleOf", ty);
    }
}

/// A decimal number `digits * 10^exponent`, exact as Java's BigDecimal for `multipleOf`.
#[derive(Clone, Copy, Debug)]
struct Decimal {
    digits: i128,
    exponent: i32,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let (mantissa, exp) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits: i128 = format!("{int}{frac}").parse().ok()?;
        Some(Decimal {
            digits,
            exponent: exp - frac.len() as i32,
        })
    }

    fn is_zero(&self) -> bool {
        self.digits == 0
    }

    /// Both scaled to the smaller exponent.
    fn aligned(&self, other: &Decimal) -> Option<(i128, i128)> {
        let e = self.exponent.min(other.exponent);
        let scale = |d: &Decimal| {
            10i128
                .checked_pow((d.exponent - e) as u32)
                .and_then(|p| d.digits.checked_mul(p))
        };
        Some((scale(self)?, scale(other)?))
    }

    fn cmp_value(&self, other: &Decimal) -> std::cmp::Ordering {
        match self.aligned(other) {
            Some((a, b)) => a.cmp(&b),
            None => std::cmp::Ordering::Less,
        }
    }

    fn divisible_by(&self, other: &Decimal) -> bool {
        match self.aligned(other) {
            Some((a, b)) => b != 0 && a % b == 0,
            None => false,
        }
    }
}
