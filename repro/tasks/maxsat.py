"""MAX-SAT for the paper's scaling study (Table T3 / Figure F4, §5.3): one import for the engine.

* :mod:`repro.tasks.maxsat_instances` -- random 3-SAT (``m = int(4.27 n)``, 3 distinct variables
  per clause, literals negated with probability 1/2, one seeded instance per size) and DIMACS CNF
  read/write with validation;
* :mod:`repro.tasks.maxsat_eval` -- the loss (unsatisfied fraction of ``round(sigmoid(s))``), the
  variable -> clause index and the incremental evaluator of "flip at most two variables"
  candidates (equal to a full recount bit for bit);
* :mod:`repro.tasks.maxsat_polystep` -- full-space PolyStep (``d_p = 2``, ``V = 4``) through
  :func:`polystep.functional.step` with an incremental cost oracle, the amortized/momentum driver
  and the paper's settings (schedules as intended and as run);
* :mod:`repro.tasks.maxsat_search` -- probSAT and WalkSAT local search (flips/s reported);
* :mod:`repro.tasks.maxsat_exact` -- RC2 optimum and CaDiCaL through python-sat, with timeouts.
"""

from .maxsat_eval import (ClauseIndex, IncrementalEvaluator, ParticlePairs, assignment, clause_true_counts,
                          full_space_pairs, unsat_count, unsat_fraction)
from .maxsat_exact import (ExactResult, MissingDependencyError, brute_force_optimum, cdcl_solve,
                           pysat_available, rc2_optimum)
from .maxsat_instances import (CLAUSE_RATIO, CNF, PAPER_INSTANCE_SEED, DimacsError, dimacs_string,
                               from_clauses, instance_seed, num_clauses, paper_instance, random_ksat,
                               read_dimacs, write_dimacs)
from .maxsat_polystep import MaxSATCost, MaxSATPolyStep, StepRecord, paper_config, polystep_step
from .maxsat_search import LocalSearchResult, local_search

__all__ = ["CLAUSE_RATIO", "CNF", "PAPER_INSTANCE_SEED", "DimacsError", "dimacs_string", "from_clauses",
           "instance_seed", "num_clauses", "paper_instance", "random_ksat", "read_dimacs", "write_dimacs",
           "ClauseIndex", "IncrementalEvaluator", "ParticlePairs", "assignment", "clause_true_counts",
           "full_space_pairs", "unsat_count", "unsat_fraction", "MaxSATCost", "MaxSATPolyStep", "StepRecord",
           "paper_config", "polystep_step", "LocalSearchResult", "local_search", "ExactResult",
           "MissingDependencyError", "brute_force_optimum", "cdcl_solve", "pysat_available", "rc2_optimum"]
