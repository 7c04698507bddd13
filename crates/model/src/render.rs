//! Renderables: config values that are filled in from a build's properties when a step runs.
//!
//! `Property('x')`, `Interpolate('%(prop:x)s')`, `WithProperties('%(x)s')` and user
//! `@renderer` functions all become a [`Renderable`]. Rendering is pure apart from user
//! functions, which go through the [`RendererCall`] the caller supplies (the config crate
//! runs them with a tick limit).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::properties::{value_text, Properties};

/// A value from `master.cfg` that may depend on build properties.
#[derive(Debug, Clone, PartialEq)]
pub enum Renderable {
    /// A plain value, used as is.
    Value(Value),
    /// `Property(name, default=…)`: the property's value, or the default when unset.
    Property {
        /// Property name.
        name: String,
        /// Used when the property is unset.
        default: Option<Box<Renderable>>,
    },
    /// `Interpolate(format, *args, **kwargs)`.
    Interpolate {
        /// The format string with `%(prop:x)s`-style references.
        format: String,
        /// Positional arguments for plain `%s` references.
        args: Vec<Renderable>,
        /// Values for `%(kw:name)s`.
        kwargs: BTreeMap<String, Renderable>,
    },
    /// The old `WithProperties(format, *names, **lambdas)`.
    WithProperties {
        /// Format with `%(name)s` or `%s` references.
        format: String,
        /// Property names for positional `%s`.
        args: Vec<String>,
    },
    /// A list whose items may be renderable.
    List(Vec<Renderable>),
    /// A dict whose values may be renderable.
    Dict(Vec<(String, Renderable)>),
    /// A user function decorated with `@renderer`, identified by the config's function table.
    Function(u32),
}

/// A source stamp as `%(src:codebase:attr)s` sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStampView {
    /// Codebase name (empty for the default codebase).
    pub codebase: String,
    /// Branch, if any.
    pub branch: Option<String>,
    /// Revision, if any.
    pub revision: Option<String>,
    /// Repository URL.
    pub repository: String,
    /// Project name.
    pub project: String,
}

/// Runs user `@renderer` functions. The config crate implements it.
pub trait RendererCall {
    /// Calls function `id` with the build's properties and returns its value.
    fn call_renderer(&self, id: u32, properties: &Properties) -> Result<Value, RenderError>;
}

/// Everything a renderable may read.
pub struct RenderContext<'a> {
    /// The build's properties.
    pub properties: &'a Properties,
    /// The build's source stamps.
    pub sourcestamps: &'a [SourceStampView],
    /// Runs user functions; `None` makes them an error.
    pub functions: Option<&'a dyn RendererCall>,
}

/// Why a value could not be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    /// The format string is malformed.
    #[error("bad format {format:?}: {reason}")]
    BadFormat {
        /// The format string.
        format: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A user function failed or ran too long.
    #[error("renderer function failed: {0}")]
    Function(String),
}

impl Renderable {
    /// A plain string value.
    pub fn string(s: impl Into<String>) -> Renderable {
        Renderable::Value(Value::String(s.into()))
    }

    /// True when rendering cannot depend on properties.
    pub fn is_constant(&self) -> bool {
        match self {
            Renderable::Value(_) => true,
            Renderable::List(items) => items.iter().all(Renderable::is_constant),
            Renderable::Dict(items) => items.iter().all(|(_, v)| v.is_constant()),
            _ => false,
        }
    }

    /// Renders to a JSON value.
    pub fn render(&self, ctx: &RenderContext<'_>) -> Result<Value, RenderError> {
        match self {
            Renderable::Value(v) => Ok(v.clone()),
            Renderable::Property { name, default } => match ctx.properties.get(name) {
                Some(v) => Ok(v.clone()),
                None => match default {
                    Some(d) => d.render(ctx),
                    None => Ok(Value::Null),
                },
            },
            Renderable::Interpolate {
                format,
                args,
                kwargs,
            } => interpolate(format, args, kwargs, ctx).map(Value::String),
            Renderable::WithProperties { format, args } => {
                with_properties(format, args, ctx.properties).map(Value::String)
            }
            Renderable::List(items) => items
                .iter()
                .map(|i| i.render(ctx))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Renderable::Dict(items) => {
                let mut map = serde_json::Map::new();
                for (k, v) in items {
                    map.insert(k.clone(), v.render(ctx)?);
                }
                Ok(Value::Object(map))
            }
            Renderable::Function(id) => match ctx.functions {
                Some(f) => f.call_renderer(*id, ctx.properties),
                None => Err(RenderError::Function("no function runner available".into())),
            },
        }
    }

