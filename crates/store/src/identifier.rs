//! Buildbot identifiers: slugs of at most 50 characters, made unique with `_2`, `_3`….

/// Longest identifier Buildbot stores (step names, log slugs, project slugs).
pub(crate) const MAX_LEN: usize = 50;

/// `name` turned into an identifier: characters other than letters, digits, `_` and `-`
/// become `_`, a leading digit gets a `_` in front, and the result is cut to `MAX_LEN`.
pub(crate) fn force(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    truncate(&out, MAX_LEN)
}

/// The `n`th candidate for a unique name: `base` itself for 1, then `base_2`, `base_3`…,
/// cutting `base` so the whole stays within `max` characters.
pub(crate) fn numbered(base: &str, n: usize, max: usize) -> String {
    if n <= 1 {
        return truncate(base, max);
    }
    let suffix = format!("_{n}");
    let keep = max.saturating_sub(suffix.chars().count());
    format!("{}{suffix}", truncate(base, keep))
}

/// The first `max` characters of `s`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The first candidate of `base`, `base_2`, … that `taken` does not contain.
pub(crate) fn first_free(base: &str, max: usize, taken: &[String]) -> String {
    (1..)
        .map(|n| numbered(base, n, max))
        .find(|candidate| !taken.iter().any(|t| t == candidate))
        .expect("an infinite sequence of distinct names has a free one")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(force("stdio"), "stdio");
        assert_eq!(force("make all (x)"), "make_all__x_");
        assert_eq!(force("1st"), "_1st");
        assert_eq!(first_free("a", 50, &["a".into(), "a_2".into()]), "a_3");
        assert_eq!(numbered(&"x".repeat(60), 2, 50).len(), 50);
    }
}
