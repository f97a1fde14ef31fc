"""run_node: a Ctrl-C that rclpy's message conversion turns into a RuntimeError still ends the
node cleanly, and a RuntimeError without a Ctrl-C still fails it (real rclpy, own process)."""
import os
import subprocess
import sys
import textwrap

import pytest

NODE = textwrap.dedent('''
    import os, signal, sys
    from face_common.node import run_node
    from rclpy.node import Node

    class ConversionNode(Node):
        """A timer callback that does what rclpy's take_message does to a KeyboardInterrupt
        raised inside the message conversion: pybind11 reports it as a RuntimeError."""
        def __init__(self):
            super().__init__('conversion_node')
            self.create_timer(0.05, self.tick)

        def tick(self):
            try:
                if sys.argv[1] == 'interrupted':
                    os.kill(os.getpid(), signal.SIGINT)
                    for _ in range(1000):           # the Python handler runs in here
                        pass
            except KeyboardInterrupt:
                pass
            raise RuntimeError("Unable to convert call argument '0' to Python object")

    run_node(ConversionNode)
    print('ended cleanly')
''')


@pytest.mark.parametrize('case, clean', [('interrupted', True), ('not_interrupted', False)])
def test_a_ctrl_c_inside_message_conversion_ends_the_node_cleanly(case, clean, tmp_path):
    env = dict(os.environ, ROS_DOMAIN_ID=os.environ.get('ROS_DOMAIN_ID', '0'))
    result = subprocess.run([sys.executable, '-c', NODE, case], capture_output=True, text=True,
                            timeout=60, env=env)
    output = result.stdout + result.stderr
    if clean:
        assert result.returncode == 0 and 'ended cleanly' in output, output
        assert 'Traceback' not in output, output
    else:
        assert result.returncode != 0 and 'Unable to convert' in output, output


TOOL = textwrap.dedent('''
    import os, signal, sys, time
    import rclpy
    from face_common.node import start_cli_node

    def make():
        """A Ctrl-C lands while the tool makes its node (a demo stopping a monitor it has
        just started): the real signal, through rclpy's own handler."""
        if sys.argv[1] == 'interrupted':
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        if sys.argv[1] == 'interrupted_inside_rcl':   # rclpy's handler ran, Python's not yet
            try:
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(1000):
                    pass
            except KeyboardInterrupt:
                pass
            for _ in range(200):          # rclpy's signal thread shuts the context down
                if not rclpy.ok():
                    break
                time.sleep(0.01)
        return rclpy.create_node('cli_tool')

    rclpy.init()
    node = start_cli_node(make)
    print('no node' if node is None else 'node made')
''')


@pytest.mark.parametrize('case, expected', [('interrupted', 'no node'),
                                            ('interrupted_inside_rcl', 'no node'),
                                            ('not_interrupted', 'node made')])
def test_a_ctrl_c_while_a_tool_makes_its_node_ends_it_without_a_traceback(case, expected):
    env = dict(os.environ, ROS_DOMAIN_ID=os.environ.get('ROS_DOMAIN_ID', '0'))
    result = subprocess.run([sys.executable, '-c', TOOL, case], capture_output=True, text=True,
                            timeout=60, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and expected in output, output
    assert 'Traceback' not in output, output
