//! Rules for text fields, shared by every aggregate: what counts as blank,
//! and lengths in characters (what the OpenAPI document's `maxLength`
//! counts), never bytes.

/// Whether `s` has nothing but whitespace, by the widest common definition
/// (Unicode `White_Space`, the byte-order mark, and the information
/// separators U+001C to U+001F that some regex engines count as space), so
/// that a name the OpenAPI `pattern` accepts is never refused here and the
/// other way round.
pub fn is_blank(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_whitespace() || c == '\u{feff}' || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// The length of `s` in characters.
pub fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to at most `max` characters.
pub fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_whitespace_of_every_kind_and_nothing_else() {
        for blank in ["", " ", "\t\n", "\u{85}", "\u{feff}", "\u{1f}\u{3000}"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for text in ["a", " a ", "\u{1}", "_"] {
            assert!(!is_blank(text), "{text:?}");
        }
        assert_eq!(chars("é"), 1);
    }
}
