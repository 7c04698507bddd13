//! Query arguments as the seed uses them: repeated names (`builder=a&builder=b`), flags
//! (`failures_only=true`), numbers with caps.

/// The decoded query string of a request.
#[derive(Debug, Default, Clone)]
pub(crate) struct Args(Vec<(String, String)>);

impl Args {
    /// Parses a raw query string.
    pub(crate) fn parse(raw: Option<&str>) -> Args {
        Args(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Every non-empty value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The last value of `name`.
    pub(crate) fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` as an integer in `1..=max`, else `default`.
    pub(crate) fn count(&self, name: &str, default: i64, max: i64) -> i64 {
        self.one(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|n| *n > 0)
            .map(|n| n.min(max))
            .unwrap_or(default)
    }

    /// `name` as an integer, if present and valid.
    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        self.one(name).and_then(|v| v.trim().parse::<i64>().ok())
    }

    /// A boolean flag: `true`, `1`, `yes`, `on` are true; absent is `default`.
    pub(crate) fn flag(&self, name: &str, default: bool) -> bool {
        match self.one(name) {
            None => default,
            Some(v) => matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"),
        }
    }

    /// `(X, value)` for every `property.X=value`.
    pub(crate) fn properties(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("property.")
                    .filter(|name| !name.is_empty())
                    .map(|name| (name.to_string(), v.clone()))
            })
            .collect()
    }

    /// The pairs, for re-encoding into links.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Encodes `pairs` as a query string.
pub(crate) fn encode(pairs: &[(String, String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}
