//! Running Starlark with limits, and turning its errors into one-line [`ConfigError`]s.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::syntax::Dialect;

use crate::error::ConfigError;

/// The Starlark dialect of `master.cfg`: `def`, `lambda`, top-level `for`/`if`, f-strings.
pub(crate) fn dialect() -> Dialect {
    Dialect { enable_f_strings: true, enable_types: starlark::syntax::DialectTypes::Disable, ..Dialect::Extended }
}

/// How much work one evaluation may do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Starlark checks the budget every 1000 instructions; this is the number of checks.
    pub(crate) checks: u64,
    /// Wall-clock limit.
    pub(crate) wall: Duration,
    /// Deepest call stack.
    pub(crate) max_stack: usize,
}

/// The budget for evaluating `master.cfg` itself.
pub(crate) const LOAD_BUDGET: Budget = Budget { checks: 20_000, wall: Duration::from_secs(5), max_stack: 200 };

/// The budget for one call of a user function at run time.
pub(crate) const CALL_BUDGET: Budget = Budget { checks: 10_000, wall: Duration::from_secs(2), max_stack: 200 };

/// Which limit, if any, stopped an evaluation.
#[derive(Default)]
pub(crate) struct Tripped(Cell<Option<&'static str>>);

/// Installs the budget on an evaluator; the returned flag says which limit stopped it.
pub(crate) fn limit(eval: &mut Evaluator<'_, '_, '_>, budget: Budget) -> Rc<Tripped> {
    let tripped = Rc::new(Tripped::default());
    // Setting the stack size fails only if it was set before; a fresh evaluator has none.
    let _ = eval.set_max_callstack_size(budget.max_stack);
    let flag = tripped.clone();
    let checks = Cell::new(0u64);
    let deadline = Instant::now() + budget.wall;
    eval.set_check_cancelled(Box::new(move || {
        checks.set(checks.get() + 1);
        if checks.get() > budget.checks {
            flag.0.set(Some("instruction limit reached"));
            return true;
        }
        if Instant::now() > deadline {
            flag.0.set(Some("deadline reached"));
            return true;
        }
        false
    }));
    tripped
}

/// A parse error as a [`ConfigError::Syntax`].
pub(crate) fn syntax_error(file: &str, err: starlark::Error) -> ConfigError {
    let (line, message) = describe(&err);
    ConfigError::Syntax { file: file.to_string(), line, message }
}

/// An evaluation error as a [`ConfigError`].
pub(crate) fn eval_error(file: &str, err: starlark::Error, tripped: &Tripped) -> ConfigError {
    let (line, message) = describe(&err);
    if let Some(reason) = tripped.0.get() {
        return ConfigError::Timeout { file: file.to_string(), line, message: reason.to_string() };
    }
    if message.contains("Starlark call stack overflow") || message.contains("stack overflow") {
        return ConfigError::Timeout { file: file.to_string(), line, message: "call stack too deep".to_string() };
    }
    ConfigError::Eval { file: file.to_string(), line, message }
}

/// The 1-based line and one-line message of a Starlark error.
fn describe(err: &starlark::Error) -> (u32, String) {
    let line = match err.span() {
        Some(span) => span.resolve_span().begin.line as u32 + 1,
        None => err
            .call_stack()
            .frames
            .iter()
            .rev()
            .find_map(|frame| frame.location.as_ref())
            .map(|span| span.resolve_span().begin.line as u32 + 1)
            .unwrap_or(0),
    };
    let text = err.without_diagnostic().to_string();
    let mut message = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    // Python words for Starlark's messages about unknown names.
    if let Some(name) = message.strip_prefix("Variable `").and_then(|rest| rest.split('`').next()) {
        if message.contains("not found") {
            message = format!("name '{name}' is not defined");
        }
    }
    (line, message)
}

/// Sets `__file__` for configs that compute paths from it.
pub(crate) fn predeclare(module: &Module<'_>, file: &str) {
    module.set("__file__", module.heap().alloc(file));
}
