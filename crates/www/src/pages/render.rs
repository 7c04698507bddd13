//! The template environment: embedded templates, overridden by files of the same name in the
//! master's `templates/` directory and then in the `jinja_loaders` directories
//! (`WebStatus(jinja_loaders=[FileSystemLoader(path)])`), all re-read when they change,
//! appear or go, and when a reconfig changes the directories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, TemplateSource, Value};
use rust_embed::RustEmbed;
use serde_json::{json, Value as Json};

use crate::{AppState, WebError};

/// The built-in templates.
#[derive(RustEmbed)]
#[folder = "templates/"]
struct Templates;

/// Per master directory: the template environment and the CSRF secret.
pub(crate) struct Pages {
    env: Environment<'static>,
    /// Where overrides are looked for, in order: `templates/`, then `jinja_loaders`.
    dirs: Arc<RwLock<Vec<PathBuf>>>,
    /// Random per process; signs CSRF tokens.
    pub(crate) secret: [u8; 32],
}

impl Pages {
    /// The pages of the master whose directory is `basedir` (one per process and directory).
    pub(crate) fn of(state: &AppState) -> Arc<Pages> {
        static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<Pages>>>> = OnceLock::new();
        let registry = REGISTRY.get_or_init(Default::default);
        let mut map = registry.lock().expect("pages registry lock poisoned");
        map.entry(state.shared.basedir.clone())
            .or_insert_with(|| Arc::new(Pages::new(&state.shared.basedir.join("templates"))))
            .clone()
    }

    fn new(overrides: &Path) -> Pages {
        let mut env = Environment::new();
        let dirs = Arc::new(RwLock::new(vec![overrides.to_path_buf()]));
        let loader_dirs = dirs.clone();
        env.set_loader(move |name| load(&loader_dirs, name));
        env.set_auto_reload(true);
        env.add_filter("duration", duration_filter);
        env.add_filter("time", time_filter);
        Pages {
            env,
            dirs,
            secret: random_secret(),
        }
    }

    /// Renders template `name` with `context` plus the site-wide values (`site`).
    pub(crate) fn render_string(
        &self,
        state: &AppState,
        name: &str,
        mut context: Json,
    ) -> Result<String, WebError> {
        super::require_view(state)?;
        self.follow_config(state);
        if let Json::Object(map) = &mut context {
            map.insert("site".to_string(), site(state));
        }
        let template = self
            .env
            .get_template(name)
            .map_err(|e| WebError::Internal(format!("template {name}: {e:#}")))?;
        template
            .render(config::template_value(&context))
            .map_err(|e| WebError::Internal(format!("rendering {name}: {e:#}")))
    }

    /// Points the loader at the directories of the config in force: `templates/`, then
    /// each `jinja_loaders` entry (relative paths are under the master directory).
    fn follow_config(&self, state: &AppState) {
        let basedir = &state.shared.basedir;
        let runtime = state.shared.runtime();
        let mut wanted = vec![basedir.join("templates")];
        if let Some(Json::Array(loaders)) = runtime.config.www.options.get("jinja_loaders") {
            wanted.extend(
                loaders
                    .iter()
                    .flat_map(loader_paths)
                    .map(|p| basedir.join(p)),
            );
        }
        let same = self
            .dirs
            .read()
            .map(|dirs| *dirs == wanted)
            .unwrap_or(false);
        if !same {
            if let Ok(mut dirs) = self.dirs.write() {
                *dirs = wanted;
            }
        }
    }

    /// Renders a page.
    pub(crate) fn page(
        &self,
        state: &AppState,
        name: &str,
        context: Json,
    ) -> Result<Response, WebError> {
        let html = self.render_string(state, name, context)?;
        Ok(([(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response())
    }
}

/// Values every template sees as `site`.
fn site(state: &AppState) -> Json {
    let runtime = state.shared.runtime();
    json!({
        "title": runtime.config.title,
        "title_url": runtime.config.title_url,
        "version": env!("CARGO_PKG_VERSION"),
        "auth": super::actions::site_auth(state),
    })
}

/// The directories of one `jinja_loaders` entry: `FileSystemLoader(path)`,
/// `FileSystemLoader([paths])`, `FileSystemLoader(searchpath=…)` or a plain path.
fn loader_paths(loader: &Json) -> Vec<String> {
    let strings = |v: &Json| -> Vec<String> {
        match v {
            Json::String(s) => vec![s.clone()],
            Json::Array(items) => items
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    };
    match loader {
        Json::String(path) => vec![path.clone()],
        Json::Object(obj)
            if obj.get("class").and_then(Json::as_str) == Some("FileSystemLoader") =>
        {
            match (obj.get("args").and_then(|a| a.get(0)), obj.get("kwargs")) {
                (Some(first), _) => strings(first),
                (None, Some(kwargs)) => kwargs.get("searchpath").map(strings).unwrap_or_default(),
                (None, None) => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The first file `DIR/NAME` among `dirs`, with its modification time.
fn find(dirs: &[PathBuf], name: &str) -> Option<(PathBuf, SystemTime)> {
    dirs.iter().find_map(|dir| {
        let path = dir.join(name);
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        Some((path, modified))
    })
}

/// A template from the first override directory that has it, else the embedded one. Each
/// carries an up-to-date check, so an edited, added or removed override, or a changed list
/// of directories, is picked up on next use.
fn load(
    dirs: &Arc<RwLock<Vec<PathBuf>>>,
    name: &str,
) -> Result<Option<TemplateSource>, minijinja::Error> {
    if name.split('/').any(|part| part == ".." || part.is_empty()) {
        return Ok(None);
    }
    let current = dirs.read().map(|d| d.clone()).unwrap_or_default();
    let found = find(&current, name);
    let check = {
        let (dirs, name, found) = (dirs.clone(), name.to_string(), found.clone());
        move || dirs.read().is_ok_and(|d| find(&d, &name) == found)
    };
    if let Some((path, _)) = &found {
        let source = std::fs::read_to_string(path).map_err(|e| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("reading {}: {e}", path.display()),
            )
        })?;
        return Ok(Some(TemplateSource::new(source).with_uptodate_check(check)));
    }
    let Some(file) = Templates::get(name) else {
        return Ok(None);
    };
    let source = String::from_utf8_lossy(&file.data).into_owned();
    Ok(Some(TemplateSource::new(source).with_uptodate_check(check)))
}

fn duration_filter(value: Value) -> String {
    match i64::try_from(value) {
        Ok(seconds) => super::view::duration(seconds),
        Err(_) => String::new(),
    }
}

fn time_filter(value: Value) -> String {
    match i64::try_from(value) {
        Ok(ts) => super::view::time(ts),
        Err(_) => String::new(),
    }
}

/// 32 bytes from the kernel's generator; a clock-and-address mix if that is unreadable.
fn random_secret() -> [u8; 32] {
    use sha2::Digest;
    let mut secret = [0u8; 32];
    if let Ok(mut file) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        if file.read_exact(&mut secret).is_ok() {
            return secret;
        }
    }
    let seed = format!("{:?}{:p}{}", SystemTime::now(), &secret, std::process::id());
    secret.copy_from_slice(&sha2::Sha256::digest(seed.as_bytes()));
    secret
}
