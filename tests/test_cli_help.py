"""Every command-line option the project's tools offer says what it is for: each
add_argument and add_parser call under src/ passes help text (the dataclass-built CLIs get
theirs from face_common.cli_options, which refuses a field without it)."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / 'src'


def lines_without_help(source: str) -> list:
    """Line numbers of add_argument/add_parser calls that pass no help=."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ('add_argument', 'add_parser')
            and not any(k.arg == 'help' for k in node.keywords)]


def test_every_option_of_every_tool_has_help_text():
    sources = [p for p in SRC.rglob('*.py') if 'test' not in p.relative_to(SRC).parts]
    assert len(sources) > 50
    missing = [f'{path.relative_to(SRC)}:{line}' for path in sources
               for line in lines_without_help(path.read_text())]
    assert missing == []


def test_the_check_finds_an_option_or_command_without_help():
    source = ("import argparse\nparser = argparse.ArgumentParser()\n"
              "parser.add_argument('--x', help='said')\nparser.add_argument('--y')\n"
              "parser.add_subparsers().add_parser('show')\n")
    assert lines_without_help(source) == [4, 5]
