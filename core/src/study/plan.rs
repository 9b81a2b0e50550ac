//! The units of a study's work, in the order one process does them, each with the units it
//! waits for: what workers share ([`crate::study::workers`]).

use crate::study::config::{StudyConfig, TuneConfig};
use crate::study::runner::run_folder;
use crate::study::slug;

/// One unit of a study's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Tuning run `k` of the study's objective `objective` (its index in the study file).
    Tune { objective: usize, k: usize },
    /// The run of objective `objective` with the study's `seed`-th seed: training, then every
    /// measurement of the network.
    Run { objective: usize, seed: usize },
    /// Fine-tuning the networks of `objective` on the study's `target`-th target.
    Finetune { objective: usize, target: usize },
    /// CKA between the networks of the main objectives (Fig. 2).
    Cka,
}

/// A unit of a study's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUnit {
    /// Its name, also the name of its files in `OUT/work/`: `tune-softmax-s1000`,
    /// `run-softmax-s0`, `finetune-softmax-on-pets`, `cka`.
    pub name: String,
    /// The places in the plan of the units it waits for.
    pub after: Vec<usize>,
    pub(crate) unit: Unit,
}

/// The units of `study` in the order one process does them: per objective its tuning runs,
/// its runs, then its fine-tuning per target; CKA last. Every unit comes after those it waits
/// for.
pub fn plan(study: &StudyConfig) -> Vec<PlannedUnit> {
    let mut units = Vec::new();
    let mut main_runs = Vec::new();
    for (o, objective) in study.objectives.iter().enumerate() {
        let name = slug(&objective.config.to_string());
        let tuning: Vec<usize> = match &study.tune {
            Some(tune) => (0..tune.seeds)
                .map(|k| {
                    units.push(PlannedUnit {
                        name: format!("tune-{name}-s{}", TuneConfig::seed(k)),
                        after: Vec::new(),
                        unit: Unit::Tune { objective: o, k },
                    });
                    units.len() - 1
                })
                .collect(),
            None => Vec::new(),
        };
        let runs: Vec<usize> = study
            .seeds
            .iter()
            .enumerate()
            .map(|(s, &seed)| {
                units.push(PlannedUnit {
                    name: format!("run-{}", run_folder(&objective.config, seed)),
                    after: tuning.clone(),
                    unit: Unit::Run { objective: o, seed: s },
                });
                units.len() - 1
            })
            .collect();
        if !objective.sweep {
            main_runs.extend(&runs);
        }
        if study.finetune.is_some() {
            for (t, target) in study.targets.iter().enumerate() {
                units.push(PlannedUnit {
                    name: format!("finetune-{name}-on-{}", slug(&target.name)),
                    after: runs.clone(),
                    unit: Unit::Finetune {
                        objective: o,
                        target: t,
                    },
                });
            }
        }
    }
    if study.analysis.cka_passes > 0 && main_runs.len() >= 2 {
        units.push(PlannedUnit {
            name: "cka".to_string(),
            after: main_runs,
            unit: Unit::Cka,
        });
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_comes_after_what_it_waits_for_and_names_are_unique() {
        let study: StudyConfig = toml::from_str(
            r#"
name = "plan"
model = "small"
source = { format = "procedural", classes = 3, per_class = 10, size = 12, seed = 1 }
objectives = [{ kind = "softmax" }, { kind = "sigmoid" }, { kind = "cosine-softmax", temperature = 0.1, sweep = true }]
seeds = [0, 1]
targets = [{ name = "a b", data = { format = "procedural", classes = 3, per_class = 10, size = 12, seed = 2 } }]
tune = { seeds = 2 }
finetune = {}
"#,
        )
        .unwrap();
        let units = plan(&study);
        let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            &names[..6],
            [
                "tune-softmax-s1000",
                "tune-softmax-s1001",
                "run-softmax-s0",
                "run-softmax-s1",
                "finetune-softmax-on-a-b",
                "tune-sigmoid-s1000"
            ]
        );
        // 3 objectives × (2 tuning + 2 runs + 1 fine-tuning), then CKA of the 4 main runs.
        assert_eq!(units.len(), 16);
        assert_eq!(units[15].name, "cka");
        assert_eq!(units[15].after, [2, 3, 7, 8]);
        assert_eq!(units[4].after, [2, 3]);
        assert_eq!(units[2].after, [0, 1]);
        for (place, unit) in units.iter().enumerate() {
            assert!(unit.after.iter().all(|&a| a < place), "{unit:?}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }
}
