from glob import glob

from setuptools import find_packages, setup

package_name = 'face_bag'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='Face Shadowing Maintainers',
    maintainer_email='maintainers@face-shadowing.org',
    description='rosbag2 record/replay of the face topics and dataset export.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'recorder = face_bag.recorder_node:main',
            'player = face_bag.player_node:main',
            'face-bag-export = face_bag.cli:export_main',
            'face-bag-recover = face_bag.cli:recover_main',
            'face-bag-info = face_bag.cli:info_main',
            'face-session-report = face_bag.cli:session_main',
        ],
    },
)
