from glob import glob

from setuptools import find_packages, setup

package_name = 'face_retarget'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        *[('share/' + package_name + '/' + d, glob(d + '/*'))
          for d in sorted(glob('checkpoints/*'))],
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='Face Shadowing Maintainers',
    maintainer_email='maintainers@face-shadowing.org',
    description='Retargeting human facial expression to robot control values.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'retarget = face_retarget.retarget_node:main',
            'shadow_composed = face_retarget.composed:main',
            'face-retarget-train = face_retarget.cli:train_main',
            'face-retarget-eval = face_retarget.cli:eval_main',
            'face-retarget-bootstrap = face_retarget.cli:bootstrap_main',
        ],
    },
)
