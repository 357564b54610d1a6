"""`pydl train --distributed` as mpirun runs it (argv: the train arguments); each rank reports
what it saw so the test can check that rank 0 alone wrote the run and the ranks agree."""
import json
import os
import sys

from pydl.cli import main

rc = main(["train", *sys.argv[1:]])
from pydl.distributed._launcher import world  # noqa: E402

w = world()
with open(f"out_{w.rank}.json", "w") as f:
    json.dump({"rc": rc, "rank": w.rank, "files": sorted(os.listdir(sys.argv[-1]))}, f)