    /// Renders and shows the result as text (`None` becomes the empty string).
    pub fn render_text(&self, ctx: &RenderContext<'_>) -> Result<String, RenderError> {
        Ok(match self.render(ctx)? {
            Value::Null => String::new(),
            v => value_text(&v),
        })
    }
}

fn bad(format: &str, reason: &str) -> RenderError {
    RenderError::BadFormat {
        format: format.to_string(),
        reason: reason.to_string(),
    }
}

/// Expands `%(prop:x)s`, `%(src:cb:attr)s`, `%(kw:x)s`, `%(worker:x)s`, `%s` and `%%`.
fn interpolate(
    format: &str,
    args: &[Renderable],
    kwargs: &BTreeMap<String, Renderable>,
    ctx: &RenderContext<'_>,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(format.len());
    let mut rest = format;
    let mut next_arg = 0;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            out.push('%');
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('s') {
            let Some(arg) = args.get(next_arg) else {
                return Err(bad(format, "not enough arguments for format string"));
            };
            next_arg += 1;
            out.push_str(&arg.render_text(ctx)?);
            rest = r;
            continue;
        }
        let Some(r) = rest.strip_prefix('(') else {
            return Err(bad(format, "'%' must be followed by '(', 's' or '%'"));
        };
        let Some(close) = find_close_paren(r) else {
            return Err(bad(format, "unclosed '%('"));
        };
        let key = &r[..close];
        let after = &r[close + 1..];
        let Some(after) = after.strip_prefix('s') else {
            return Err(bad(format, "only %(...)s conversions are supported"));
        };
        out.push_str(&expand_key(format, key, kwargs, ctx)?);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// The `)` that closes a `%(` key, allowing parentheses nested inside defaults.
fn find_close_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// One `%(kind:name[:op...])s` reference.
fn expand_key(
    format: &str,
    key: &str,
    kwargs: &BTreeMap<String, Renderable>,
    ctx: &RenderContext<'_>,
) -> Result<String, RenderError> {
    let Some((kind, rest)) = key.split_once(':') else {
        return Err(bad(
            format,
            &format!("reference {key:?} has no 'prop:', 'src:' or 'kw:' prefix"),
        ));
    };
    match kind {
        "prop" | "worker" | "slave" => {
            let (name, op) = split_op(rest);
            let value = ctx
                .properties
                .get(name)
                .filter(|v| !v.is_null())
                .map(value_text);
            apply_op(format, value, op, kwargs, ctx)
        }
        "kw" => {
            let (name, op) = split_op(rest);
            let value = match kwargs.get(name) {
                Some(r) => Some(r.render_text(ctx)?),
                None => None,
            };
            apply_op(format, value, op, kwargs, ctx)
        }
        "src" => {
            let Some((codebase, rest)) = rest.split_once(':') else {
                return Err(bad(
                    format,
                    "src references look like %(src:codebase:attribute)s",
                ));
            };
            let (attr, op) = split_op(rest);
            let ss = ctx.sourcestamps.iter().find(|s| s.codebase == codebase);
            let value = ss.and_then(|ss| match attr {
                "branch" => ss.branch.clone(),
                "revision" => ss.revision.clone(),
                "repository" => Some(ss.repository.clone()),
                "project" => Some(ss.project.clone()),
                "codebase" => Some(ss.codebase.clone()),
                _ => None,
            });
            apply_op(format, value, op, kwargs, ctx)
        }
        other => Err(bad(format, &format!("unknown reference kind {other:?}"))),
    }
}

/// Splits `name:-default` into the name and the operator part (`-default`).
fn split_op(s: &str) -> (&str, Option<&str>) {
    match s.find(':') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Applies Buildbot's `:-`, `:~`, `:+` and `:?|a|b` operators.
fn apply_op(
    format: &str,
    value: Option<String>,
    op: Option<&str>,
    kwargs: &BTreeMap<String, Renderable>,
    ctx: &RenderContext<'_>,
) -> Result<String, RenderError> {
    let Some(op) = op else {
        return Ok(value.unwrap_or_default());
    };
    let nested = |text: &str| interpolate(text, &[], kwargs, ctx);
    let truthy = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|s| !s.is_empty() && s != "False" && s != "0")
    };
    if let Some(default) = op.strip_prefix('-') {
        return match value {
            Some(v) => Ok(v),
            None => nested(default),
        };
    }
    if let Some(default) = op.strip_prefix('~') {
        return if truthy(&value) {
            Ok(value.unwrap_or_default())
        } else {
            nested(default)
        };
    }
    if let Some(replacement) = op.strip_prefix('+') {
        return if value.is_some() {
            nested(replacement)
        } else {
            Ok(String::new())
        };
    }
    if let Some(alts) = op.strip_prefix('?').or_else(|| op.strip_prefix('#')) {
        let is_hash = op.starts_with('#');
        let mut parts = alts.splitn(3, '|');
        let _empty = parts.next();
        let (Some(yes), Some(no)) = (parts.next(), parts.next()) else {
            return Err(bad(format, "conditional must look like :?|true|false"));
        };
        let cond = if is_hash {
            value.is_some()
        } else {
            truthy(&value)
        };
        return nested(if cond { yes } else { no });
    }
    Err(bad(format, &format!("unknown operator {op:?}")))
}

