"""Command-line options from a dataclass: one flag per field with its help, presets as other
defaults, and the parsed options back as the dataclass."""
import argparse
from dataclasses import dataclass

import pytest

from face_common.cli_options import add_options, from_options, option


@dataclass
class Settings:
    robot: str = option(help='which robot')
    steps: int = option(100, 'training steps')
    mirror: bool = option(False, 'mirror the poses')
    speeds: tuple = option((0.8, 1.25), 'slowest and fastest speed')


def parse(argv, defaults=None):
    parser = argparse.ArgumentParser()
    add_options(parser, Settings, defaults)
    return parser, from_options(Settings, parser.parse_args(argv))


def test_fields_become_typed_options_with_their_help():
    parser, settings = parse(['--robot', 'hobbs', '--steps', '7', '--mirror', '--speeds', '1',
                              '2'])
    assert settings == Settings('hobbs', 7, True, (1.0, 2.0))
    assert {a.dest: a.help for a in parser._actions if a.dest != 'help'} == {
        'robot': 'which robot', 'steps': 'training steps', 'mirror': 'mirror the poses',
        'speeds': 'slowest and fastest speed'}
    assert parse(['--robot', 'ameca', '--no-mirror'])[1] == Settings('ameca')


def test_a_field_without_a_default_is_required():
    with pytest.raises(SystemExit):
        parse([])


def test_help_shows_each_default_and_none_for_a_required_option():
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_options(parser, Settings)
    text = ' '.join(parser.format_help().split())
    assert '--robot ROBOT which robot --steps' in text
    assert 'training steps (default: 100)' in text
    assert 'None' not in text


def test_a_preset_changes_the_defaults_not_the_options():
    _, settings = parse(['--robot', 'hobbs'], Settings('', steps=5, mirror=True))
    assert settings == Settings('hobbs', 5, True)


def test_a_field_without_help_is_refused():
    @dataclass
    class Bare:
        steps: int = 3

    with pytest.raises(ValueError, match=r'Bare\.steps has no help text'):
        add_options(argparse.ArgumentParser(), Bare)
