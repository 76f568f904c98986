"""shmforest.pool: non-daemonic worker processes, bounded by one process budget.

::

    owner process                                       worker processes (children)
    -------------                                       ---------------------------
    submit(fn)                                          main thread: one task at a time
      cloudpickle (fn, args, kwargs)                    reader thread: every message in
      idle worker?          -- RUN(id, bytes) ------->    RUN -> job queue -> run -> DONE
      else budget token?    -- start worker, RUN ---->
      else any worker?      -- queue (top level only)
      else                  -- run inline, here
    dispatcher thread  <------------- DONE(id, bytes) --  result or exception, pickled
      top-level task: unpickle, set the Future
      nested task: forward the bytes unopened --------->  NESTED_DONE -> requester's Future
                       <------------- SUBMIT(id, bytes) -- worker_submit(fn) in a task
      idle worker / new worker with a token:
        RUN to it, DECISION(dispatched) ------------->    wait for NESTED_DONE
      else DECISION(inline) ------------------------->    run it in place, now
      worker died (sentinel / EOF): its token goes back;
        its task runs again on a fresh worker (max_retries times at most,
        a warning each), then fails with WorkerCrashedError

All workers are children of the owner: a nested submission never starts a
grandchild, so live workers never exceed the tokens the pool holds. A worker
keeps its token while alive (an idle worker is reused, not restarted) and the
pool gives it back when the worker exits or dies. Tokens come from a
:class:`~shmforest.budget.ProcessBudget` shared with every other pool of the
process tree, so pools created inside tasks draw on the same tokens.

==========  ===========================================================
workerpool  :class:`WorkerPool`, ``worker_submit``, ``in_worker``: the public face
owner       the owner's side: workers, tokens, the dispatcher thread
worker      the worker's side: its main loop, nested submission, the orphan watchdog
wire        what both sides share: message headers, pickled tasks and outcomes
launch      how workers start (fork, spawn, forkserver) and what they preload
==========  ===========================================================
"""

from __future__ import annotations

from shmforest.pool.launch import START_METHOD_ENV_VAR, default_start_method, preload_in_workers
from shmforest.pool.workerpool import WorkerPool, check_max_retries, in_worker, worker_free_workers, worker_submit

__all__ = [
    "START_METHOD_ENV_VAR",
    "WorkerPool",
    "check_max_retries",
    "default_start_method",
    "in_worker",
    "preload_in_workers",
    "worker_free_workers",
    "worker_submit",
]
