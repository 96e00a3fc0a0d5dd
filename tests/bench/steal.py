"""CPU time the hypervisor took from this machine during a measurement (/proc/stat 'steal'):
figures measured while it is high are low for reasons outside the code."""


class CpuSteal:
    share = 0.0

    def __enter__(self) -> "CpuSteal":
        self._start = _read()
        return self

    def __exit__(self, *exc) -> None:
        end = _read()
        total = sum(end) - sum(self._start)
        self.share = (end[7] - self._start[7]) / total if total and len(end) > 7 else 0.0


def _read() -> list[int]:
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return []
