from glob import glob

from setuptools import find_packages, setup

package_name = 'face_capture'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/data/takes', glob('data/takes/*')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='Face Shadowing Maintainers',
    maintainer_email='maintainers@face-shadowing.org',
    description='Human face input: Live Link Face UDP, takes, cameras, the VividFace HTTP '
                'stream, neutral calibration.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'livelink_receiver = face_capture.livelink_receiver_node:main',
            'tcp_bridge = face_capture.tcp_bridge_node:main',
            'take_player = face_capture.take_player_node:main',
            'camera = face_capture.camera_node:main',
            'http_stream = face_capture.http_stream_node:main',
            'face_tracker = face_capture.face_tracker_node:main',
            'send_take = face_capture.send_take:main',
            'face-send-take = face_capture.send_take:main',
            'face-monitor = face_capture.monitor:main',
            'face-capture-neutral = face_capture.capture_neutral:main',
        ],
    },
)
