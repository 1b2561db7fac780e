//! The ready file: one JSON object that says where a serving broker listens, for whoever started it.
//!
//! A harness or supervisor that starts `switchyard serve --listen 127.0.0.1:0 --ready-file F` waits
//! for `F` to exist and reads the port from it: no free-port race (the kernel picks the port and the
//! broker keeps it), and no scraping of log lines whose format is not an interface. The same idea as
//! nats-server's ports file.

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// What the file holds. The field names are an interface: harnesses in every client language read
/// them, and docs/operations.md documents them.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Ready {
    /// The bound address, `host:port`.
    pub listen: SocketAddr,
    /// The broker's process id.
    pub pid: u32,
    /// Where the HTTP listener (metrics, health) listens, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<SocketAddr>,
}

/// A written ready file; removed when dropped, which the server does as soon as shutdown begins. A
/// file left behind names a broker that was killed (no code can clean up after SIGKILL); the next
/// broker given the same path removes it before it starts.
#[derive(Debug)]
pub struct ReadyFile {
    path: PathBuf,
}

impl ReadyFile {
    /// Removes a file left at `path` by an earlier broker; nothing there is fine.
    pub fn remove_stale(path: &Path) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed the ready file of an earlier broker");
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Writes `ready` to `path` whole: into a file beside it first, then renamed over `path`, so a
    /// reader polling for `path` never sees half of it.
    pub fn write(path: &Path, ready: &Ready) -> io::Result<Self> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let mut text = serde_json::to_string(ready).map_err(io::Error::other)?;
        text.push('\n');
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, path)?;
        Ok(Self {
            path: path.to_owned(),
        })
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove the ready file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_appears_whole_and_goes_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        let ready = Ready {
            listen: "127.0.0.1:40123".parse().unwrap(),
            pid: 4242,
            http: None,
        };
        let file = ReadyFile::write(&path, &ready).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"listen\":\"127.0.0.1:40123\",\"pid\":4242}\n");
        assert_eq!(serde_json::from_str::<Ready>(&text).unwrap(), ready);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(file);
        assert!(!path.exists());
        ReadyFile::remove_stale(&path).unwrap();
        std::fs::write(&path, "stale").unwrap();
        ReadyFile::remove_stale(&path).unwrap();
        assert!(!path.exists());
    }
}
