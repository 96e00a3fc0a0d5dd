"""The reporting service gives the memory of the columns it frees back to the system. Its facts
are numpy columns that a change replaces (a part merged, a snapshot written): with glibc's
default, the largest block freed raises the size from which blocks are mapped (up to 32 MiB),
and columns below it then come from heaps that keep what is freed between live blocks. In the
soak at 100,000 cases the service grew by a quarter in 400 s (391 to 490 MiB), by 163 MiB that
`malloc_trim` then gave back. The oracle: the process's anonymous resident memory, before the
columns are made and after they are freed, in a process of its own (the allocator's state is
the process's)."""

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent("""
    import sys, threading
    import numpy as np
    from services.reporting.bootstrap import bootstrap
    from services.reporting.settings import ReportingSettings

    def anonymous_mib():
        status = open("/proc/self/status").read().splitlines()
        return int(next(line.split()[1] for line in status if line.startswith("RssAnon:"))) // 1024

    service = bootstrap(ReportingSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=sys.argv[1],
                                          run_consumer=False)).start()
    kept = []

    def change():  # in a thread, as answers and the facts' keeper are
        np.ones(2**21)  # 16 MiB made and freed: glibc's threshold, unless fixed, rises to it
        columns = []
        for _ in range(40):  # 80 MiB of columns, something small made after each that outlives them
            columns.append(np.ones(2**18))
            kept.append(np.ones(64))

    before = anonymous_mib()
    worker = threading.Thread(target=change)
    worker.start()
    worker.join()
    print(anonymous_mib() - before)
    service.close()
""")


def test_columns_freed_by_the_reporting_service_go_back_to_the_system(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) < 20  # MiB kept of the 80 freed
