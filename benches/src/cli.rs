//! A small command-line flag parser shared by `compare` and the `wl-*`
//! binaries: `--name value`, `--name=value` and bare `--switch`es, nothing
//! else (no positional arguments), so both sides stay dependency-free.

use std::str::FromStr;

/// The flags of one command line, checked against the names it accepts.
#[derive(Debug, Default)]
pub struct Flags {
    values: Vec<(String, String)>,
    switches: Vec<String>,
}

impl Flags {
    /// Parses `args` (without the program name). `with_value` names the
    /// flags that take a value, `switches` those that take none; names are
    /// given without the leading `--`. Later occurrences of a flag win.
    ///
    /// ```
    /// use homing_bench::cli::Flags;
    ///
    /// let args: Vec<String> = ["--runs", "3", "--quick", "--alloc=system,mimalloc"]
    ///     .iter().map(|s| s.to_string()).collect();
    /// let flags = Flags::parse(&args, &["runs", "alloc"], &["quick"]).unwrap();
    /// assert!(flags.has("quick"));
    /// assert_eq!(flags.parsed::<usize>("runs").unwrap(), Some(3));
    /// assert_eq!(flags.list("alloc").unwrap(), ["system", "mimalloc"]);
    /// ```
    pub fn parse(args: &[String], with_value: &[&str], switches: &[&str]) -> Result<Self, String> {
        let mut flags = Self::default();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument `{arg}` (flags start with --)"));
            };
            let (name, inline_value) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (flag, None),
            };
            if with_value.contains(&name) {
                let value = match inline_value {
                    Some(value) => value,
                    None => rest
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("--{name} needs a value"))?,
                };
                flags.values.retain(|(n, _)| n != name);
                flags.values.push((name.to_string(), value));
            } else if switches.contains(&name) {
                if inline_value.is_some() {
                    return Err(format!("--{name} takes no value"));
                }
                flags.switches.push(name.to_string());
            } else {
                return Err(format!("unknown flag --{name}"));
            }
        }
        Ok(flags)
    }

    /// `true` if the switch `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    /// The raw value of flag `name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of flag `name` parsed as `T`, if given.
    pub fn parsed<T: FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.value(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--{name}: cannot read `{v}`"))
            })
            .transpose()
    }

    /// The comma-separated items of flag `name` (trimmed), if given.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.value(name)
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_switches_and_equals_form() {
        let f = Flags::parse(
            &strings(&["--threads", "2,8", "--quick", "--work=100"]),
            &["threads", "work"],
            &["quick"],
        )
        .unwrap();
        assert!(f.has("quick"));
        assert!(!f.has("list"));
        assert_eq!(f.list("threads").unwrap(), ["2", "8"]);
        assert_eq!(f.parsed::<u64>("work").unwrap(), Some(100));
        assert_eq!(f.parsed::<u64>("absent").unwrap(), None);
    }

    #[test]
    fn later_value_wins() {
        let f = Flags::parse(&strings(&["--runs", "3", "--runs", "7"]), &["runs"], &[]).unwrap();
        assert_eq!(f.parsed::<usize>("runs").unwrap(), Some(7));
    }

    #[test]
    fn errors_are_reported() {
        assert!(Flags::parse(&strings(&["--nope"]), &["runs"], &[]).is_err());
        assert!(Flags::parse(&strings(&["--runs"]), &["runs"], &[]).is_err());
        assert!(Flags::parse(&strings(&["positional"]), &[], &[]).is_err());
        assert!(Flags::parse(&strings(&["--quick=yes"]), &[], &["quick"]).is_err());
        let f = Flags::parse(&strings(&["--runs", "many"]), &["runs"], &[]).unwrap();
        assert!(f.parsed::<usize>("runs").is_err());
    }
}
