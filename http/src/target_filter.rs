//! `targetFilter`: the search language of `POST /requests/search`, parsed
//! once into a typed tree ([`TargetFilter`]) and matched against documents
//! (the API's JSON objects) by dotted paths.
//!
//! A node is `{"operator": "AND" | "OR", "operand": [NODE, ...]}`,
//! `{"operator": "NOT", "operand": NODE}` or `{"operator": "EQUALS" |
//! "CONTAINS" | "STARTS_WITH" | "GTE" | "LTE", "operand": {"targetName":
//! "user.username", "targetValue": "..."}}`. Its size is bounded (depth,
//! nodes, operands, string lengths), so that a filter costs at most a fixed
//! amount per document it is matched against.

use serde_json::Value;

/// Deepest nesting of AND / OR / NOT.
pub const MAX_DEPTH: usize = 8;
/// Most nodes in one filter, comparisons included.
pub const MAX_NODES: usize = 64;
/// Most operands of one AND or OR.
pub const MAX_OPERANDS: usize = 32;
/// Longest `targetName`, and segments in it.
pub const MAX_NAME_BYTES: usize = 200;
pub const MAX_NAME_SEGMENTS: usize = 8;
/// Longest `targetValue`.
pub const MAX_VALUE_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equals,
    Contains,
    StartsWith,
    Gte,
    Lte,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetFilter {
    And(Vec<TargetFilter>),
    Or(Vec<TargetFilter>),
    Not(Box<TargetFilter>),
    Compare {
        op: Comparison,
        path: Vec<String>,
        value: String,
        /// `value` lowercased, for CONTAINS and STARTS_WITH.
        folded: String,
    },
}

/// Why a filter was refused: a sentence for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

impl FilterError {
    /// Whether the filter is well-formed node by node but too large as a
    /// whole (more than [`MAX_NODES`] nodes or [`MAX_DEPTH`] levels): no
    /// schema of one node can say so.
    pub fn too_large(&self) -> bool {
        self.0.starts_with("more than") || self.0.starts_with("nested more than")
    }
}

impl TargetFilter {
    /// Parses a node given as its operator and operand.
    pub fn parse(operator: &str, operand: &Value) -> Result<TargetFilter, FilterError> {
        let mut nodes = 0;
        parse_node(operator, operand, 0, &mut nodes)
    }

    /// Parses a whole node object.
    pub fn parse_value(node: &Value) -> Result<TargetFilter, FilterError> {
        let (operator, operand) = split(node)?;
        Self::parse(operator, operand)
    }

    /// Whether `doc` matches.
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            TargetFilter::And(items) => items.iter().all(|c| c.matches(doc)),
            TargetFilter::Or(items) => items.iter().any(|c| c.matches(doc)),
            TargetFilter::Not(inner) => !inner.matches(doc),
            TargetFilter::Compare {
                op,
                path,
                value,
                folded,
            } => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                let mut found = Vec::new();
                values_at(doc, &path, &mut found);
                found.iter().any(|v| compare(*op, v, value, folded))
            }
        }
    }
}

fn split(node: &Value) -> Result<(&str, &Value), FilterError> {
    let bad = |m: &str| FilterError(m.to_string());
    let Value::Object(m) = node else {
        return Err(bad("a node is an object {operator, operand}"));
    };
    if let Some(extra) = m.keys().find(|k| *k != "operator" && *k != "operand") {
        return Err(FilterError(format!("unknown field {extra:?} in a node")));
    }
    let operator = m
        .get("operator")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a node needs a string operator"))?;
    let operand = m
        .get("operand")
        .ok_or_else(|| bad("a node needs an operand"))?;
    Ok((operator, operand))
}

