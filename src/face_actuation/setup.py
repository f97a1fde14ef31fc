from glob import glob

from setuptools import find_packages, setup

package_name = 'face_actuation'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/profiles', glob('profiles/*.yaml')),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='Face Shadowing Maintainers',
    maintainer_email='maintainers@face-shadowing.org',
    description='Robot profiles, safety layer, digital twins and drivers for robot faces.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'actuation = face_actuation.actuation_node:main',
            'face-calibrate = face_actuation.calibrate:main',
            'face-emulate = face_actuation.emulators:main',
            'face-ameca-keys = face_actuation.tritium.ameca_keys:main',
        ],
    },
)
