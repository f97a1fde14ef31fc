"""The foreign head as a robot on the ROS graph, in its own process: it stands where the
actuation node would, on the topics the product drives a robot through. face/command goes
through the product's safety layer (range, velocity and acceleration limits, watchdog) into
the head's own physics; it publishes the MEASURED motor positions on face/robot/applied and
its tracker's delayed, noisy reading on face/robot/blendshapes, both stamped with the command
they answer (as the actuation node does).

    python tests/foreign_head/node.py --seed 3 [--rate 60]
"""
import argparse
from pathlib import Path
import sys
import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from head import PROFILE, build_head

from face_actuation.profile import load_profile
from face_actuation.safety import SafetyLayer
from face_common import qos, topics
from face_common.messages import blendshapes_msg, control_values_msg
from face_msgs.msg import Blendshapes, ControlValues


class ForeignHeadNode:

    def __init__(self, seed: int, rate: float):
        self.profile = load_profile(PROFILE)
        self.head = build_head(seed, self.profile.motor_names, self.profile.neutral, seed + 1)
        self.safety = SafetyLayer(self.profile)
        self.safety.start_active(self.profile.neutral)
        self.index = {name: i for i, name in enumerate(self.profile.motor_names)}
        self.rate = rate
        self.lock = threading.Lock()
        self.stamp, self.accepted, self.rejected = None, 0, 0
        self.node = rclpy.create_node('foreign_head')
        self.applied = self.node.create_publisher(ControlValues, topics.ROBOT_APPLIED.name,
                                                  qos.of(topics.ROBOT_APPLIED))
        self.face = self.node.create_publisher(Blendshapes, topics.ROBOT_BLENDSHAPES.name,
                                               qos.of(topics.ROBOT_BLENDSHAPES))
        self.node.create_subscription(ControlValues, topics.COMMAND.name, self.on_command,
                                      qos.of(topics.COMMAND))
        self.started = time.monotonic()

    def on_command(self, msg: ControlValues) -> None:
        values = self.profile.neutral.copy()
        try:
            for name, value in zip(msg.motor_names, msg.values, strict=True):
                values[self.index[name]] = value
        except (KeyError, ValueError) as exc:
            self.rejected += 1
            self.node.get_logger().warn(f'command rejected ({exc!r})', throttle_duration_sec=2.0)
            return
        with self.lock:
            if self.safety.command(values, time.monotonic() - self.started):
                self.stamp = msg.header.stamp
                self.accepted += 1

    def run(self, running) -> None:
        period = 1.0 / self.rate
        next_tick = time.monotonic()
        while running():
            with self.lock:
                positions = self.safety.update(period)
                stamp = self.stamp or self.node.get_clock().now().to_msg()
                accepted = self.accepted
            if positions is None:                     # e-stopped limp: hold where it is
                positions = self.head.position
            measured, reading = self.head.step(positions, period)
            self.applied.publish(control_values_msg(
                measured, self.profile.motor_names, stamp, robot=self.profile.name,
                source='foreign_head', frame_id='applied'))
            self.face.publish(blendshapes_msg(reading, stamp, source='foreign_tracker',
                                              subject=self.profile.name,
                                              frame_id='robot_face', frame_number=accepted))
            next_tick += period
            time.sleep(max(0.0, next_tick - time.monotonic()))
            if next_tick < time.monotonic() - period:          # fell behind: do not race
                next_tick = time.monotonic()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=0, help='which head the sampler draws')
    parser.add_argument('--rate', type=float, default=60.0, help='control ticks per second')
    args = parser.parse_args(argv)
    rclpy.init()
    head = ForeignHeadNode(args.seed, args.rate)
    executor = SingleThreadedExecutor()
    executor.add_node(head.node)
    running = threading.Event()
    running.set()
    worker = threading.Thread(target=head.run, args=(running.is_set,), daemon=True)
    worker.start()
    head.node.get_logger().info(f'foreign head {args.seed} up, {args.rate:.0f} Hz')
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        running.clear()
        worker.join(timeout=2.0)
        head.node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
