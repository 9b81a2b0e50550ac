//! `losslens train --nodes N`: one network trained by N processes (one per machine) started by
//! `mpirun`, through MPI (Open MPI on Debian, via the `mpi` crate). burn 0.22's distributed
//! operations reduce across the devices of one process only, and the cross-node collective that
//! earlier burn releases had (`burn-collective`) has no 0.22 release, so the gradients are summed
//! by `MPI_Allreduce`. `mpirun` is the rendezvous: it starts the processes, gives each its rank,
//! and connects them (`mpirun --host a,b -n 2 …`, or a scheduler's `srun`).

use std::rc::Rc;

use anyhow::Result;
use losslens_core::train::collective::Collective;

/// The processes of this training, when `--nodes` asks for more than one; checks that
/// `mpirun` started as many.
pub fn join(nodes: usize) -> Result<Option<Rc<Mpi>>> {
    if nodes == 0 {
        anyhow::bail!("invalid setting `nodes` = 0: the number of processes (one per machine), at least 1");
    }
    if nodes == 1 {
        return Ok(None);
    }
    Mpi::join(nodes).map(|mpi| Some(Rc::new(mpi)))
}

#[cfg(feature = "mpi")]
pub use with_mpi::Mpi;

#[cfg(feature = "mpi")]
mod with_mpi {
    use mpi::collective::SystemOperation;
    use mpi::environment::Universe;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::{Communicator, CommunicatorCollectives};

    use super::*;

    /// The MPI world of this process.
    pub struct Mpi {
        world: SimpleCommunicator,
        // Finalises MPI when dropped, so it goes last.
        _universe: Universe,
    }

    impl std::fmt::Debug for Mpi {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "MPI rank {} of {}", self.world.rank(), self.world.size())
        }
    }

    impl Mpi {
        /// Joins the processes `mpirun` started; there must be `nodes` of them.
        pub fn join(nodes: usize) -> Result<Self> {
            // Started by a launcher (Open MPI's mpirun, MPICH's mpiexec, Slurm's srun with PMI/PMIx)?
            let launched = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"]
                .iter()
                .any(|v| std::env::var_os(v).is_some());
            if !launched {
                anyhow::bail!(
                    "--nodes {nodes}: the processes must be started by MPI's launcher, which gives each its \
                 rank and connects them: `mpirun -n {nodes} --host HOST1,HOST2,… losslens train … --nodes {nodes}` \
                 (or srun under Slurm)"
                );
            }
            let universe =
                mpi::initialize().ok_or_else(|| anyhow::anyhow!("MPI was already initialised in this process"))?;
            let world = universe.world();
            let size = world.size() as usize;
            if size != nodes {
                anyhow::bail!(
                    "--nodes {nodes}, but {size} process{} started; start them with `mpirun -n {nodes} losslens train … --nodes {nodes}`",
                    if size == 1 { " was" } else { "es were" }
                );
            }
            Ok(Self {
                world,
                _universe: universe,
            })
        }

        /// Ends every process of the job (after an error on this one, so that none waits for it).
        pub fn abort(&self, code: i32) -> ! {
            self.world.abort(code)
        }
    }

    impl Collective for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }

        fn size(&self) -> usize {
            self.world.size() as usize
        }

        fn all_reduce_sum(&self, values: &mut [f32]) -> losslens_core::Result<()> {
            // The longest and (as the largest complement) the shortest length in one round trip.
            let len = values.len() as u64;
            let mut both = [0u64; 2];
            self.world
                .all_reduce_into(&[len, !len][..], &mut both[..], SystemOperation::max());
            let (longest, shortest) = (both[0], !both[1]);
            if shortest != longest {
                return Err(losslens_core::Error::Device(format!(
                    "the processes reduce buffers of different lengths ({shortest} to {longest} values); \
                     every process must train the same network on the same data"
                )));
            }
            let send = values.to_vec();
            self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
            Ok(())
        }
    }
}

/// Without MPI in this build, more than one node is refused.
#[cfg(not(feature = "mpi"))]
#[derive(Debug)]
pub struct Mpi;

#[cfg(not(feature = "mpi"))]
impl Mpi {
    fn join(nodes: usize) -> Result<Self> {
        anyhow::bail!(
            "--nodes {nodes} needs MPI, and this losslens was built without it: build it with \
             `cargo build --release -p losslens --features mpi` (Debian: apt install libopenmpi-dev \
             openmpi-bin libclang-dev)"
        )
    }

    /// Never called: no process joins without MPI.
    pub fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

#[cfg(not(feature = "mpi"))]
impl Collective for Mpi {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _values: &mut [f32]) -> losslens_core::Result<()> {
        Ok(())
    }
}
