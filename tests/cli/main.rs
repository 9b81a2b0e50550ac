//! The `losslens` binary end to end, driven as a user drives it, one module per command: the JSON
//! contract of every analysis and probe (`analyze`, `probe`), the catalogues and the demo
//! (`catalog`), training killed and resumed and feature extraction (`train`), and studies, their
//! fine-tuning and their reports (`study`), studies shared between worker processes
//! (`workers`), and hostile input (`hostile`). Every bad input must
//! give a clear error, never a panic: [`common::losslens`] fails any test whose run panicked.

mod analyze;
mod catalog;
mod common;
mod hostile;
#[cfg(feature = "mpi")]
mod nodes;
mod probe;
mod study;
mod train;
mod workers;
