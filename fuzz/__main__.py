"""python -m fuzz [--n N] [--seed S] [--only name ...]: the table of inputs, failures and
seconds per target; exit status 1 if any input failed."""
import argparse
import os
import sys

from fuzz.harness import run_all
from fuzz.targets import TARGETS

DEFAULT_SEED = 15


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=1000, help='inputs per target')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED)
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1,
                        help='targets run at once, one process each (default: the CPU count)')
    parser.add_argument('--only', nargs='*', choices=[t.name for t in TARGETS],
                        help='run only these targets')
    parser.add_argument('--list', action='store_true', help='list the targets and exit')
    args = parser.parse_args(argv)
    if args.list:
        for target in TARGETS:
            print(f'{target.name:<18} {target.about}')
        return 0
    targets = [t for t in TARGETS if not args.only or t.name in args.only]
    results = run_all(targets, args.n, args.seed, jobs=args.jobs)
    return 1 if any(r.failures for r in results) else 0


if __name__ == '__main__':
    sys.exit(main())
