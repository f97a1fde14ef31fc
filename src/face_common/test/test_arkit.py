from face_common.arkit import BLENDSHAPE_NAMES, CHANNEL_NAMES, HEAD, NUM_CHANNELS, channel_index


def test_wire_order_facts():
    assert NUM_CHANNELS == 61 and len(BLENDSHAPE_NAMES) == 52
    assert len(set(CHANNEL_NAMES)) == 61
    assert channel_index('jawleft') == 15 and channel_index('JawRight') == 16   # UDP order
    assert channel_index('TongueOut') == 51 and CHANNEL_NAMES[HEAD][0] == 'HeadYaw'
