"""Register-spill check for the built CUDA module: ``python cuda/check_spills.py [MODULE.so]``.

Runs ``cuobjdump -res-usage`` on pydl._C_cuda and fails (exit 1) when any kernel, for any
architecture in the fat binary, uses more local memory (LOCAL: register spills and local
arrays) or stack (STACK) than the budget below. It also checks that the fat binary holds SASS
for sm_80 and sm_90 and PTX for newer GPUs to JIT.

Budget: 0 bytes of LOCAL and STACK for every kernel. Every kernel meets it today with nvcc 13.0
(register counts: SGEMM 124-134, DGEMM 220-226, implicit-GEMM conv 62-82, the rest <= 56); a
kernel that needs an exception must be listed in BUDGET_EXCEPTIONS with the reason.

cuobjdump is looked up in $CUOBJDUMP, on PATH, under $CUDA_HOME/bin and /usr/local/cuda*/bin,
and in the pip package nvidia-cuda-cuobjdump (nvidia/cu13/bin).
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

LOCAL_BUDGET_BYTES = 0
STACK_BUDGET_BYTES = 0
# mangled-name substring -> (local bytes, stack bytes, reason). Empty: no kernel spills.
BUDGET_EXCEPTIONS: Dict[str, Tuple[int, int, str]] = {}
REQUIRED_SASS = ("sm_80", "sm_90")


def find_cuobjdump() -> Optional[str]:
    candidates = [os.environ.get("CUOBJDUMP"), shutil.which("cuobjdump")]
    for root in filter(None, [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]):
        candidates.append(os.path.join(root, "bin", "cuobjdump"))
    candidates += sorted(glob.glob("/usr/local/cuda*/bin/cuobjdump"))
    try:
        import nvidia  # the nvidia-cuda-cuobjdump wheel installs nvidia/cu13/bin/cuobjdump

        for base in nvidia.__path__:
            candidates += sorted(glob.glob(os.path.join(base, "*", "bin", "cuobjdump")))
    except ImportError:
        pass
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def resource_usage(cuobjdump: str, module: str) -> List[dict]:
    """One dict per (architecture, kernel): arch, name, reg, stack, local, shared."""
    out = subprocess.run([cuobjdump, "-res-usage", module], check=True, capture_output=True,
                         text=True).stdout
    rows, arch, name = [], None, None
    for line in out.splitlines():
        m = re.match(r"\s*arch = (sm_\d+)", line)
        if m:
            arch = m.group(1)
            continue
        m = re.match(r"\s*Function (\S+):", line)
        if m:
            name = m.group(1)
            continue
        if name and "REG:" in line:
            fields = dict(re.findall(r"(\w+(?:\[\d+\])?):(\d+)", line))
            rows.append({"arch": arch, "name": name, "reg": int(fields.get("REG", 0)),
                         "stack": int(fields.get("STACK", 0)),
                         "local": int(fields.get("LOCAL", 0)),
                         "shared": int(fields.get("SHARED", 0))})
            name = None
    return rows


def listed_code(cuobjdump: str, module: str) -> Tuple[set, set]:
    out = subprocess.run([cuobjdump, "-lelf", "-lptx", module], check=True, capture_output=True,
                         text=True).stdout
    sass = set(re.findall(r"ELF file.*\.(sm_\d+)\.cubin", out))
    ptx = set(re.findall(r"PTX file.*\.(sm_\d+)\.ptx", out))
    return sass, ptx


def check(module: str, cuobjdump: str) -> List[str]:
    """The list of problems (empty when the module is within budget)."""
    problems = []
    rows = resource_usage(cuobjdump, module)
    if not rows:
        problems.append(f"no kernels found in {module}")
    for r in rows:
        local, stack, _ = next((v for k, v in BUDGET_EXCEPTIONS.items() if k in r["name"]),
                               (LOCAL_BUDGET_BYTES, STACK_BUDGET_BYTES, ""))
        if r["local"] > local or r["stack"] > stack:
            problems.append(f"{r['arch']} {r['name']}: LOCAL {r['local']} B, STACK {r['stack']} B "
                            f"(budget {local} / {stack} B; REG {r['reg']})")
    sass, ptx = listed_code(cuobjdump, module)
    for arch in REQUIRED_SASS:
        if arch not in sass:
            problems.append(f"no {arch} machine code in {module} (found {sorted(sass)})")
    if not ptx:
        problems.append(f"no PTX in {module}: GPUs newer than {REQUIRED_SASS[-1]} could not run it")
    return problems


def main(argv: List[str]) -> int:
    if len(argv) > 1:
        module = argv[1]
    else:
        from pydl import _C_cuda

        module = _C_cuda.__file__
    cuobjdump = find_cuobjdump()
    if cuobjdump is None:
        print("cuobjdump not found (install the CUDA toolkit or pip install nvidia-cuda-cuobjdump)")
        return 2
    for r in sorted(resource_usage(cuobjdump, module), key=lambda r: (r["name"], r["arch"])):
        print(f"{r['arch']:6} REG {r['reg']:3} LOCAL {r['local']:4} STACK {r['stack']:4} "
              f"SHARED {r['shared']:6}  {r['name']}")
    problems = check(module, cuobjdump)
    for p in problems:
        print("FAIL:", p)
    print("spill check:", "FAILED" if problems else "ok (0 bytes local/stack in every kernel)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
