"""Shared, ROS-light pieces of the face shadowing stack: ARKit channel tables, QoS profiles,
rolling statistics and the launch runner for machines without ros2cli."""
