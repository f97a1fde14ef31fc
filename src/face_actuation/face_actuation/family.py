"""Families of twins: physics variants of one robot (same motors, limits and effects;
physics drawn from the documented ranges), so models can be scored on heads they were not
tuned on (ROS-free)."""
from dataclasses import replace

import numpy as np

from face_actuation.profile import PHYSICS_RANGES, SEED_LIMIT, RobotProfile

# Drawn for every kind: the actuators, the skin, the interactions and the tracker.
SHARED_PHYSICS = ('time_constant_s', 'noise_std', 'asymmetry', 'saturation',
                  'natural_frequency_hz', 'damping_ratio', 'skin_time_constant_s',
                  'skin_engagement', 'skin_mixing', 'brow_masking', 'jaw_masking',
                  'squint_threshold', 'squint_gain', 'skin_friction', 'noise_correlation',
                  'tracker_latency_frames')
# Drawn only for the kind they belong to (a variant keeps its robot's character; the other
# kinds' terms stay as the profile has them, off)
KIND_PHYSICS = {'cable': ('slack', 'hysteresis', 'coupling'),
                'linkage': ('linkage_angle', 'jaw_coupling'),
                'servo_rig': ('gamma',)}
# A variant always has second-order actuators: drawn from 2 Hz up (0 would switch them off)
SECOND_ORDER_FROM_HZ = 2.0


def family_variant(profile: RobotProfile, index: int, seed: int = 0) -> RobotProfile:
    """Variant `index` of the robot's family drawn with `seed` (the same whatever the family's
    size): every physics parameter uniform in its documented range, a new twin seed."""
    rng = np.random.default_rng([seed, index])
    drawn = {}
    for name in SHARED_PHYSICS + KIND_PHYSICS[profile.kind]:
        lo, hi = PHYSICS_RANGES[name]
        if name == 'natural_frequency_hz':
            lo = SECOND_ORDER_FROM_HZ
        drawn[name] = (int(rng.integers(lo, hi + 1)) if isinstance(lo, int)
                       else float(rng.uniform(lo, hi)))
    drawn['seed'] = int(rng.integers(0, SEED_LIMIT))
    return replace(profile, twin=replace(profile.twin, **drawn))


def sample_family(profile: RobotProfile, count: int, seed: int = 0) -> list:
    """`count` physics variants of the robot."""
    return [family_variant(profile, index, seed) for index in range(count)]


def physics_summary(profile: RobotProfile) -> dict:
    """The twin's physics parameters, for reports."""
    return {name: getattr(profile.twin, name) for name in PHYSICS_RANGES}