/// The old `WithProperties`: `%(name)s` takes a property, `%s` the next named property.
fn with_properties(
    format: &str,
    args: &[String],
    props: &Properties,
) -> Result<String, RenderError> {
    let mut out = String::new();
    let mut rest = format;
    let mut next = 0;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            out.push('%');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('s') {
            let Some(name) = args.get(next) else {
                return Err(bad(format, "not enough property names for format string"));
            };
            next += 1;
            out.push_str(&props.get_text(name).unwrap_or_default());
            rest = r;
        } else if let Some(r) = rest.strip_prefix('(') {
            let Some(close) = r.find(")s") else {
                return Err(bad(format, "unclosed '%('"));
            };
            let key = &r[..close];
            let (name, op) = split_op(key);
            let value = props.get(name).filter(|v| !v.is_null()).map(value_text);
            let text = match op {
                Some(op) => apply_op(
                    format,
                    value,
                    Some(op),
                    &BTreeMap::new(),
                    &RenderContext {
                        properties: props,
                        sourcestamps: &[],
                        functions: None,
                    },
                )?,
                None => value.unwrap_or_default(),
            };
            out.push_str(&text);
            rest = &r[close + 2..];
        } else {
            return Err(bad(format, "'%' must be followed by '(', 's' or '%'"));
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(format: &str, expected: &str) {
        let mut props = Properties::new();
        props.set("branch", Value::String("main".into()), "test");
        props.set("num", serde_json::json!(3), "test");
        props.set("empty", Value::String(String::new()), "test");
        let ss = [SourceStampView {
            revision: Some("abc123".into()),
            ..Default::default()
        }];
        let mut kwargs = BTreeMap::new();
        kwargs.insert("who".to_string(), Renderable::string("alice"));
        let r = Renderable::Interpolate {
            format: format.into(),
            args: vec![],
            kwargs,
        };
        let ctx = RenderContext {
            properties: &props,
            sourcestamps: &ss,
            functions: None,
        };
        let got = match r.render_text(&ctx) {
            Ok(s) => s,
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "format {format:?}");
    }

    #[test]
    fn interpolate_forms() {
        check("b=%(prop:branch)s", "b=main");
        check("%(prop:missing)s|", "|");
        check("%(prop:missing:-dflt)s", "dflt");
        check("%(prop:branch:-dflt)s", "main");
        check("%(prop:empty:~dflt)s", "dflt");
        check("%(prop:branch:+yes)s/%(prop:missing:+yes)s", "yes/");
        check("%(prop:branch:?|T|F)s %(prop:missing:?|T|F)s", "T F");
        check("%(src::revision)s", "abc123");
        check("%(kw:who)s 100%%", "alice 100%");
        check("n=%(prop:num)s", "n=3");
        check("%(prop:missing:-%(prop:branch)s)s", "main");
        check("%(nope)s", "error: bad format \"%(nope)s\": reference \"nope\" has no 'prop:', 'src:' or 'kw:' prefix");
        check("%(prop:x", "error: bad format \"%(prop:x\": unclosed '%('");
    }

    #[test]
    fn with_properties_forms() {
        let mut props = Properties::new();
        props.set("a", Value::String("x".into()), "t");
        assert_eq!(
            with_properties("%(a)s-%s", &["a".into()], &props).unwrap(),
            "x-x"
        );
        assert_eq!(with_properties("%(b:-d)s", &[], &props).unwrap(), "d");
    }
}
