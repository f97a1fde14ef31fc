"""Command-line tools: face-bag-info, face-bag-recover, face-bag-export, face-session-report."""
import argparse
import json
from pathlib import Path
import sys

from face_bag.export import ExportError, export_dataset
from face_bag.store import BagError, bag_info, recover


def info_main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='What a bag holds (like `ros2 bag info`).')
    parser.add_argument('bag', type=Path, help='bag folder (with metadata.yaml)')
    args = parser.parse_args(argv)
    try:
        info = bag_info(args.bag)
    except (BagError, OSError) as exc:
        print(f'face-bag-info: {args.bag}: {exc}', file=sys.stderr)
        return 2
    print(f'{info["path"]}: {info["messages"]} messages, {info["duration_s"]:.2f} s (mcap)')
    for topic, item in info['topics'].items():
        print(f'  {topic:<28} {item["type"]:<30} {item["count"]}')
    return 0


def recover_main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Make a bag whose recorder was killed (or ran out of disk) readable: '
                    'keeps every complete chunk (what `ros2 bag reindex` does).')
    parser.add_argument('bag', type=Path, help='bag folder to make readable in place')
    args = parser.parse_args(argv)
    try:
        result = recover(args.bag)
    except (BagError, OSError) as exc:
        print(f'face-bag-recover: {exc}', file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


def export_main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Bags -> aligned training windows (delay estimated and compensated, '
                    'split by episode) + a dataset card.')
    parser.add_argument('bags', nargs='*', type=Path, help='dynamic recordings')
    parser.add_argument('--static', nargs='*', type=Path, default=[],
                        help='recordings of held poses (the static stage)')
    parser.add_argument('--out', type=Path, required=True,
                        help='folder for dataset.npz and card.md')
    parser.add_argument('--window', type=int, default=60,
                        help='frames per training window (default: %(default)s)')
    parser.add_argument('--stride', type=int, default=2,
                        help='frames between window starts (default: %(default)s)')
    parser.add_argument('--rate', type=float, default=30.0,
                        help='frames per second of the grid the bags are aligned on '
                             '(default: %(default)s)')
    parser.add_argument('--validation-fraction', type=float, default=0.2,
                        help='share of episodes held out for validation '
                             '(default: %(default)s)')
    args = parser.parse_args(argv)
    try:
        card = export_dataset(args.bags, args.out, args.static, args.window, args.stride,
                              args.rate, args.validation_fraction)
    except (ExportError, BagError, OSError) as exc:
        print(f'face-bag-export: {exc}', file=sys.stderr)
        return 2
    print(f'{args.out / "dataset.npz"}: windows {card["windows"]}, delay '
          f'{card["delay_frames"]} frames, static poses {card["static_poses"]} '
          f'(card: {args.out / "card.md"})')
    return 0


def session_main(argv=None) -> int:
    from face_bag.session import markdown, session_report
    parser = argparse.ArgumentParser(
        description='A recorded shadowing session from its bag: side-by-side video (human | '
                    'robot), blendshape distance, jitter, latency percentiles, drops.')
    parser.add_argument('bag', type=Path, help='the session\'s bag folder')
    parser.add_argument('--out', type=Path, required=True,
                        help='folder for summary.json, summary.md and side_by_side.mp4')
    parser.add_argument('--no-video', action='store_true',
                        help='figures only, no side-by-side video')
    args = parser.parse_args(argv)
    try:
        summary = session_report(args.bag, args.out, video=not args.no_video)
    except (BagError, OSError) as exc:
        print(f'face-session-report: {exc}', file=sys.stderr)
        return 2
    print(markdown(summary), end='')
    return 0
