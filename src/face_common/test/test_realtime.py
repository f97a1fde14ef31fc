"""Real-time scheduling reaches every thread of the process, or says why not."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from face_common.realtime import set_realtime_priority

CHILD = """
import json, os, resource, sys, threading
from face_common.realtime import set_realtime_priority
if sys.argv[1:] == ['no-rtprio']:
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
stop = threading.Event()
before = threading.Thread(target=stop.wait); before.start()
state = set_realtime_priority(7)
after = threading.Thread(target=stop.wait); after.start()
policies = {tid: os.sched_getscheduler(int(tid)) for tid in os.listdir('/proc/self/task')}
priorities = {tid: os.sched_getparam(int(tid)).sched_priority for tid in policies}
stop.set()
print(json.dumps({'state': state, 'policies': policies, 'priorities': priorities}))
"""


@pytest.mark.skipif(not hasattr(os, 'sched_setscheduler'), reason='Linux scheduling API')
def test_every_thread_gets_sched_fifo_or_the_reason_is_given():
    # in a child process: this test process stays at normal priority
    out = subprocess.run([sys.executable, '-c', CHILD], capture_output=True, text=True,
                         check=True, timeout=30)
    result = json.loads(out.stdout)
    policies = set(result['policies'].values())
    assert len(result['policies']) == 3          # main, a thread before, a thread after
    if result['state'] == 'SCHED_FIFO 7':
        assert policies == {os.SCHED_FIFO}
        assert set(result['priorities'].values()) == {7}
    else:
        assert result['state'].startswith('normal scheduling: SCHED_FIFO 7 not permitted')
        assert os.SCHED_FIFO not in policies


def test_zero_leaves_the_normal_scheduler():
    before = os.sched_getscheduler(0)
    assert set_realtime_priority(0) == 'normal scheduling'
    assert os.sched_getscheduler(0) == before


def test_without_the_right_the_node_runs_on_at_normal_priority():
    command = [sys.executable, '-c', CHILD, 'no-rtprio']
    if os.geteuid() == 0:                   # root: drop the capability that overrides limits
        if not shutil.which('setpriv'):
            pytest.skip('running as root without setpriv: cannot take the right away')
        command = ['setpriv', '--bounding-set', '-sys_nice', '--inh-caps', '-sys_nice',
                   *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
    result = json.loads(out.stdout)
    assert result['state'].startswith('normal scheduling: SCHED_FIFO 7 not permitted')
    assert 'rtprio limit 0' in result['state']
    assert os.SCHED_FIFO not in set(result['policies'].values())
