//! The config file: TOML whose keys are the fields of [`Config`], read with serde; and the effective
//! configuration written back in that format (`switchyard serve --print-config`).
//!
//! A file may set any subset of the settings; the rest keep their defaults. An unknown key is an
//! error naming the key and the file, so a misspelt setting is never silently ignored.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use super::Config;

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// toml's message names the key (`unknown field `max_payload`, expected one of ...`) and the
    /// expected type; the position is added here.
    #[error("config file {}, line {line}, column {column}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Config {
    /// The settings of the TOML file at `path`, the defaults for what it leaves out.
    pub fn from_file(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// The settings of a config file's text; `path` only names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigFileError> {
        toml::from_str(text).map_err(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            let (line, column) = line_and_column(text, offset);
            let message = error.message().trim_end();
            ConfigFileError::Parse {
                path: path.to_owned(),
                line,
                column,
                // toml names an unknown key, but not the key of a value of the wrong type.
                message: match key_of_value_at(text, offset) {
                    Some(key) => format!("{key}: {message}"),
                    None => message.to_owned(),
                },
            }
        })
    }

    /// This configuration as a config file that sets every setting: what `--print-config` shows.
    ///
    /// Settings without a value (no TLS files, say) and the tokens are comments: a token is never
    /// printed, and a placeholder in its place would become a real token if the output were saved
    /// and used as a config file. Fails only for a path that is not UTF-8, which TOML cannot hold.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let mut text = toml::to_string(self)?;
        let unset = [
            ("tls_cert", self.tls_cert.is_none()),
            ("tls_key", self.tls_key.is_none()),
            ("tls_client_ca", self.tls_client_ca.is_none()),
            ("auth_file", self.auth_file.is_none()),
            ("ready_file", self.ready_file.is_none()),
        ];
        for (key, _) in unset.iter().filter(|(_, is_unset)| *is_unset) {
            let _ = writeln!(text, "# {key} is not set");
        }
        match self.auth_tokens.len() {
            0 => text.push_str("# auth_tokens: none\n"),
            n => {
                let _ = writeln!(
                    text,
                    "# auth_tokens: {n}, not shown: a copy of this output must set them again"
                );
            }
        }
        Ok(text)
    }
}

/// The key of the `key = value` line whose value holds byte `offset`. Settings are flat (no tables),
/// so the key is what stands before the line's first `=`.
fn key_of_value_at(text: &str, offset: usize) -> Option<&str> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |at| at + 1);
    let (key, _) = text[line_start..offset].split_once('=')?;
    Some(key.trim().trim_matches('"'))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigFileError> {
        Config::from_toml(text, Path::new("/etc/switchyard.toml"))
    }

    #[test]
    fn a_file_sets_what_it_names_and_leaves_the_rest_at_the_defaults() {
        let config = parse(
            "listen = \"0.0.0.0:7000\"\nmax_payload_bytes = 2048\nshutdown_grace = \"250ms\"\n\
             tls_cert = \"server.pem\"\nauth_tokens = [\"s3cret\"]\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.max_payload_bytes, 2048);
        assert_eq!(config.shutdown_grace, Duration::from_millis(250));
        assert_eq!(config.tls_cert, Some(PathBuf::from("server.pem")));
        assert_eq!(config.auth_tokens, vec!["s3cret".parse().unwrap()]);
        assert_eq!(config.max_headers, Config::default().max_headers);
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn an_unknown_key_is_named_with_the_file_and_the_line() {
        let error = parse("max_headers = 3\nmax_payload = 10\n").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("/etc/switchyard.toml"), "{text}");
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("max_payload"), "{text}");
    }

    #[test]
    fn a_wrong_type_or_a_bare_number_for_a_duration_is_refused_by_name() {
        for (text, needle) in [
            ("max_headers = \"many\"", "max_headers"),
            ("shutdown_grace = 5", "shutdown_grace"),
            ("shutdown_grace = \"5\"", "shutdown_grace"),
            ("auth_tokens = [\"\"]", "empty"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = Config::from_file(Path::new("/nonexistent/switchyard.toml")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/switchyard.toml"));
    }

    #[test]
    fn the_printed_config_reads_back_and_never_shows_a_token() {
        let config = Config {
            auth_tokens: vec!["s3cret".parse().unwrap()],
            tls_cert: Some("server.pem".into()),
            tls_key: Some("server.key".into()),
            keepalive_interval: Duration::from_millis(1500),
            ..Config::default()
        };
        let text = config.to_toml().unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("keepalive_interval = \"1s 500ms\""), "{text}");
        assert!(text.contains("# auth_tokens: 1, not shown"), "{text}");
        assert!(text.contains("# tls_client_ca is not set"), "{text}");
        let back = parse(&text).unwrap();
        // Everything but the tokens, which are not printed, comes back the same.
        let without_tokens = Config {
            auth_tokens: Vec::new(),
            ..config
        };
        assert_eq!(format!("{back:?}"), format!("{without_tokens:?}"));
    }

    #[test]
    fn a_value_is_traced_back_to_its_key() {
        let text = "a = 1\nmax_headers = \"many\"\n";
        assert_eq!(key_of_value_at(text, 20), Some("max_headers"));
        assert_eq!(key_of_value_at(text, 6), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_path_toml_cannot_hold_is_an_error_not_a_panic() {
        use std::os::unix::ffi::OsStrExt;
        let config = Config {
            tls_cert: Some(PathBuf::from(std::ffi::OsStr::from_bytes(b"\xff.pem"))),
            ..Config::default()
        };
        assert!(config.to_toml().is_err());
    }

    #[test]
    fn positions_count_lines_and_characters() {
        assert_eq!(line_and_column("ab\ncdé\nx", 8), (3, 1));
        assert_eq!(line_and_column("ab\ncdé\nx", 3), (2, 1));
        assert_eq!(line_and_column("abc", 2), (1, 3));
    }
}
