//! Copies the evaluated config out of the Starlark heap into plain Rust data ([`Py`]),
//! numbering the user functions it meets.

use std::rc::Rc;

use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::tuple::TupleRef;
use starlark::values::Value;

use crate::values::{Builtin, ConfigObject};

/// A value of `master.cfg`, out of the Starlark heap.
#[derive(Debug, Clone)]
pub(crate) enum Py {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Py>),
    /// A tuple.
    Tuple(Vec<Py>),
    /// A dict, in insertion order.
    Dict(Vec<(Py, Py)>),
    /// A call of a Buildbot class.
    Obj(Rc<Obj>),
    /// A user function, numbered.
    Func(u32),
    /// A Buildbot class or marker that was not called (`split_file_branches`).
    Builtin(String),
    /// The `...` placeholder of documentation snippets.
    Ellipsis,
    /// Anything else, by type name.
    Other(String),
}

/// A recorded call of a Buildbot class.
#[derive(Debug)]
pub(crate) struct Obj {
    /// Class name as called (`ShellCommand`).
    pub(crate) class: String,
    /// 1-based line of the call.
    pub(crate) line: u32,
    /// Positional arguments.
    pub(crate) args: Vec<Py>,
    /// Keyword arguments, in call order.
    pub(crate) kwargs: Vec<(String, Py)>,
    /// Steps added with `addStep`.
    pub(crate) steps: Vec<Py>,
}

impl Py {
    /// The type name used in messages (`string`, `int`, `list`, `MailNotifier`, …).
    pub(crate) fn type_name(&self) -> String {
        match self {
            Py::None => "None".to_string(),
            Py::Bool(_) => "bool".to_string(),
            Py::Int(_) => "int".to_string(),
            Py::Float(_) => "float".to_string(),
            Py::Str(_) => "string".to_string(),
            Py::List(_) => "list".to_string(),
            Py::Tuple(_) => "tuple".to_string(),
            Py::Dict(_) => "dict".to_string(),
            Py::Obj(obj) => obj.class.clone(),
            Py::Func(_) => "function".to_string(),
            Py::Builtin(name) => name.clone(),
            Py::Ellipsis => "Ellipsis".to_string(),
            Py::Other(name) => name.clone(),
        }
    }
}

/// Walks Starlark values, collecting the functions it finds.
pub(crate) struct Collector<'v> {
    /// Functions in `FunctionRef` order.
    pub(crate) functions: Vec<Value<'v>>,
    /// Their names.
    pub(crate) names: Vec<String>,
}

/// Deepest nesting accepted (guards against self-containing lists).
const MAX_DEPTH: usize = 64;

impl<'v> Collector<'v> {
    /// An empty collector.
    pub(crate) fn new() -> Collector<'v> {
        Collector {
            functions: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Copies `value` out of the heap; `Err` holds a message for a value nested too deep.
    pub(crate) fn py(&mut self, value: Value<'v>) -> Result<Py, String> {
        self.py_at(value, 0)
    }

    fn py_at(&mut self, value: Value<'v>, depth: usize) -> Result<Py, String> {
        if depth > MAX_DEPTH {
            return Err(
                "config values are nested too deeply (a list that contains itself?)".to_string(),
            );
        }
        if value.is_none() {
            return Ok(Py::None);
        }
        if let Some(b) = value.unpack_bool() {
            return Ok(Py::Bool(b));
        }
        if let Some(s) = value.unpack_str() {
            return Ok(Py::Str(s.to_string()));
        }
        match value.get_type() {
            "int" => {
                return Ok(match value.unpack_i32() {
                    Some(i) => Py::Int(i64::from(i)),
                    None => match value.to_json_value().ok().and_then(|j| j.as_i64()) {
                        Some(i) => Py::Int(i),
                        None => Py::Other("big int".to_string()),
                    },
                });
            }
            "float" => {
                return Ok(match value.to_json_value().ok().and_then(|j| j.as_f64()) {
                    Some(f) => Py::Float(f),
                    None => Py::Other("float".to_string()),
                });
            }
            _ => {}
        }
        if let Some(list) = ListRef::from_value(value) {
            let items = list
                .iter()
                .map(|v| self.py_at(v, depth + 1))
                .collect::<Result<_, _>>()?;
            return Ok(Py::List(items));
        }
        if let Some(tuple) = TupleRef::from_value(value) {
            let items = tuple
                .iter()
                .map(|v| self.py_at(v, depth + 1))
                .collect::<Result<_, _>>()?;
            return Ok(Py::Tuple(items));
        }
        if let Some(dict) = DictRef::from_value(value) {
            let pairs: Vec<(Value<'v>, Value<'v>)> = dict.iter().collect();
            let mut entries = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                entries.push((self.py_at(k, depth + 1)?, self.py_at(v, depth + 1)?));
            }
            return Ok(Py::Dict(entries));
        }
        if let Some(object) = ConfigObject::from_value(value) {
            let args = match self.py_at(object.args, depth + 1)? {
                Py::Tuple(items) => items,
                _ => Vec::new(),
            };
            let kwargs = match self.py_at(object.kwargs, depth + 1)? {
                Py::Dict(entries) => entries
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        Py::Str(k) => Some((k, v)),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let steps = match self.py_at(object.steps, depth + 1)? {
                Py::List(items) => items,
                _ => Vec::new(),
            };
            return Ok(Py::Obj(Rc::new(Obj {
                class: object.class.clone(),
                line: object.line,
                args,
                kwargs,
                steps,
            })));
        }
        if let Some(builtin) = Builtin::from_value(value) {
            return Ok(match builtin.class {
                "Ellipsis" => Py::Ellipsis,
                class => Py::Builtin(class.to_string()),
            });
        }
        if value.get_type() == "function" {
            // While the module is being evaluated only Rust builtins (`int`, `len`) are frozen;
            // they are kept by name, as the seed's `PBListener(port=int)` placeholder is.
            if value.unpack_frozen().is_some() {
                return Ok(Py::Builtin(value.to_str()));
            }
            return Ok(Py::Func(self.function(value)));
        }
        Ok(Py::Other(value.get_type().to_string()))
    }

    /// The number of a function, registering it on first sight.
    fn function(&mut self, value: Value<'v>) -> u32 {
        if let Some(i) = self.functions.iter().position(|f| f.ptr_eq(value)) {
            return i as u32;
        }
        self.functions.push(value);
        let repr = value.to_str();
        let name = repr
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim_start_matches("function ")
            .split('(')
            .next()
            .unwrap_or("function");
        let name = name.rsplit('.').next().unwrap_or(name).to_string();
        self.names.push(name);
        (self.functions.len() - 1) as u32
    }
}
