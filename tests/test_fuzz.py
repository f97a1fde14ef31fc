"""A short run of the fuzzing harness (`make fuzz` runs the long one): every target, a few
hundred seeded inputs each, no failure."""
import pytest

from fuzz.harness import run_all
from fuzz.targets import TARGETS

INPUTS = 500


@pytest.mark.parametrize('target', TARGETS, ids=lambda t: t.name)
def test_a_short_fuzz_run_finds_nothing(target):
    lines = []
    result, = run_all([target], INPUTS, fuzz_seed=15, out=lines.append)
    assert result.inputs >= INPUTS and result.failures == 0, '\n'.join(lines)
