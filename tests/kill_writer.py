"""A writer process for the kill -9 soak: writes memories until killed, printing the id and
text of each one once ``remember`` has returned (acknowledged), flushed at once. An optional
second argument runs that many writer threads (their commits then share WAL flushes and
witness writes, ``audit.batching``)."""

from __future__ import annotations

import os
import sys
import threading

from memwarden import Memwarden, Settings


def main() -> None:
    name = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    printing = threading.Lock()
    with Memwarden(Settings()) as mw:

        def write(prefix: str) -> None:
            index = 0
            while True:
                text = f"writer {prefix} fact {index} pid {os.getpid()}"
                memory = mw.remember("atlas", text, status="active").memory
                if index % 3 == 0:
                    mw.update(memory.id, content=text + " revised")
                    text += " revised"
                with printing:
                    sys.stdout.write(f"{memory.id}\t{text}\n")
                    sys.stdout.flush()
                index += 1

        if threads == 1:
            write(name)
        pool = [
            threading.Thread(target=write, args=(f"{name}.{n}",), daemon=True)
            for n in range(threads)
        ]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()


if __name__ == "__main__":
    main()
