"""The shipped Foxglove layout (foxglove/face_shadowing.layout.json, Layouts > Import) shows
what the pipeline really publishes: every panel it arranges is configured, every topic it
reads is one the bridge serves (and the bags hold), every message path names a field of that
topic's message type, and each blendshape plot's label is the ARKit channel at its index."""
import json
from pathlib import Path
import re

from face_common.arkit import CHANNEL_NAMES
from face_dashboard.foxglove_bridge_node import SERVED_TOPICS, message_class

LAYOUT = Path(__file__).resolve().parent.parent / 'foxglove' / 'face_shadowing.layout.json'
# The layout views a pipeline at the root namespace, where the bridge's relative names resolve.
SERVED = {'/' + name.lstrip('/'): msgtype for name, msgtype in SERVED_TOPICS.items()}
PATH = re.compile(r'^(?P<topic>/[\w/]+)\.(?P<field>\w+)(?:\[(?P<index>\d+|:)\])?$')


def panels(tree):
    if isinstance(tree, str):
        return [tree]
    return panels(tree['first']) + panels(tree['second'])


def message_paths(config):
    for panel, settings in config.items():
        for series in settings.get('paths', []):
            yield panel, series


def test_the_layout_arranges_exactly_its_configured_panels():
    layout = json.loads(LAYOUT.read_text())
    arranged = panels(layout['layout'])
    assert sorted(arranged) == sorted(layout['configById'])
    kinds = {panel.split('!')[0] for panel in arranged}
    assert {'Image', 'Plot', 'DiagnosticSummary'} <= kinds


def test_every_topic_and_field_the_layout_reads_exists():
    config = json.loads(LAYOUT.read_text())['configById']
    topics = {config['Image!robotface']['imageMode']['imageTopic'],
              config['RawMessages!human']['topicPath'],
              config['DiagnosticSummary!health']['topicToRender']}
    plotted = 0
    for panel, series in message_paths(config):
        match = PATH.match(series['value'])
        assert match, (panel, series['value'])
        topic, field, index = match['topic'], match['field'], match['index']
        topics.add(topic)
        fields = message_class(SERVED[topic]).get_fields_and_field_types()
        assert field in fields, (panel, series['value'])
        if field == 'weights' and index not in (None, ':'):
            assert series['label'].split()[-1] == CHANNEL_NAMES[int(index)], series
            plotted += 1
    assert topics <= set(SERVED), topics - set(SERVED)
    assert plotted >= 6          # human and robot faces, side by side
