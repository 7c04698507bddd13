//! Which builders a status target listens to: `builders` or `categories`, not both.

use crate::BuilderInfo;

/// A target's builder filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every builder.
    All,
    /// Builders with these names.
    Builders(Vec<String>),
    /// Builders in one of these categories (a builder's `category` or one of its tags).
    Categories(Vec<String>),
}

impl Filter {
    /// The filter for a target's `builders` and `categories` arguments.
    pub fn new(
        builders: Option<Vec<String>>,
        categories: Option<Vec<String>>,
    ) -> Result<Filter, String> {
        match (builders, categories) {
            (Some(_), Some(_)) => Err("use either builders or categories, not both".to_string()),
            (Some(b), None) => Ok(Filter::Builders(b)),
            (None, Some(c)) => Ok(Filter::Categories(c)),
            (None, None) => Ok(Filter::All),
        }
    }

    /// True if the target cares about builds of `builder`.
    pub fn matches(&self, builder: &BuilderInfo) -> bool {
        match self {
            Filter::All => true,
            Filter::Builders(names) => names.contains(&builder.name),
            Filter::Categories(categories) => {
                builder.categories.iter().any(|c| categories.contains(c))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        builders: Option<&[&str]>,
        categories: Option<&[&str]>,
        builder: &str,
        tags: &[&str],
    ) -> String {
        let list = |l: Option<&[&str]>| l.map(|l| l.iter().map(|s| s.to_string()).collect());
        let filter = match Filter::new(list(builders), list(categories)) {
            Ok(f) => f,
            Err(e) => return format!("error: {e}"),
        };
        let info = BuilderInfo {
            name: builder.to_string(),
            categories: tags.iter().map(|s| s.to_string()).collect(),
        };
        filter.matches(&info).to_string()
    }

    #[test]
    fn builders_or_categories() {
        assert_eq!(check(None, None, "a", &[]), "true");
        assert_eq!(check(Some(&["a"]), None, "a", &[]), "true");
        assert_eq!(check(Some(&["a"]), None, "b", &[]), "false");
        assert_eq!(check(None, Some(&["release"]), "b", &["release"]), "true");
        assert_eq!(check(None, Some(&["release"]), "b", &["nightly"]), "false");
        assert_eq!(
            check(Some(&["a"]), Some(&["release"]), "a", &[]),
            "error: use either builders or categories, not both"
        );
    }
}
