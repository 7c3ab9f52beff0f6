//! Environment variables, one pattern for every reader: each variable is declared once as a
//! [`Var`] (name, default, accepted values, meaning, readers), read through the typed getters
//! of [`Env`], and every problem is one [`ConfigError`] that names the variable.
//! docs/configuration.md's table is rendered from the declarations ([`table`]).
//!
//! A blank value counts as unset everywhere (the template declares some variables empty, so
//! that `sam local` can override them).

use std::str::FromStr;
use std::time::Duration;

/// Who reads a variable: the "read by" column of docs/configuration.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// Every HTTP function.
    Http,
    /// The HTTP functions that keep or read VM logins.
    Logins,
    /// The provisioner function.
    Provisioner,
    /// The cleanup function.
    Cleanup,
    /// `vmctl`: the operator tool and the local server (`make run`).
    Vmctl,
}

/// Every function and `vmctl`.
pub const ALL: &[Reader] = &[
    Reader::Http,
    Reader::Provisioner,
    Reader::Cleanup,
    Reader::Vmctl,
];

impl Reader {
    /// The label in the table.
    pub fn label(self) -> &'static str {
        match self {
            Reader::Http => "HTTP functions",
            Reader::Logins => "create-vm, get-credentials",
            Reader::Provisioner => "provisioner",
            Reader::Cleanup => "cleanup",
            Reader::Vmctl => "vmctl",
        }
    }
}

/// One environment variable, declared where its reader lives.
#[derive(Clone, Copy, Debug)]
pub struct Var {
    /// Its name.
    pub name: &'static str,
    /// The value used when it is unset (read like a set one), if any.
    pub default: Option<&'static str>,
    /// Said after the default in the table (`required in Lambda`).
    pub note: &'static str,
    /// The values accepted, as errors and the table say them (`0 to 5`); empty for any text.
    pub values: &'static str,
    /// What it sets.
    pub about: &'static str,
    /// Who reads it.
    pub readers: &'static [Reader],
}

impl Var {
    /// A variable of any text, no default.
    pub const fn new(name: &'static str, readers: &'static [Reader], about: &'static str) -> Var {
        Var {
            name,
            default: None,
            note: "",
            values: "",
            about,
            readers,
        }
    }

    /// With `value` when unset.
    pub const fn default(self, value: &'static str) -> Var {
        Var {
            default: Some(value),
            ..self
        }
    }

    /// With a note on the default.
    pub const fn note(self, note: &'static str) -> Var {
        Var { note, ..self }
    }

    /// With the accepted values.
    pub const fn values(self, values: &'static str) -> Var {
        Var { values, ..self }
    }

    /// An error about this variable; `message` names it.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            var: self.name,
            message: message.into(),
        }
    }

    /// `NAME must be <values>, got '<value>'`.
    pub fn invalid(&self, value: &str) -> ConfigError {
        self.error(format!(
            "{} must be {}, got '{value}'",
            self.name, self.values
        ))
    }

    /// `value` through `parse` (its result `None`: [`Var::invalid`]).
    pub fn check<T>(
        &self,
        value: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        parse(value).ok_or_else(|| self.invalid(value))
    }
}

/// A configuration problem found at start-up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {message}")]
pub struct ConfigError {
    /// The variable at fault (the first, where several are).
    pub var: &'static str,
    /// What is wrong, naming the variable.
    pub message: String,
}

/// Set by Lambda: tells the code it runs there.
pub const AWS_LAMBDA_FUNCTION_NAME: Var = Var::new(
    "AWS_LAMBDA_FUNCTION_NAME",
    ALL,
    "set by Lambda: the code runs there (the local defaults of secrets are refused)",
)
.note("set by Lambda");

