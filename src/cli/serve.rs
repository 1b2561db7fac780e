//! `switchyard serve`: its flags are the fields of `Config` plus `--config` and `--print-config`, and
//! this is where the effective configuration is put together.
//!
//! Precedence, highest first: a flag, a `SWITCHYARD_*` variable, the config file, the default. clap
//! already ranks flags over variables over defaults; the file goes between by a second parse of the
//! same arguments with every default removed: what that parse still finds was given as a flag or a
//! variable, and only that overrides the file.

use std::{ffi::OsString, path::PathBuf};

use clap::{ArgMatches, Args, FromArgMatches};
use switchyard::config::{Config, ConfigFileError};

use super::legacy;

/// The serve flags: every setting, and where else settings may come from.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML file of settings (keys are the flags' names with underscores); flags and variables
    /// override it.
    #[arg(long, env = "SWITCHYARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML (tokens not shown) and exit.
    #[arg(long)]
    pub print_config: bool,
    #[command(flatten)]
    pub settings: Config,
}

/// What `serve` runs with, once every source is read.
#[derive(Debug)]
pub struct Serve {
    pub config: Config,
    pub print_config: bool,
    /// Deprecation warnings, logged once logging is set up.
    pub warnings: Vec<String>,
}

/// Why the settings could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    File(#[from] ConfigFileError),
    #[error(transparent)]
    BothNames(#[from] legacy::BothNames),
    #[error("{0}")]
    Arguments(#[from] clap::Error),
}

impl Serve {
    /// The configuration of `args`, parsed from `argv` into `matches` (the serve arguments of the
    /// whole command line): the config file when one is named, then every flag and variable given.
    pub fn resolve(
        args: ServeArgs,
        matches: &ArgMatches,
        argv: &[OsString],
    ) -> Result<Self, SettingsError> {
        let mut config = match &args.config {
            None => args.settings,
            Some(path) => {
                let mut config = Config::from_file(path)?;
                let explicit = super::command_without_defaults().try_get_matches_from(argv)?;
                config.update_from_arg_matches(super::serve_matches(&explicit))?;
                config
            }
        };
        let warnings = legacy::apply(matches, &mut config)?;
        Ok(Self {
            config,
            print_config: args.print_config,
            warnings,
        })
    }
}
