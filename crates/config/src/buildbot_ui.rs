//! `c['www']['buildbot_ui']`: the options of Buildbot's own web UI, checked by shape only.
//!
//! Finding the installed `buildbot-www` means running Python or reading a directory, which
//! loading must not do; the www crate does it at start-up and in `checkconfig`.

use crate::collect::Py;
use crate::types::BuildbotUiConfig;

const HOW: &str =
    "write c['www']['buildbot_ui'] = {'path': '/ui/'} (keys: path, static_dir, python)";

/// Reads the option: `None`/`False` is off, `True` is on at `/ui/`, a dict sets the keys.
pub(crate) fn parse(value: &Py) -> Result<Option<BuildbotUiConfig>, String> {
    let mut ui = BuildbotUiConfig {
        path: "/ui/".to_string(),
        static_dir: None,
        python: "python3".to_string(),
    };
    let entries = match value {
        Py::None | Py::Bool(false) => return Ok(None),
        Py::Bool(true) => return Ok(Some(ui)),
        Py::Dict(entries) => entries,
        other => {
            return Err(format!(
                "c['www']['buildbot_ui'] must be a dict, got {}; {HOW}",
                other.type_name()
            ))
        }
    };
    for (key, value) in entries {
        let Py::Str(key) = key else {
            return Err(format!(
                "c['www']['buildbot_ui'] keys must be strings; {HOW}"
            ));
        };
        match (key.as_str(), value) {
            ("path", Py::Str(path)) => ui.path = checked_path(path)?,
            ("static_dir", Py::None) => ui.static_dir = None,
            ("static_dir", Py::Str(dir)) if !dir.is_empty() => ui.static_dir = Some(dir.clone()),
            ("python", Py::Str(python)) if !python.is_empty() => ui.python = python.clone(),
            ("path" | "static_dir" | "python", other) => {
                return Err(format!(
                    "c['www']['buildbot_ui']['{key}'] must be a non-empty string, got {}",
                    other.type_name()
                ))
            }
            (other, _) => {
                return Err(format!(
                    "c['www']['buildbot_ui'] has no key '{other}'; {HOW}"
                ))
            }
        }
    }
    Ok(Some(ui))
}

/// A base path the router can nest at: `/a/b/`, plain segments only, never the root (the
/// status pages live there). A missing trailing slash is added, as for `buildbotURL`.
fn checked_path(path: &str) -> Result<String, String> {
    let mut path = path.to_string();
    if !path.ends_with('/') {
        path.push('/');
    }
    let inner = path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix('/'))
        .unwrap_or("");
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
    };
    if !path.starts_with('/') || inner.is_empty() || !inner.split('/').all(plain) {
        return Err(format!(
            "c['www']['buildbot_ui']['path'] must be a path below the root such as '/ui/' \
             (letters, digits, '-', '_', '.', '~' between slashes), got {path:?}"
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: &[(&str, Py)]) -> Py {
        Py::Dict(
            pairs
                .iter()
                .map(|(k, v)| (Py::Str(k.to_string()), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn paths() {
        assert_eq!(checked_path("/ui/"), Ok("/ui/".to_string()));
        assert_eq!(checked_path("/ci/ui"), Ok("/ci/ui/".to_string()));
        for bad in ["/", "", "ui/", "/../x/", "/a//b/", "/a b/", "/%2e%2e/"] {
            assert!(checked_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn values() {
        assert_eq!(parse(&Py::None), Ok(None));
        assert_eq!(parse(&Py::Bool(false)), Ok(None));
        let on = parse(&Py::Bool(true)).expect("True").expect("on");
        assert_eq!((on.path.as_str(), on.python.as_str()), ("/ui/", "python3"));
        let ui = parse(&dict(&[
            ("path", Py::Str("/bb".into())),
            ("static_dir", Py::Str("www/static".into())),
        ]))
        .expect("dict")
        .expect("on");
        assert_eq!(ui.path, "/bb/");
        assert_eq!(ui.static_dir.as_deref(), Some("www/static"));
        let err = parse(&dict(&[("pth", Py::Str("/x/".into()))])).expect_err("typo");
        assert!(err.contains("no key 'pth'"), "{err}");
        assert!(parse(&dict(&[("path", Py::Int(3))])).is_err());
        assert!(parse(&Py::Str("/ui/".into())).is_err());
    }
}
