"""Real-time scheduling for the latency-critical nodes (receiver, retarget, actuation).

On a 2-core robot computer anything else that runs (a browser showing the dashboard, a
recorder flushing) delays a frame by a whole time slice under the normal scheduler; under
SCHED_FIFO the pipeline's threads run as soon as they are ready, so the rest of the machine
only uses the time the pipeline leaves (measured: bench/dashboard.py). As `chrt -f` would, it
applies to every thread of the process (the middleware's threads included: a frame waits in
them too), and threads started later inherit it. Linux keeps 5 % of each second for normal
tasks (sched_rt_runtime_us), so a runaway node cannot lock the machine.
"""
import os
from pathlib import Path


def set_realtime_priority(priority: int) -> str:
    """SCHED_FIFO at `priority` (1..99) for every thread of this process; 0 leaves the normal
    scheduler. Returns what holds now, for logs and diagnostics; never raises: without the
    right (root, CAP_SYS_NICE or an rtprio limit) the node runs on, at normal priority."""
    if priority <= 0:
        return 'normal scheduling'
    if not hasattr(os, 'sched_setscheduler'):
        return 'normal scheduling (SCHED_FIFO needs Linux)'
    priority = min(int(priority), os.sched_get_priority_max(os.SCHED_FIFO))
    param = os.sched_param(priority)
    try:
        threads = [int(tid) for tid in os.listdir('/proc/self/task')]
    except OSError:
        threads = [0]
    try:
        for tid in threads:
            try:
                os.sched_setscheduler(tid, os.SCHED_FIFO, param)
            except ProcessLookupError:          # a thread that ended meanwhile
                continue
    except PermissionError:
        limit = _rtprio_limit()
        return (f'normal scheduling: SCHED_FIFO {priority} not permitted (rtprio limit '
                f'{limit}; needs CAP_SYS_NICE or "@group - rtprio {priority}" in '
                f'/etc/security/limits.conf)')
    return f'SCHED_FIFO {priority}'


def _rtprio_limit() -> str:
    try:
        for line in Path('/proc/self/limits').read_text().splitlines():
            if line.startswith('Max realtime priority'):
                return line.split()[3]
    except OSError:
        pass
    return 'unknown'
