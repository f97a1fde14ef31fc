"""The latency monitor node in a namespace: it joins its pipeline's stage timings with those
of a shared human input at the root, and publishes the summary as a LatencySummary message
(what the dashboard and terminal monitor read) beside the human-readable /diagnostics."""
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.time import Time

from face_common import qos, topics
from face_common.latency import (
    DECODE,
    END_TO_END,
    HISTOGRAM_EDGES_MS,
    INFERENCE,
    PREPROCESS,
    QUEUE,
    SAFETY_DRIVER,
)
from face_common.messages import latency_msg
from face_msgs.msg import LatencySummary, LatencyTrace

pytestmark = pytest.mark.ros
MS = 1_000_000
FRAMES = 100


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_summary_message_of_a_namespaced_pipeline_fed_by_a_shared_input(ros_node,
                                                                        node_process):
    monitor = node_process('face_dashboard', 'latency_monitor', namespace='/pair', params={
        'trace_topics': "['face/latency', '/face/latency']", 'diagnostics_period_s': 0.2})
    summaries = ros_node.subscribe(LatencySummary, '/pair/face/latency/summary',
                                   qos.of(topics.LATENCY_SUMMARY))
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    shared = ros_node.node.create_publisher(LatencyTrace, '/face/latency', qos.TRACE)
    own = ros_node.node.create_publisher(LatencyTrace, '/pair/face/latency', qos.TRACE)
    assert wait_until(lambda: shared.get_subscription_count() and
                      own.get_subscription_count(), 15), monitor.output()
    time.sleep(0.5)
    inference_ms = [2.0 + (i % 10) for i in range(FRAMES)]
    clock = ros_node.node.get_clock()
    for i, inference in enumerate(inference_ms):
        now = clock.now()
        t = now.nanoseconds
        stamp = Time(nanoseconds=t - 5 * MS).to_msg()
        shared.publish(latency_msg(stamp, i, 'capture', [(DECODE, t - 5 * MS, 0.5),
                                                         (PREPROCESS, t - 4 * MS, 0.3)]))
        own.publish(latency_msg(stamp, i, 'retarget', [(INFERENCE, t - 3 * MS, inference)]))
        end = t - 3 * MS + int(inference * MS) + MS
        own.publish(latency_msg(stamp, i, 'actuation', [(QUEUE, end, 1.0),
                                                        (SAFETY_DRIVER, end + MS, 0.2)]))
        time.sleep(0.005)
    assert wait_until(lambda: summaries.snapshot() and
                      summaries.snapshot()[-1].frames == FRAMES, 10), monitor.output()
    summary = summaries.snapshot()[-1]
    stages = {stage.name: stage for stage in summary.stages}
    assert summary.stages[-1].name == END_TO_END
    assert {DECODE, PREPROCESS, INFERENCE, QUEUE, SAFETY_DRIVER,
            'transmission capture->retarget', 'transmission retarget->actuation'} < set(stages)
    assert summary.incomplete_traces == 0              # every frame kept its capture stages
    inference = stages[INFERENCE]
    assert inference.count == FRAMES
    assert inference.mean_ms == pytest.approx(np.mean(inference_ms), abs=1e-3)
    assert inference.p99_ms == pytest.approx(np.percentile(inference_ms, 99), abs=1e-3)
    assert inference.max_ms == pytest.approx(11.0, abs=1e-3)
    for stage in summary.stages:
        assert list(stage.histogram_edges_ms) == [float(e) for e in HISTOGRAM_EDGES_MS]
        assert len(stage.histogram_counts) == len(stage.histogram_edges_ms) - 1
        assert sum(stage.histogram_counts) == stage.count
    assert list(inference.histogram_counts[1:6]) == [20, 20, 20, 20, 20]   # 2-11 ms, 2 ms bins

    # /diagnostics keeps the text for rqt, under the namespace's status name.
    def latency_status():
        for array in reversed(diagnostics.snapshot()):
            for status in array.status:
                if status.name == 'pair/' + topics.STATUS_LATENCY:
                    return {kv.key: kv.value for kv in status.values}
        return None
    assert wait_until(lambda: (latency_status() or {}).get('frames') == str(FRAMES), 5)
    values = latency_status()
    assert float(values['inference p99 (ms)']) == pytest.approx(inference.p99_ms, abs=1e-3)
