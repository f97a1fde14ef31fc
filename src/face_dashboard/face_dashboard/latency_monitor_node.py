"""Latency monitor node: joins every node's per-frame stage timings (face/latency) into the
frame's full trace, publishes it on face/latency/frames (with end_to_end_ms) and summarises
each stage over a sliding window (mean, std, p50, p95, p99, max, histogram): typed on
face/latency/summary for the dashboard and terminal monitor, as text in /diagnostics for rqt.

trace_topics: where the stage timings come from. One topic in a single pipeline; a namespaced
pipeline fed by a shared human input (launch/shadow_pair.launch.yaml) adds the input's
/face/latency, so its frames keep their capture stages."""
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.time import Time

from face_common import qos, topics
from face_common.latency import (
    END_TO_END,
    HISTOGRAM_EDGES_MS,
    LatencySummary,
    Stage,
    TraceJoiner,
)
from face_common.node import OK, WARN, FaceNode, publish_status, run_node
from face_msgs.msg import LatencyStage, LatencyTrace, StageTiming
from face_msgs.msg import LatencySummary as LatencySummaryMsg


class LatencyMonitorNode(FaceNode):

    def __init__(self):
        super().__init__('latency_monitor')
        self.declare_parameter('window', 600, ParameterDescriptor(
            description='Frames in the sliding window of the summaries.'))
        self.declare_parameter('warn_p99_ms', 50.0, ParameterDescriptor(
            description='WARN when the end-to-end p99 exceeds this.'))
        self.declare_parameter('diagnostics_period_s', 1.0, ParameterDescriptor(
            description='Period of /diagnostics and summary messages.'))
        self.declare_parameter('trace_topics', [topics.LATENCY.name], ParameterDescriptor(
            description='Topics of per-stage timings to join (relative: in this namespace).'))
        self.joiner = TraceJoiner()
        self.summary = LatencySummary(int(self.get_parameter('window').value))
        self.frames = 0
        self.publisher = self.create_publisher(LatencyTrace, topics.LATENCY_FRAMES.name,
                                               qos.of(topics.LATENCY_FRAMES))
        self.summary_pub = self.create_publisher(LatencySummaryMsg, topics.LATENCY_SUMMARY.name,
                                                 qos.of(topics.LATENCY_SUMMARY))
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name,
                                                     qos.DIAGNOSTICS)
        for topic in dict.fromkeys(self.get_parameter('trace_topics').value):
            self.create_subscription(LatencyTrace, topic, self._on_trace, qos.of(topics.LATENCY))
        self.create_timer(self.get_parameter('diagnostics_period_s').value,
                          self._publish_diagnostics)

    def _on_trace(self, msg: LatencyTrace) -> None:
        stages = [Stage(s.stage, s.node, Time.from_msg(s.start).nanoseconds, s.duration_ms)
                  for s in msg.stages]
        trace = self.joiner.add(Time.from_msg(msg.header.stamp).nanoseconds, stages)
        if trace is None:
            return
        self.summary.add(trace)
        self.frames += 1
        out = LatencyTrace(header=msg.header, frame_number=msg.frame_number,
                           end_to_end_ms=float(trace[END_TO_END]))
        out.stages = [StageTiming(stage=name, duration_ms=float(ms))
                      for name, ms in trace.items() if name != END_TO_END]
        self.publisher.publish(out)

    def _publish_diagnostics(self) -> None:
        summaries = self.summary.summaries()
        self.summary_pub.publish(self._summary_message(summaries))
        total = summaries.get(END_TO_END)
        if total is None or not total.count:
            level, message = WARN, 'no complete frame traces yet'
        else:
            level = WARN if total.p99 > self.get_parameter('warn_p99_ms').value else OK
            message = f'end-to-end p99 {total.p99:.1f} ms over {total.count} frames'
        values = {'frames': self.frames, 'unjoined_dropped': self.joiner.dropped,
                  'incomplete_traces': self.joiner.incomplete}
        for name, s in summaries.items():
            for key in ('mean', 'std', 'p95', 'p99', 'max'):
                values[f'{name} {key} (ms)'] = f'{getattr(s, key):.3f}'
        values['end-to-end histogram edges (ms)'] = ','.join(map(str, HISTOGRAM_EDGES_MS))
        values['end-to-end histogram counts'] = ','.join(
            map(str, self.summary.histogram(END_TO_END)))
        publish_status(self, self.diagnostics_pub, topics.STATUS_LATENCY, 'pipeline',
                       level, message, values)

    def _summary_message(self, summaries: dict) -> LatencySummaryMsg:
        msg = LatencySummaryMsg(frames=self.frames, unjoined_dropped=self.joiner.dropped,
                                incomplete_traces=self.joiner.incomplete)
        msg.header.stamp = self.get_clock().now().to_msg()
        edges = [float(edge) for edge in HISTOGRAM_EDGES_MS]
        msg.stages = [LatencyStage(
            name=name, count=s.count, mean_ms=s.mean, std_ms=s.std, p50_ms=s.p50,
            p95_ms=s.p95, p99_ms=s.p99, max_ms=s.max, histogram_edges_ms=edges,
            histogram_counts=self.summary.histogram(name)) for name, s in summaries.items()]
        return msg


def main(args=None):
    run_node(LatencyMonitorNode, args)


if __name__ == '__main__':
    main()
