//! The serve flags that took a bare number of milliseconds or seconds before every duration became a
//! human duration (`--shutdown-grace-secs 5` is now `--shutdown-grace 5s`). They are published, so
//! they keep working, hidden from `--help`, for one release, and each use logs a deprecation warning.
//!
//! An old name sits at the level it was given at: an old flag beats a new variable, an old variable
//! beats the config file, as the new names do. Both names at the same level is an error, since one
//! of the two values would be dropped without a word.

use std::time::Duration;

use clap::{Arg, ArgMatches, Command, parser::ValueSource, value_parser};
use switchyard::config::Config;

/// The unit an old flag's number is in.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Millis,
    Secs,
}

/// One old name and the setting it now stands for.
struct Alias {
    /// The old flag, without `--`; also the argument's id. Its variable is `SWITCHYARD_` and this in
    /// upper case with underscores.
    old: &'static str,
    /// The setting's id (its `Config` field).
    new: &'static str,
    unit: Unit,
    set: fn(&mut Config, Duration),
}

const ALIASES: [Alias; 9] = [
    Alias {
        old: "default-ack-deadline-ms",
        new: "default_ack_deadline",
        unit: Unit::Millis,
        set: |config, value| config.default_ack_deadline = value,
    },
    Alias {
        old: "max-ack-deadline-ms",
        new: "max_ack_deadline",
        unit: Unit::Millis,
        set: |config, value| config.max_ack_deadline = value,
    },
    Alias {
        old: "max-nack-delay-ms",
        new: "max_nack_delay",
        unit: Unit::Millis,
        set: |config, value| config.max_nack_delay = value,
    },
    Alias {
        old: "group-idle-timeout-secs",
        new: "group_idle_timeout",
        unit: Unit::Secs,
        set: |config, value| config.group_idle_timeout = value,
    },
    Alias {
        old: "default-request-timeout-ms",
        new: "default_request_timeout",
        unit: Unit::Millis,
        set: |config, value| config.default_request_timeout = value,
    },
    Alias {
        old: "max-request-timeout-ms",
        new: "max_request_timeout",
        unit: Unit::Millis,
        set: |config, value| config.max_request_timeout = value,
    },
    Alias {
        old: "shutdown-grace-secs",
        new: "shutdown_grace",
        unit: Unit::Secs,
        set: |config, value| config.shutdown_grace = value,
    },
    Alias {
        old: "max-publish-wait-ms",
        new: "max_publish_wait",
        unit: Unit::Millis,
        set: |config, value| config.max_publish_wait = value,
    },
    Alias {
        old: "tls-handshake-timeout-ms",
        new: "tls_handshake_timeout",
        unit: Unit::Millis,
        set: |config, value| config.tls_handshake_timeout = value,
    },
];

/// An old name given at the same level as its new one.
#[derive(Debug, thiserror::Error)]
#[error("{old} and {new} are the same setting, given both as {level}; keep only {new}")]
pub struct BothNames {
    old: String,
    new: String,
    level: &'static str,
}

/// `command` with every old name as a hidden flag and variable.
pub fn add_to(command: Command) -> Command {
    ALIASES.iter().fold(command, |command, alias| {
        command.arg(
            Arg::new(alias.old)
                .long(alias.old)
                .env(env_name(alias.old))
                .value_parser(value_parser!(u64))
                .value_name("NUMBER")
                .hide(true),
        )
    })
}

/// Applies the old names found in `matches` (the serve arguments of a full parse) to `config`, and
/// returns one deprecation warning per old name used.
pub fn apply(matches: &ArgMatches, config: &mut Config) -> Result<Vec<String>, BothNames> {
    let mut warnings = Vec::new();
    for alias in &ALIASES {
        let (Some(&number), Some(old_level)) = (
            matches.get_one::<u64>(alias.old),
            matches.value_source(alias.old),
        ) else {
            continue;
        };
        let new_flag = alias.new.replace('_', "-");
        let (old, new) = match old_level {
            ValueSource::EnvVariable => (env_name(alias.old), env_name(&new_flag)),
            _ => (format!("--{}", alias.old), format!("--{new_flag}")),
        };
        let new_level = matches
            .value_source(alias.new)
            .unwrap_or(ValueSource::DefaultValue);
        if new_level == old_level {
            let level = match old_level {
                ValueSource::EnvVariable => "variables",
                _ => "flags",
            };
            return Err(BothNames { old, new, level });
        }
        if new_level > old_level {
            warnings.push(format!(
                "{old} is deprecated and ignored here: {new} is given as well"
            ));
            continue;
        }
        let (value, suffix) = match alias.unit {
            Unit::Millis => (Duration::from_millis(number), "ms"),
            Unit::Secs => (Duration::from_secs(number), "s"),
        };
        (alias.set)(config, value);
        warnings.push(format!(
            "{old} is deprecated and goes in the next release: use {new} {number}{suffix}"
        ));
    }
    Ok(warnings)
}

/// `SWITCHYARD_` and the flag in upper case, dashes as underscores.
fn env_name(flag: &str) -> String {
    format!("SWITCHYARD_{}", flag.replace('-', "_").to_uppercase())
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use super::*;

    fn serve(args: &[&str]) -> Result<(Config, Vec<String>), BothNames> {
        let command = add_to(Config::augment_args(Command::new("serve")));
        let matches = command
            .try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap();
        let mut config = Config::from_arg_matches(&matches).unwrap();
        let warnings = apply(&matches, &mut config)?;
        Ok((config, warnings))
    }

    #[test]
    fn an_old_flag_sets_its_setting_in_its_old_unit_and_warns() {
        let (config, warnings) =
            serve(&["--shutdown-grace-secs", "2", "--max-nack-delay-ms", "1500"]).unwrap();
        assert_eq!(config.shutdown_grace, Duration::from_secs(2));
        assert_eq!(config.max_nack_delay, Duration::from_millis(1500));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("--max-nack-delay 1500ms"),
            "{warnings:?}"
        );
    }

    #[test]
    fn both_names_as_flags_are_refused() {
        let error = serve(&["--shutdown-grace-secs", "2", "--shutdown-grace", "1s"]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("--shutdown-grace-secs") && text.contains("keep only --shutdown-grace"),
            "{text}"
        );
    }

    #[test]
    fn every_alias_sets_the_setting_it_names() {
        for alias in &ALIASES {
            let (config, _) = serve(&[&format!("--{}", alias.old), "7"]).unwrap();
            let value = match alias.unit {
                Unit::Millis => "7ms",
                Unit::Secs => "7s",
            };
            let line = format!("{} = \"{value}\"", alias.new);
            let printed = config.to_toml().unwrap();
            assert!(
                printed.lines().any(|l| l == line),
                "{}: {printed}",
                alias.old
            );
        }
        assert_eq!(
            env_name("default-ack-deadline-ms"),
            "SWITCHYARD_DEFAULT_ACK_DEADLINE_MS"
        );
    }
}
