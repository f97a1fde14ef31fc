from glob import glob

from setuptools import find_packages, setup

package_name = 'face_dashboard'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/web', glob('web/*')),
        ('share/' + package_name + '/foxglove', glob('foxglove/*.json')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='Face Shadowing Maintainers',
    maintainer_email='maintainers@face-shadowing.org',
    description='Latency tracing and the web dashboard of the face shadowing pipeline.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'dashboard = face_dashboard.dashboard_node:main',
            'foxglove_bridge = face_dashboard.foxglove_bridge_node:main',
            'latency_monitor = face_dashboard.latency_monitor_node:main',
            'face-demo = face_dashboard.demo:main',
        ],
    },
)
