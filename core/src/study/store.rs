//! Reusing finished work: every unit of a study (a run's training, a run's measurements, a
//! fine-tuning job) is saved in a record file together with the key of the settings that
//! produced it, and reused while the key is unchanged.
//!
//! A record is JSON, `{"key": KEY, …the unit's fields}`. Keys are compact JSON text and are
//! compared as text: numbers read back from JSON may differ from the written ones in the last
//! bit, so comparing parsed values would miss finished work.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What a record file holds for a key.
#[derive(Debug)]
pub(crate) enum Saved<T> {
    /// No readable record.
    Nothing,
    /// A record made with this key.
    Same(T),
    /// A record made with other settings.
    Other,
}

/// The record file of one unit of work and the key of its settings.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    path: PathBuf,
    key: String,
}

#[derive(Serialize, Deserialize)]
struct Keyed<T> {
    key: String,
    #[serde(flatten)]
    value: T,
}

/// The key of `settings`: compact JSON text.
pub(crate) fn key_of<K: Serialize + ?Sized>(settings: &K) -> String {
    serde_json::to_string(settings).expect("settings serialise to JSON")
}

impl Record {
    /// The record at `path` for the settings whose key is `key` ([`key_of`]).
    pub fn new(path: impl Into<PathBuf>, key: String) -> Self {
        Self { path: path.into(), key }
    }

    /// The record file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file holds for this key.
    pub fn read<T: DeserializeOwned>(&self) -> Saved<T> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Saved::Nothing;
        };
        match serde_json::from_str::<Keyed<T>>(&text) {
            Ok(record) if record.key == self.key => Saved::Same(record.value),
            Ok(_) => Saved::Other,
            Err(_) => Saved::Nothing,
        }
    }

    /// Saves `value` under this key, atomically.
    pub fn write<T: Serialize>(&self, value: &T) -> Result<()> {
        let record = Keyed {
            key: self.key.clone(),
            value,
        };
        crate::atomic::write_json(&self.path, &record)
    }
}

/// The file of a record that holds nothing but its key (the settings a run was trained with).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Marker {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Unit {
        value: f64,
        done: bool,
    }

    #[test]
    fn a_record_is_reused_only_under_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.json");
        // 0.0011787686347935879 may not parse back bit for bit: keys are compared as text.
        let key = key_of(&serde_json::json!({ "lr": 0.0011787686347935879, "steps": 3 }));
        let record = Record::new(&path, key.clone());
        assert!(matches!(record.read::<Unit>(), Saved::Nothing));
        let unit = Unit { value: 0.5, done: true };
        record.write(&unit).unwrap();
        assert!(matches!(record.read::<Unit>(), Saved::Same(u) if u == unit));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"done\": true") && text.starts_with("{\n  \"key\""),
            "{text}"
        );
        let other = Record::new(&path, key_of(&serde_json::json!({ "lr": 0.1, "steps": 3 })));
        assert!(matches!(other.read::<Unit>(), Saved::Other));
        std::fs::write(&path, b"{ damaged").unwrap();
        assert!(matches!(record.read::<Unit>(), Saved::Nothing));
    }
}
