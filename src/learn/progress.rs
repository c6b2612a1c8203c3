//! The learner's progress: attempts and results per concept, in `learn.json` in the
//! state directory, written whole to a temporary file and renamed (a crash or Ctrl-C
//! leaves the old file or the new one, never half of one). A concept is mastered when
//! all its questions were answered right under two different seeds.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Attempts kept per concept (older ones are dropped; mastery is kept by the seeds).
pub const KEPT_ATTEMPTS: usize = 50;
/// The largest progress file read: anything larger is not ours.
const MAX_FILE: u64 = 4 << 20;
/// The file's format version.
pub const SCHEMA_VERSION: u32 = 1;

/// One graded run of a lesson.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Unix time of the run, in seconds.
    pub at: i64,
    /// The seed its parameters were drawn with (None: set by hand).
    pub seed: Option<u64>,
    /// Questions answered right.
    pub right: u32,
    /// Questions asked.
    pub asked: u32,
    /// Questions that could not be graded (not measured on this host).
    #[serde(default)]
    pub ungraded: u32,
}

/// One concept's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConceptProgress {
    /// The latest attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// Seeds under which every question was answered right.
    pub perfect_seeds: Vec<u64>,
    /// Whether the break-it exercise was solved.
    #[serde(default)]
    pub exercise_solved: bool,
}

impl ConceptProgress {
    /// Mastered: every question right under two different seeds.
    pub fn mastered(&self) -> bool {
        self.perfect_seeds.len() >= 2
    }
}

/// Everything kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// By concept id.
    pub concepts: BTreeMap<String, ConceptProgress>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            schema_version: SCHEMA_VERSION,
            concepts: BTreeMap::new(),
        }
    }
}

/// Why the progress file could not be used.
#[derive(Debug)]
pub enum ProgressError {
    /// Reading or writing failed.
    Io(PathBuf, io::Error),
    /// The file is not a progress file of this version (left alone).
    Foreign(PathBuf, String),
}

impl std::fmt::Display for ProgressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProgressError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            ProgressError::Foreign(p, why) => {
                write!(
                    f,
                    "{}: not a syslens progress file ({why}); left alone",
                    p.display()
                )
            }
        }
    }
}

impl std::error::Error for ProgressError {}

/// The progress file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("learn.json")
}

impl Progress {
    /// Reads the progress in `dir`; none yet is an empty progress.
    pub fn load(dir: &Path) -> Result<Progress, ProgressError> {
        use io::Read;
        let file = path(dir);
        let f = match std::fs::File::open(&file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Progress::default()),
            Err(e) => return Err(ProgressError::Io(file, e)),
        };
        let mut text = String::new();
        f.take(MAX_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| ProgressError::Io(file.clone(), e))?;
        if text.len() as u64 > MAX_FILE {
            return Err(ProgressError::Foreign(file, "larger than 4 MiB".into()));
        }
        let p: Progress = serde_json::from_str(&text)
            .map_err(|e| ProgressError::Foreign(file.clone(), e.to_string()))?;
        if p.schema_version != SCHEMA_VERSION {
            return Err(ProgressError::Foreign(
                file,
                format!("schema_version {}", p.schema_version),
            ));
        }
        Ok(p)
    }

    /// Writes the progress to `dir` (made if missing, mode 0700), atomically.
    pub fn save(&self, dir: &Path) -> Result<(), ProgressError> {
        use std::os::unix::fs::DirBuilderExt;
        let io_err = |e| ProgressError::Io(dir.to_path_buf(), e);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err)?;
        let file = path(dir);
        let tmp = dir.join(format!(".learn.json.{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| ProgressError::Io(file.clone(), io::Error::other(e)))?;
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &file));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(ProgressError::Io(file, e));
        }
        Ok(())
    }

    /// Records an attempt at `concept`.
    pub fn record(&mut self, concept: &str, attempt: Attempt) {
        let c = self.concepts.entry(concept.to_owned()).or_default();
        if let Some(seed) = attempt.seed {
            if attempt.asked > 0
                && attempt.right == attempt.asked
                && !c.perfect_seeds.contains(&seed)
            {
                c.perfect_seeds.push(seed);
            }
        }
        c.attempts.push(attempt);
        if c.attempts.len() > KEPT_ATTEMPTS {
            let extra = c.attempts.len() - KEPT_ATTEMPTS;
            c.attempts.drain(..extra);
        }
    }

    /// Whether `concept` is mastered.
    pub fn mastered(&self, concept: &str) -> bool {
        self.concepts
            .get(concept)
            .is_some_and(ConceptProgress::mastered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(seed: u64, right: u32) -> Attempt {
        Attempt {
            at: 0,
            seed: Some(seed),
            right,
            asked: 3,
            ungraded: 0,
        }
    }

    #[test]
    fn issue_18_mastery_takes_two_different_perfect_seeds() {
        let mut p = Progress::default();
        p.record("cow", attempt(7, 3));
        p.record("cow", attempt(7, 3));
        assert!(
            !p.mastered("cow"),
            "the same seed twice is memory, not mastery"
        );
        p.record("cow", attempt(8, 2));
        assert!(!p.mastered("cow"), "one answer wrong");
        p.record("cow", attempt(9, 3));
        assert!(p.mastered("cow"));
        assert!(!p.mastered("signals"));
    }

    #[test]
    fn issue_18_attempts_are_bounded_and_saved_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Progress::default();
        for i in 0..(KEPT_ATTEMPTS as u64 + 10) {
            p.record("locking", attempt(i, 0));
        }
        assert_eq!(p.concepts["locking"].attempts.len(), KEPT_ATTEMPTS);
        p.save(dir.path()).unwrap();
        assert_eq!(Progress::load(dir.path()).unwrap(), p);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
    }

    #[test]
    fn issue_18_a_foreign_progress_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), b"{\"not\": \"ours\"}").unwrap();
        assert!(matches!(
            Progress::load(dir.path()),
            Err(ProgressError::Foreign(..))
        ));
        std::fs::write(
            path(dir.path()),
            b"{\"schema_version\": 99, \"concepts\": {}}",
        )
        .unwrap();
        assert!(matches!(
            Progress::load(dir.path()),
            Err(ProgressError::Foreign(..))
        ));
        assert_eq!(
            std::fs::read(path(dir.path())).unwrap(),
            b"{\"schema_version\": 99, \"concepts\": {}}"
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(Progress::load(empty.path()).unwrap(), Progress::default());
    }
}
