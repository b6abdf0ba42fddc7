#!/usr/bin/env python3
"""Thin entry point: ``python run.py COMMAND ...`` (see ``python run.py --help``)."""

import sys

from cls_app.commands import main

if __name__ == "__main__":
    sys.exit(main())
