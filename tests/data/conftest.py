"""Makes the fixture-tree builders (``fixture_trees.py``) importable by the data tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
