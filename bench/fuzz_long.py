"""The fuzz tests with the long profile: many more generated cases, a random seed each run.

    python bench/fuzz_long.py                 # FUZZ_SCALE=25 x the CI case counts
    python bench/fuzz_long.py --scale 100 -k "readers or tables"

Prints, per reader / command, how many generated cases ran and whether the property held
(see tests/test_fuzz.py); failures are listed by pytest with the falsifying example.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=int, default=25, help="cases = scale x the CI profile's (default 25)")
    p.add_argument("-k", dest="select", help="pytest -k expression (e.g. 'not subprocess')")
    args = p.parse_args()
    os.environ["FUZZ_PROFILE"] = "fuzz-long"
    os.environ["FUZZ_SCALE"] = str(args.scale)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import pytest

    from tests import fuzzing

    t0 = time.perf_counter()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", "tests/test_fuzz.py", *(["-k", args.select] if args.select
                                                                                  else [])])
    seconds = time.perf_counter() - t0
    print(f"\ncases tried per reader / command (scale {args.scale}, {seconds:.0f} s, pytest exit {int(rc)}):")
    for name, n in sorted(fuzzing.CASES.items()):
        print(f"  {name:<20} {n:>7}")
    print(f"  {'total':<20} {sum(fuzzing.CASES.values()):>7}")
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
