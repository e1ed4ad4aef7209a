"""torchrun, as `python -m torch.distributed.run`, with one fix: on Python >= 3.11 torch < 2.1 parses
`--redirects 0` / `--tee 0` (the defaults) to None and crashes ("'NoneType' object has no attribute 'get'"),
because Python 3.11 stopped listing zero-valued flags when iterating an IntFlag. launch.sh runs this file."""
import re
import sys

from torch.distributed.elastic.multiprocessing import api
from torch.distributed.run import main

if api.Std.from_str("0") is None:
    def _from_str(vm):
        if re.match(r"^[0123]$", vm):
            return api.Std(int(vm))
        if re.match(r"^(\d+:[0123],)*(\d+:[0123])$", vm):
            return {int(k): api.Std(int(v)) for k, v in (p.split(":") for p in vm.split(","))}
        raise ValueError(f"{vm} does not match: <^[0123]$> or <^(\\d:[0123],)*(\\d:[0123])$>")

    api.Std.from_str = staticmethod(_from_str)

if __name__ == "__main__":
    sys.exit(main())
