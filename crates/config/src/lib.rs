//! master.cfg loading: a preprocessor, Starlark evaluation with Buildbot's names predeclared,
//! and a typed [`MasterConfig`].
//!
//! ```no_run
//! let loaded = config::load(std::path::Path::new("master/master.cfg"))?;
//! println!("{} builders", loaded.config.builders.len());
//! # Ok::<(), config::ConfigError>(())
//! ```
//!
//! Loading is pure apart from reading `master.cfg` and checking that the files it names
//! (htpasswd, `changehook.passwd`) exist, and reading the template files of a
//! `MessageFormatter` (so their syntax errors are found by `checkconfig`). User functions stay in a frozen Starlark module
//! inside [`FunctionHost`], which calls them later with limits.
#![warn(missing_docs)]

mod args;
mod buildbot_ui;
mod collect;
mod convert;
mod error;
mod eval;
mod functions;
mod message_formatter;
mod preprocess;
pub mod status_objects;
mod types;
mod values;

use std::path::Path;

use starlark::codemap::FileSpanRef;
use starlark::environment::Module;
use starlark::eval::{BeforeStmtFunc, Evaluator};
use starlark::syntax::AstModule;
use starlark::values::list::AllocList;

pub use error::ConfigError;
pub use functions::FunctionHost;
pub use message_formatter::template_value;
pub use types::*;

/// A loaded configuration and the host of its user functions.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The typed configuration.
    pub config: MasterConfig,
    /// Runs the functions that `config` refers to by [`FunctionRef`].
    pub functions: FunctionHost,
}

/// Reads, preprocesses, evaluates, converts and validates `master.cfg`; files it names are
/// relative to the file's directory.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let source = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: path.display().to_string(),
        line: 0,
        message: e.to_string(),
    })?;
    let basedir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    load_str(&file_name, &source, basedir)
}

/// Like [`load`], for a config held in memory; `basedir` is the master directory.
pub fn load_str(
    file_name: &str,
    source: &str,
    basedir: &Path,
) -> Result<LoadedConfig, ConfigError> {
    let text = preprocess::preprocess(file_name, source)?;
    let ast = AstModule::parse(file_name, text, &eval::dialect())
        .map_err(|e| eval::syntax_error(file_name, e))?;
    let globals = values::globals();
    let (py, frozen, names) = eval::catch(file_name, || {
        Module::with_temp_heap(|module| {
            eval::predeclare(&module, file_name);
            {
                let guard = eval::Guard::default();
                let hook =
                    |span: FileSpanRef, _: bool, _: &mut Evaluator<'_, '_, '_>| guard.enter(span);
                let mut evaluator = Evaluator::new(&module);
                evaluator.before_stmt_for_dap(BeforeStmtFunc::Fn(&hook));
                eval::limit(&mut evaluator, module.heap(), eval::LOAD_BUDGET, &guard);
                evaluator
                    .eval_module(ast, globals)
                    .map_err(|e| eval::eval_error(file_name, e, &guard))?;
            }
            let config = ["BuildmasterConfig", "c"]
                .iter()
                .filter_map(|name| module.get(name))
                .find(|v| values::is_dict(*v))
                .ok_or_else(|| ConfigError::Invalid {
                    file: file_name.to_string(),
                    line: 1,
                    message: "the config does not define the dict BuildmasterConfig".to_string(),
                })?;
            let mut collector = collect::Collector::new();
            let py = collector
                .py(config)
                .map_err(|message| ConfigError::Invalid {
                    file: file_name.to_string(),
                    line: 1,
                    message,
                })?;
            module.set_extra_value(module.heap().alloc(AllocList(collector.functions)));
            let frozen = module.freeze().map_err(|e| ConfigError::Eval {
                file: file_name.to_string(),
                line: 0,
                message: format!("cannot freeze the config: {e:?}"),
            })?;
            Ok::<_, ConfigError>((py, frozen, collector.names))
        })
    })?;
    let functions_list = frozen.owned_extra_value();
    let converter = convert::Converter {
        file: file_name,
        basedir,
        source,
    };
    let config = converter.master_config(&py)?;
    let lines = names.iter().map(|name| def_line(source, name)).collect();
    let functions = FunctionHost::new(file_name, Some(frozen), functions_list, names, lines);
    Ok(LoadedConfig { config, functions })
}

/// The 1-based line of `def name(` in the source, or 0.
fn def_line(source: &str, name: &str) -> u32 {
    let needle = format!("def {name}(");
    source
        .lines()
        .position(|l| l.trim_start().starts_with(&needle))
        .map(|i| i as u32 + 1)
        .unwrap_or(0)
}
