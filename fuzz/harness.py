"""Runs fuzz targets with hypothesis: a fixed seed, no example database, no shrinking, every
failure counted rather than stopping at the first, and a time limit per input (an input that
never ends, like a self-referencing launch argument, is a failure, not a hang)."""
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
import multiprocessing
from pathlib import Path
import signal
import tempfile
import time
import traceback

from hypothesis import HealthCheck, Phase, given, seed, settings

INPUT_TIME_LIMIT_S = 60.0      # far above any input that ends, even on a loaded machine
EXAMPLES_KEPT = 3


class InputTimeout(Exception):
    """An input ran past INPUT_TIME_LIMIT_S."""


@dataclass
class Target:
    """strategy: what to generate; check(value, workdir): raises on a violated oracle."""

    name: str
    strategy: object
    check: object
    about: str = ''


@dataclass
class Result:
    name: str
    inputs: int = 0
    failures: int = 0
    seconds: float = 0.0
    examples: list = field(default_factory=list)     # (error, input) of the first failures


def _on_alarm(signum, frame):
    raise InputTimeout(f'input ran past {INPUT_TIME_LIMIT_S} s')


def run_target(target: Target, inputs: int, fuzz_seed: int) -> Result:
    result = Result(target.name)
    with tempfile.TemporaryDirectory(prefix=f'fuzz-{target.name}-') as workdir:
        def one(value):
            previous = signal.signal(signal.SIGALRM, _on_alarm)
            # Repeats each second after the limit: an alarm that lands in a gc callback is
            # swallowed there ("Exception ignored"), the next one ends the input.
            signal.setitimer(signal.ITIMER_REAL, INPUT_TIME_LIMIT_S, 1.0)
            try:
                target.check(value, workdir)
                result.inputs += 1
            except Exception as exc:          # every failure is counted, none stops the run
                result.inputs += 1
                result.failures += 1
                if len(result.examples) < EXAMPLES_KEPT:
                    where = traceback.extract_tb(exc.__traceback__)[-1]
                    result.examples.append((f'{type(exc).__name__}: {str(exc)[:200]} '
                                            f'({Path(where.filename).name}:{where.lineno})',
                                            repr(value)[:300]))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

        test = settings(max_examples=inputs, database=None, deadline=None,
                        phases=[Phase.generate],
                        suppress_health_check=list(HealthCheck))(given(target.strategy)(one))
        started = time.monotonic()
        seed(fuzz_seed)(test)()
        result.seconds = time.monotonic() - started
    return result


_SHARED_TARGETS = []        # strategies do not pickle: forked workers find targets by index


def _run_shared(index: int, inputs: int, fuzz_seed: int) -> Result:
    return run_target(_SHARED_TARGETS[index], inputs, fuzz_seed)


def _row(result: Result) -> str:
    return f'{result.name:<18} {result.inputs:>9} {result.failures:>9} {result.seconds:>9.1f}'


def run_all(targets, inputs: int, fuzz_seed: int, out=print, jobs: int = 1) -> list:
    """Every target (in `jobs` processes at once); prints a row per target as it finishes,
    then the table in target order with totals."""
    out(f'fuzz: seed {fuzz_seed}, {inputs} inputs per target, {jobs} job(s) '
        f'(rerun: make fuzz N={inputs} SEED={fuzz_seed})')
    started = time.monotonic()
    if jobs <= 1:
        results = []
        for target in targets:
            results.append(run_target(target, inputs, fuzz_seed))
            out(_row(results[-1]))
    else:
        _SHARED_TARGETS[:] = targets                # inherited by the forked workers
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('fork')) as pool:
            futures = [pool.submit(_run_shared, i, inputs, fuzz_seed)
                       for i in range(len(targets))]
            for future in as_completed(futures):
                out(_row(future.result()))
            results = [future.result() for future in futures]
    out(f'\n{"target":<18} {"inputs":>9} {"failures":>9} {"seconds":>9}')
    for result in results:
        out(_row(result))
        for error, value in result.examples:
            out(f'    {error}\n      input: {value}')
    out(f'{"all targets":<18} {sum(r.inputs for r in results):>9} '
        f'{sum(r.failures for r in results):>9} {sum(r.seconds for r in results):>9.1f}'
        f'  ({time.monotonic() - started:.1f} s wall clock)')
    return results
