"""ARKit face channels in Live Link Face wire order (Unreal's EARFaceBlendShape).

The 61 values a Live Link Face packet carries: 52 blendshapes (0..1) then 9 rotations
(head yaw/pitch/roll, left eye yaw/pitch/roll, right eye yaw/pitch/roll, radians).
Everything in the stack matches channels by these names, never by CSV column position.
"""

BLENDSHAPE_NAMES = (
    'EyeBlinkLeft', 'EyeLookDownLeft', 'EyeLookInLeft', 'EyeLookOutLeft', 'EyeLookUpLeft',
    'EyeSquintLeft', 'EyeWideLeft', 'EyeBlinkRight', 'EyeLookDownRight', 'EyeLookInRight',
    'EyeLookOutRight', 'EyeLookUpRight', 'EyeSquintRight', 'EyeWideRight', 'JawForward',
    'JawLeft', 'JawRight', 'JawOpen', 'MouthClose', 'MouthFunnel', 'MouthPucker', 'MouthLeft',
    'MouthRight', 'MouthSmileLeft', 'MouthSmileRight', 'MouthFrownLeft', 'MouthFrownRight',
    'MouthDimpleLeft', 'MouthDimpleRight', 'MouthStretchLeft', 'MouthStretchRight',
    'MouthRollLower', 'MouthRollUpper', 'MouthShrugLower', 'MouthShrugUpper', 'MouthPressLeft',
    'MouthPressRight', 'MouthLowerDownLeft', 'MouthLowerDownRight', 'MouthUpperUpLeft',
    'MouthUpperUpRight', 'BrowDownLeft', 'BrowDownRight', 'BrowInnerUp', 'BrowOuterUpLeft',
    'BrowOuterUpRight', 'CheekPuff', 'CheekSquintLeft', 'CheekSquintRight', 'NoseSneerLeft',
    'NoseSneerRight', 'TongueOut',
)

ROTATION_NAMES = (
    'HeadYaw', 'HeadPitch', 'HeadRoll',
    'LeftEyeYaw', 'LeftEyePitch', 'LeftEyeRoll',
    'RightEyeYaw', 'RightEyePitch', 'RightEyeRoll',
)

CHANNEL_NAMES = BLENDSHAPE_NAMES + ROTATION_NAMES

NUM_BLENDSHAPES = len(BLENDSHAPE_NAMES)   # 52
NUM_ROTATIONS = len(ROTATION_NAMES)       # 9
NUM_CHANNELS = len(CHANNEL_NAMES)         # 61

# Slices into a 61-value frame.
HEAD = slice(NUM_BLENDSHAPES, NUM_BLENDSHAPES + 3)
LEFT_EYE = slice(NUM_BLENDSHAPES + 3, NUM_BLENDSHAPES + 6)
RIGHT_EYE = slice(NUM_BLENDSHAPES + 6, NUM_BLENDSHAPES + 9)

CHANNEL_INDEX = {name.lower(): i for i, name in enumerate(CHANNEL_NAMES)}


def channel_index(name: str) -> int:
    """Index of a channel in wire order; case-insensitive (exports vary in spelling)."""
    return CHANNEL_INDEX[name.lower()]

# What retargeting models read from a human frame: the 52 blendshapes and the head rotation
# (the 55 input channels of the ExFace paper). Eye rotations are left out: the EyeLook*
# blendshapes already carry gaze.
RETARGET_INPUT = tuple(range(NUM_BLENDSHAPES)) + tuple(range(HEAD.start, HEAD.stop))