/// The variables this crate reads.
pub const VARS: &[Var] = &[AWS_LAMBDA_FUNCTION_NAME];

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Where values come from: the process environment, or a stand-in (tests, `vmctl --stack`).
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl Env<'static> {
    /// The process environment.
    pub fn process() -> Self {
        Env::from_fn(|name| std::env::var(name).ok())
    }

    /// Only these pairs (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_fn(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }
}

impl<'a> Env<'a> {
    /// Values from `lookup` (a variable's value, or `None`).
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env {
            lookup: Box::new(lookup),
        }
    }

    /// Values from `first`, else from this source (`vmctl --stack`: the stack's outputs).
    pub fn overridden_by(self, first: impl Fn(&str) -> Option<String> + 'a) -> Env<'a> {
        Env::from_fn(move |name| first(name).or_else(|| (self.lookup)(name)))
    }

    /// The value as set; `None` when unset or blank (no default).
    pub fn get(&self, var: &Var) -> Option<String> {
        (self.lookup)(var.name).filter(|v| !v.trim().is_empty())
    }

    /// The value, else the default.
    pub fn string(&self, var: &Var) -> Option<String> {
        self.get(var).or_else(|| var.default.map(str::to_string))
    }

    /// The value; unset: `NAME must be set <when>` (`in Lambda`, `with VAULT_AUTH=token`).
    pub fn require(&self, var: &Var, when: &str) -> Result<String, ConfigError> {
        self.get(var)
            .ok_or_else(|| var.error(format!("{} must be set {when}", var.name)))
    }

    /// The trimmed value (else the default) through `parse`; `None` from it is
    /// [`Var::invalid`], and neither value nor default is `NAME must be set`.
    pub fn parse_with<T>(
        &self,
        var: &Var,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let value = self
            .string(var)
            .ok_or_else(|| var.error(format!("{} must be set", var.name)))?;
        var.check(value.trim(), parse)
    }

    /// [`Env::parse_with`] through [`FromStr`].
    pub fn parse<T: FromStr>(&self, var: &Var) -> Result<T, ConfigError> {
        self.parse_with(var, |v| v.parse().ok())
    }

    /// `true` or `1`, `false` or `0`.
    pub fn bool(&self, var: &Var) -> Result<bool, ConfigError> {
        self.parse_with(var, |v| match v {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        })
    }

    /// A whole number of seconds.
    pub fn secs(&self, var: &Var) -> Result<Duration, ConfigError> {
        self.parse(var).map(Duration::from_secs)
    }

    /// The value if it parses and `accept`s, else the default (for settings that never stop a
    /// start). Panics if the default does not parse: a declaration's bug.
    pub fn lenient<T: FromStr>(&self, var: &Var, accept: impl Fn(&T) -> bool) -> T {
        self.get(var)
            .and_then(|v| v.trim().parse().ok())
            .filter(|v| accept(v))
            .unwrap_or_else(|| match var.default.map(str::parse) {
                Some(Ok(d)) => d,
                _ => panic!("{}: the declared default does not parse", var.name),
            })
    }

    /// Whether the code runs in Lambda ([`AWS_LAMBDA_FUNCTION_NAME`] set).
    pub fn in_lambda(&self) -> bool {
        self.get(&AWS_LAMBDA_FUNCTION_NAME).is_some()
    }
}

