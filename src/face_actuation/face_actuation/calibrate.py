"""face-calibrate: per-robot calibration overrides (min/max/neutral per motor, native units).

  face-calibrate ROBOT show
  face-calibrate ROBOT set MOTOR [--min V] [--max V] [--neutral V]
  face-calibrate ROBOT capture-neutral [--driver TYPE --port PORT]   # pose the face by hand,
                                                                   # then read it from the motors
  face-calibrate ROBOT reset

Overrides are validated against the profile before they are written (atomically), and every
node applies them on load, so they survive restarts and profile updates. The profile's
min/max are hard limits: an override may narrow a motor's range, never widen it.
"""
import argparse
from pathlib import Path
import sys

import numpy as np

from face_actuation.drivers import DriverError, make_driver
from face_actuation.profile import (
    ProfileError,
    default_calibration_dir,
    load_profile,
    read_calibration,
    save_calibration,
)


def _current_overrides(profile, directory: Path) -> dict:
    path = directory / f'{profile.name}.yaml'
    return read_calibration(path) if path.is_file() else {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('robot', help='robot profile: a shipped name (hobbs, micheal, ameca) '
                                      'or a profile file')
    parser.add_argument('--calibration-dir', type=Path, default=None,
                        help='where overrides are kept (default: $FACE_CALIBRATION_DIR, else '
                             '~/.local/share/face_shadowing/robots, which every node reads)')
    sub = parser.add_subparsers(dest='action', required=True)
    sub.add_parser('show', help='each motor\'s range and neutral, * where overridden')
    setter = sub.add_parser('set', help='override one motor\'s min, max or neutral')
    setter.add_argument('motor', help='motor name as the profile spells it')
    for field in ('min', 'max', 'neutral'):
        setter.add_argument(f'--{field}', type=float,
                            help=f'new {field} in the motor\'s native units')
    capture = sub.add_parser('capture-neutral',
                             help='read every motor\'s position as its neutral')
    capture.add_argument('--driver', default='',
                         help='driver type (default: the profile\'s)')
    capture.add_argument('--port', default='', help='serial port (default: the profile\'s)')
    sub.add_parser('reset', help='remove the overrides: profile defaults apply')
    args = parser.parse_args(argv)
    directory = args.calibration_dir or default_calibration_dir()
    try:
        base = load_profile(args.robot, calibration_dir='/nonexistent')
        overrides = _current_overrides(base, directory)
        if args.action == 'show':
            profile = load_profile(args.robot, calibration_dir=directory)
            print(f'{profile.name}: {"calibrated" if profile.calibrated else "profile defaults"}'
                  f' ({directory / (profile.name + ".yaml")})')
            for motor in profile.motors:
                mark = '*' if motor.name in overrides else ' '
                print(f' {mark} {motor.name:<28} min {motor.min:9.2f}  max {motor.max:9.2f}  '
                      f'neutral {motor.neutral:9.2f} {motor.unit}')
            return 0
        if args.action == 'reset':
            (directory / f'{base.name}.yaml').unlink(missing_ok=True)
            print(f'{base.name}: calibration removed; profile defaults apply')
            return 0
        if args.action == 'set':
            base.index(args.motor)
            change = {k: getattr(args, k) for k in ('min', 'max', 'neutral')
                      if getattr(args, k) is not None}
            if not change:
                parser.error('set needs --min, --max or --neutral')
            overrides.setdefault(args.motor, {}).update(change)
        else:                                            # capture-neutral
            options = {k: v for k, v in (('type', args.driver), ('port', args.port)) if v}
            driver = make_driver(base, options)
            driver.connect()
            try:
                measured = driver.read_positions()
            finally:
                driver.disconnect()
            if measured is None:
                raise DriverError(f'the {driver.name} driver cannot read positions')
            unknown = [m.name for m, v in zip(base.motors, measured, strict=True)
                       if not np.isfinite(v)]
            if unknown:
                raise DriverError(f'no position from {", ".join(unknown[:5])}'
                                  f'{" ..." if len(unknown) > 5 else ""} (a servo that has '
                                  f'had no target sends no pulses): nothing saved')
            for motor, value in zip(base.motors, base.to_native(measured), strict=True):
                overrides.setdefault(motor.name, {})['neutral'] = round(float(value), 3)
        path = save_calibration(base, overrides, directory)
        print(f'{base.name}: calibration saved to {path}')
        return 0
    except (ProfileError, DriverError) as exc:
        print(f'face-calibrate: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
