"""Shared pieces of the face shadowing stack.

Pure (no ROS; src/face_common/test/test_ros_free.py imports them with ROS hidden): arkit
(channel names and counts), frames (a Blendshapes message as 61 values), stats, latency,
metrics, pacing, atomic, paths, realtime, render (OpenCV drawing), topics (the
topic/service/status name table), cli_options (CLIs from config dataclasses), and
launch_runner (face-launch, for machines without ros2cli).
ROS glue, for nodes only: messages (building rclpy messages), node, qos."""
