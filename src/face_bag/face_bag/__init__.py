"""rosbag2 record/replay of the face topics (MCAP, via rosbags) and dataset export."""
