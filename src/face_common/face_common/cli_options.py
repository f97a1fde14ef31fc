"""Command-line options built from a dataclass, so a setting is declared once (name, type,
default, help) and every CLI that exposes it agrees with the code that uses it.

A field becomes `--field-name`; its help text is the field's `help` metadata (declare fields
with `option(default, help)`), and a field without a default is a required option. Booleans
get `--x/--no-x`; tuples take as many values as their default has. Every field is an option:
a setting that should not be one belongs outside the dataclass.
"""
import argparse
from dataclasses import MISSING, field, fields


def option(default=MISSING, help: str = ''):
    """A dataclass field with the help text its command-line option shows."""
    return field(default=default, metadata={'help': help})


def add_options(parser: argparse.ArgumentParser, cls, defaults=None) -> None:
    """One option per field of dataclass `cls`; `defaults` (an instance) overrides the field
    defaults, so a preset is the same options with other starting values."""
    for f in fields(cls):
        help_text = f.metadata.get('help', '')
        if not help_text:
            raise ValueError(f'{cls.__name__}.{f.name} has no help text for its option')
        flag = '--' + f.name.replace('_', '-')
        default = getattr(defaults, f.name) if defaults is not None else f.default
        if f.default is MISSING:
            # No default to show: help formatters that print defaults would say 'None'.
            parser.add_argument(flag, type=f.type, required=True, default=argparse.SUPPRESS,
                                help=help_text)
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=help_text)
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=type(default[0]), nargs=len(default),
                                default=default, help=help_text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=help_text)


def from_options(cls, args: argparse.Namespace):
    """The dataclass `cls` from options parsed after add_options (lists back to tuples)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
