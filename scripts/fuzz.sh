#!/usr/bin/env bash
# Fuzz every parser and input boundary (fuzz/): `make fuzz N=100000 [SEED=15]`. Prints, per
# target, the inputs run, the failures and the seconds; exit status 1 if any input failed.
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "$0")/env.sh"
export PYTHONUNBUFFERED=1
exec python -m fuzz "$@"