/// The table of docs/configuration.md: a row per variable, in the order given.
pub fn table(vars: &[Var]) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = String::from(
        "| variable | default | accepted | read by | meaning |\n|---|---|---|---|---|\n",
    );
    for var in vars {
        let default = match (var.default, var.note) {
            (Some(d), "") => format!("`{d}`"),
            (Some(d), note) => format!("`{d}` ({note})"),
            (None, "") => "–".to_string(),
            (None, note) => note.to_string(),
        };
        let readers = if ALL.iter().all(|r| var.readers.contains(r)) {
            "all".to_string()
        } else {
            let labels: Vec<_> = var.readers.iter().map(|r| r.label()).collect();
            labels.join(", ")
        };
        let values = if var.values.is_empty() {
            "text"
        } else {
            var.values
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            var.name,
            cell(&default),
            cell(values),
            cell(&readers),
            cell(var.about)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEEWAY: Var = Var::new("LEEWAY", &[Reader::Http], "clock leeway")
        .default("5")
        .values("0 to 5");
    const NAME: Var = Var::new("NAME", ALL, "a name");

    #[test]
    fn blank_is_unset_and_defaults_apply() {
        let env = Env::from_pairs(&[("NAME", "  "), ("LEEWAY", " 3 ")]);
        assert_eq!(env.get(&NAME), None);
        assert_eq!(env.string(&NAME), None);
        assert_eq!(env.parse::<u64>(&LEEWAY), Ok(3));
        let empty = Env::from_pairs(&[]);
        assert_eq!(empty.parse::<u64>(&LEEWAY), Ok(5));
        assert_eq!(empty.string(&LEEWAY).as_deref(), Some("5"));
        assert!(!empty.in_lambda());
        assert!(Env::from_pairs(&[("AWS_LAMBDA_FUNCTION_NAME", "get-vm")]).in_lambda());
        let over = Env::from_pairs(&[("NAME", "env"), ("LEEWAY", "1")])
            .overridden_by(|k| (k == "NAME").then(|| "stack".to_string()));
        assert_eq!(over.get(&NAME).as_deref(), Some("stack"));
        assert_eq!(over.get(&LEEWAY).as_deref(), Some("1"));
    }

    #[test]
    fn errors_name_the_variable_and_the_accepted_values() {
        let env = Env::from_pairs(&[("LEEWAY", "9")]);
        let e = env
            .parse_with(&LEEWAY, |v| v.parse::<u64>().ok().filter(|l| *l <= 5))
            .unwrap_err();
        assert_eq!(e.var, "LEEWAY");
        assert_eq!(
            e.to_string(),
            "configuration: LEEWAY must be 0 to 5, got '9'"
        );
        let e = env.require(&NAME, "in Lambda").unwrap_err();
        assert_eq!(e.to_string(), "configuration: NAME must be set in Lambda");
        assert_eq!(
            env.parse::<u32>(&NAME).unwrap_err().message,
            "NAME must be set"
        );
    }

    #[test]
    fn bools_durations_and_lenient_reads() {
        let dry = Var::new("DRY", ALL, "")
            .default("false")
            .values("true or false");
        for (v, b) in [("true", true), ("1", true), ("false", false), ("0", false)] {
            assert_eq!(Env::from_pairs(&[("DRY", v)]).bool(&dry), Ok(b));
        }
        assert!(Env::from_pairs(&[("DRY", "yes")]).bool(&dry).is_err());
        assert_eq!(
            Env::from_pairs(&[("LEEWAY", "7")]).secs(&LEEWAY),
            Ok(Duration::from_secs(7))
        );
        let lenient =
            |v: &str| Env::from_pairs(&[("LEEWAY", v)]).lenient::<u64>(&LEEWAY, |s| *s > 0);
        assert_eq!(lenient("2"), 2);
        assert_eq!(lenient("0"), 5);
        assert_eq!(lenient("soon"), 5);
    }

    #[test]
    fn the_table_has_a_row_per_variable() {
        let secret = Var::new("SECRET", &[Reader::Http, Reader::Vmctl], "signs | seals")
            .default("s")
            .note("not in Lambda");
        let table = table(&[LEEWAY, NAME, secret]);
        let rows: Vec<_> = table.lines().collect();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[2],
            "| `LEEWAY` | `5` | 0 to 5 | HTTP functions | clock leeway |"
        );
        assert_eq!(rows[3], "| `NAME` | – | text | all | a name |");
        assert_eq!(
            rows[4],
            "| `SECRET` | `s` (not in Lambda) | text | HTTP functions, vmctl | signs \\| seals |"
        );
    }
}
