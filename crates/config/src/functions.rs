//! [`FunctionHost`]: runs functions defined in `master.cfg` after loading, with limits.

use std::sync::Arc;

use model::{Properties, RenderError, RendererCall};
use serde_json::Value as Json;
use starlark::codemap::FileSpanRef;
use starlark::environment::{FrozenModule, Module};
use starlark::eval::{BeforeStmtFunc, Evaluator};
use starlark::values::list::ListRef;
use starlark::values::tuple::AllocTuple;
use starlark::values::{Heap, OwnedFrozenValue, Value};

use crate::error::ConfigError;
use crate::eval::{catch, eval_error, limit, Guard, CALL_BUDGET};
use crate::status_objects::{
    chosen_build, BuildStatus, BuildValue, ChosenBuild, MasterStatus, MasterStatusValue,
};
use crate::types::FunctionRef;
use crate::values::{json_to_value, Props};

/// Calls the user functions of a loaded config (`FunctionRef`s in [`crate::MasterConfig`]).
///
/// Each call gets a fresh Starlark heap, an instruction budget and a 2 s deadline, so a
/// function that loops forever ends with [`ConfigError::Timeout`].
#[derive(Clone)]
pub struct FunctionHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    file: String,
    /// The frozen module keeps the functions' globals alive.
    _module: Option<FrozenModule>,
    /// A frozen list of the functions, indexed by `FunctionRef`.
    functions: Option<OwnedFrozenValue>,
    /// The functions' names, for messages.
    names: Vec<String>,
    /// The line of each function's `def` (0 for lambdas), for errors without a position.
    lines: Vec<u32>,
}

impl std::fmt::Debug for FunctionHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionHost")
            .field("file", &self.inner.file)
            .field("functions", &self.inner.names)
            .finish()
    }
}

impl FunctionHost {
    /// A host over the frozen module and its function list.
    pub(crate) fn new(
        file: &str,
        module: Option<FrozenModule>,
        functions: Option<OwnedFrozenValue>,
        names: Vec<String>,
        lines: Vec<u32>,
    ) -> FunctionHost {
        FunctionHost {
            inner: Arc::new(HostInner {
                file: file.to_string(),
                _module: module,
                functions,
                names,
                lines,
            }),
        }
    }

    /// A host with no functions (for configs built in code).
    pub fn empty() -> FunctionHost {
        FunctionHost::new("master.cfg", None, None, Vec::new(), Vec::new())
    }

    /// Number of functions the config refers to.
    pub fn len(&self) -> usize {
        self.inner.names.len()
    }

    /// True when the config refers to no function.
    pub fn is_empty(&self) -> bool {
        self.inner.names.is_empty()
    }

    /// The name of a function, as `def` gave it (`lambda` for lambdas).
    pub fn name(&self, f: FunctionRef) -> Option<&str> {
        self.inner.names.get(f.0 as usize).map(String::as_str)
    }

    /// Calls `f` with positional JSON arguments (objects become dicts) and returns its result
    /// as JSON (tuples become arrays).
    pub fn call(&self, f: FunctionRef, args: &[Json]) -> Result<Json, ConfigError> {
        self.call_with(f, |heap| {
            args.iter().map(|a| json_to_value(a, heap)).collect()
        })
    }

    /// Calls a `messageFormatter(mode, name, build, results, master_status)` with the seed's
    /// status objects; returns its dict as JSON (`body`, `type`, optional `subject`).
    pub fn call_message_formatter(
        &self,
        f: FunctionRef,
        mode: &[String],
        name: &str,
        build: &Arc<BuildStatus>,
        master: &MasterStatus,
    ) -> Result<Json, ConfigError> {
        let results = Json::from(build.results.unwrap_or(-1));
        self.call_with(f, |heap| {
            let mode: Vec<Value<'_>> = mode.iter().map(|m| heap.alloc(m.as_str())).collect();
            vec![
                heap.alloc(AllocTuple(mode)),
                heap.alloc(name),
                heap.alloc(BuildValue {
                    build: build.clone(),
                }),
                json_to_value(&results, heap),
                heap.alloc(MasterStatusValue {
                    master: master.clone(),
                }),
            ]
        })
    }

    /// Calls a `previousBuildGetter(build)`; returns the build it chose, or `None`.
    pub fn call_previous_build_getter(
        &self,
        f: FunctionRef,
        build: &Arc<BuildStatus>,
    ) -> Result<Option<ChosenBuild>, ConfigError> {
        self.call_extract(
            f,
            |heap| {
                vec![heap.alloc(BuildValue {
                    build: build.clone(),
                })]
            },
            chosen_build,
        )
    }

    /// Calls `f` with arguments built on the call's heap.
    fn call_with(
        &self,
        f: FunctionRef,
        make_args: impl for<'v> FnOnce(Heap<'v>) -> Vec<Value<'v>>,
    ) -> Result<Json, ConfigError> {
        let name = self.name(f).unwrap_or("function").to_string();
        self.call_extract(f, make_args, move |result| {
            result
                .to_json_value()
                .map_err(|e| format!("{name} returned a value that is not plain data: {e}"))
        })
    }

    /// Calls `f` with arguments built on the call's heap and reads its result with `extract`.
    fn call_extract<T>(
        &self,
        f: FunctionRef,
        make_args: impl for<'v> FnOnce(Heap<'v>) -> Vec<Value<'v>>,
        extract: impl for<'v> FnOnce(Value<'v>) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let file = self.inner.file.as_str();
        let failure = |message: String| ConfigError::Eval {
            file: file.to_string(),
            line: 0,
            message,
        };
        let Some(functions) = &self.inner.functions else {
            return Err(failure(format!("no function {}", f.0)));
        };
        catch(file, || {
            Module::with_temp_heap(|module| {
                module.frozen_heap().add_reference(functions.owner());
                let list = functions.value();
                let Some(function) = ListRef::from_value(list)
                    .and_then(|l| l.content().get(f.0 as usize).copied())
                    .and_then(|v| v.unpack_frozen())
                else {
                    return Err(failure(format!("no function {}", f.0)));
                };
                let guard = Guard::default();
                let hook =
                    |span: FileSpanRef, _: bool, _: &mut Evaluator<'_, '_, '_>| guard.enter(span);
                let mut eval = Evaluator::new(&module);
                eval.before_stmt_for_dap(BeforeStmtFunc::Fn(&hook));
                limit(&mut eval, module.heap(), CALL_BUDGET, &guard);
                let args = make_args(module.heap());
                let result = eval
                    .eval_function(function.to_value(), &args, &[])
                    .map_err(|e| {
                        let def_line = self.inner.lines.get(f.0 as usize).copied().unwrap_or(0);
                        eval_error(file, e, &guard).or_line(def_line)
                    })?;
                extract(result).map_err(failure)
            })
        })
    }
}

impl RendererCall for FunctionHost {
    fn call_renderer(&self, id: u32, properties: &Properties) -> Result<Json, RenderError> {
        let values: serde_json::Map<String, Json> = properties
            .iter()
            .map(|(k, v, _)| (k.to_string(), v.clone()))
            .collect();
        self.call_with(FunctionRef(id), move |heap| {
            vec![heap.alloc(Props { values })]
        })
        .map_err(|e| RenderError::Function(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_send_sync_clone() {
        fn assert<T: Send + Sync + Clone>() {}
        assert::<FunctionHost>();
    }
}