fn parse_node(
    operator: &str,
    operand: &Value,
    depth: usize,
    nodes: &mut usize,
) -> Result<TargetFilter, FilterError> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(FilterError(format!("more than {MAX_NODES} nodes")));
    }
    if depth > MAX_DEPTH {
        return Err(FilterError(format!("nested more than {MAX_DEPTH} deep")));
    }
    let op = match operator {
        "AND" | "OR" => {
            let Some(items) = operand.as_array() else {
                return Err(FilterError("AND and OR take a list of nodes".into()));
            };
            if items.is_empty() || items.len() > MAX_OPERANDS {
                return Err(FilterError(format!(
                    "AND and OR take 1 to {MAX_OPERANDS} nodes"
                )));
            }
            let children = items
                .iter()
                .map(|item| {
                    let (o, v) = split(item)?;
                    parse_node(o, v, depth + 1, nodes)
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if operator == "AND" {
                TargetFilter::And(children)
            } else {
                TargetFilter::Or(children)
            });
        }
        "NOT" => {
            let (o, v) = split(operand)?;
            return Ok(TargetFilter::Not(Box::new(parse_node(
                o,
                v,
                depth + 1,
                nodes,
            )?)));
        }
        "EQUALS" => Comparison::Equals,
        "CONTAINS" => Comparison::Contains,
        "STARTS_WITH" => Comparison::StartsWith,
        "GTE" => Comparison::Gte,
        "LTE" => Comparison::Lte,
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(FilterError(format!("unknown operator {shown:?}")));
        }
    };
    let Value::Object(m) = operand else {
        return Err(FilterError(
            "a comparison's operand is {targetName, targetValue}".into(),
        ));
    };
    if let Some(extra) = m.keys().find(|k| *k != "targetName" && *k != "targetValue") {
        return Err(FilterError(format!(
            "unknown field {extra:?} in a comparison"
        )));
    }
    let name = m
        .get("targetName")
        .and_then(Value::as_str)
        .ok_or_else(|| FilterError("a comparison needs operand.targetName".into()))?;
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(FilterError(format!(
            "targetName is 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    let path: Vec<String> = name.split('.').map(String::from).collect();
    if path.len() > MAX_NAME_SEGMENTS {
        return Err(FilterError(format!(
            "targetName has at most {MAX_NAME_SEGMENTS} segments"
        )));
    }
    // A string, number, boolean or null: as documented; an object or an
    // array compares with nothing, so it is refused rather than ignored.
    let value = match m.get("targetValue") {
        Some(Value::Array(_) | Value::Object(_)) => {
            return Err(FilterError(
                "targetValue is a string, number, boolean or null".into(),
            ))
        }
        Some(v) => text(v),
        None => String::new(),
    };
    if value.len() > MAX_VALUE_BYTES {
        return Err(FilterError(format!(
            "targetValue is at most {MAX_VALUE_BYTES} bytes"
        )));
    }
    Ok(TargetFilter::Compare {
        op,
        path,
        folded: value.to_lowercase(),
        value,
    })
}

/// Every value at a dotted path (arrays are walked).
pub fn values_at<'a>(v: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match (v, path.split_first()) {
        (Value::Array(items), _) => items.iter().for_each(|i| values_at(i, path, out)),
        (_, None) => out.push(v),
        (Value::Object(m), Some((head, rest))) => {
            if let Some(next) = m.get(*head) {
                values_at(next, rest, out);
            }
        }
        _ => {}
    }
}

/// A value as the text comparisons see it.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compare(op: Comparison, v: &Value, want: &str, folded: &str) -> bool {
    let have = text(v);
    match op {
        Comparison::Equals => have == want,
        Comparison::Contains => have.to_lowercase().contains(folded),
        Comparison::StartsWith => have.to_lowercase().starts_with(folded),
        Comparison::Gte | Comparison::Lte => {
            let ord = match (v.as_f64(), want.parse::<f64>()) {
                (Some(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(have.as_str().cmp(want)),
            };
            match ord {
                Some(o) if op == Comparison::Gte => o != std::cmp::Ordering::Less,
                Some(o) => o != std::cmp::Ordering::Greater,
                None => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmp(op: &str, name: &str, value: &str) -> Value {
        json!({"operator": op, "operand": {"targetName": name, "targetValue": value}})
    }

    #[test]
    fn filters_match_by_dotted_paths_through_arrays() {
        let doc = json!({"user": {"username": "Ada"}, "decision": {"phases": [
            {"name": "Manager", "quorum": 1}, {"name": "Owners", "quorum": 2}]}});
        let f = TargetFilter::parse_value(&json!({"operator": "AND", "operand": [
            cmp("STARTS_WITH", "user.username", "ad"),
            cmp("EQUALS", "decision.phases.name", "Owners"),
            {"operator": "NOT", "operand": cmp("GTE", "decision.phases.quorum", "3")},
        ]}))
        .unwrap();
        assert!(f.matches(&doc));
        let f = TargetFilter::parse_value(&cmp("LTE", "decision.phases.quorum", "0")).unwrap();
        assert!(!f.matches(&doc));
    }

    #[test]
    fn a_target_value_is_a_scalar() {
        for ok in [json!("x"), json!(3), json!(true), json!(null)] {
            let f =
                json!({"operator": "EQUALS", "operand": {"targetName": "a", "targetValue": ok}});
            assert!(TargetFilter::parse_value(&f).is_ok(), "{f}");
        }
        for refused in [json!({"a": 1}), json!([1])] {
            let f = json!({"operator": "EQUALS", "operand": {"targetName": "a", "targetValue": refused}});
            assert!(TargetFilter::parse_value(&f).is_err(), "{f}");
        }
    }

    #[test]
    fn filters_are_bounded() {
        let wide =
            json!({"operator": "OR", "operand": vec![cmp("EQUALS", "a", "b"); MAX_OPERANDS + 1]});
        assert!(TargetFilter::parse_value(&wide).is_err());
        let mut deep = cmp("EQUALS", "a", "b");
        for _ in 0..=MAX_DEPTH {
            deep = json!({"operator": "NOT", "operand": deep});
        }
        assert!(TargetFilter::parse_value(&deep).is_err());
        // Many nodes, each AND within its width: refused by the node count.
        let and = json!({"operator": "AND", "operand": vec![cmp("EQUALS", "a", "b"); 30]});
        let many = json!({"operator": "AND", "operand": [and.clone(), and.clone(), and]});
        assert_eq!(
            TargetFilter::parse_value(&many).unwrap_err().0,
            format!("more than {MAX_NODES} nodes")
        );
        let long = cmp("EQUALS", "a", &"x".repeat(MAX_VALUE_BYTES + 1));
        assert!(TargetFilter::parse_value(&long).is_err());
        let unknown = json!({"operator": "XOR", "operand": []});
        assert!(TargetFilter::parse_value(&unknown).is_err());
    }
}
