import sys
from pathlib import Path

# The hand-built ticket factory lives with the export tests; share it without making tests/ a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
