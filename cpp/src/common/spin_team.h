// A small team of persistent worker threads that spin between jobs, for parallel_parts.
//
// Why not oneTBB here: a batch-1 inference is a chain of ~20 parallel loops of 10-30 us each. A TBB
// worker that went idle after the previous loop joins the next one 1-3 us late, and sometimes not
// at all, which cost resnet20 ~100 us per inference at 2 threads. A team worker instead spins (with
// pause) for a short window after each job, so it is already running when the next layer starts,
// and sleeps on a condition variable after the window, so an idle process burns no CPU.
//
// Correctness never depends on the workers: the caller claims and runs every part that no worker
// has claimed, and waits only for parts a running worker has claimed. A job carries a sequence
// number in the same atomic word as its claim bits, so a worker that wakes late cannot claim a part
// of a later job by mistake.
#pragma once
#include <functional>

namespace eo {

// Runs f(part) once for each part in [0, nparts) on the calling thread and up to threads - 1 team
// workers, worker w preferring part w (the caller prefers part 0). Returns false without running
// anything when the team cannot take the job (another caller is using it, or nparts > 32); the
// caller then falls back to another parallel loop. Exceptions from f are rethrown here.
bool spin_team_run(int nparts, int threads, const std::function<void(int)>& f);

}  // namespace eo
