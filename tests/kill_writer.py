"""A writer process for the kill -9 soak: writes memories until killed, printing the id and
text of each one once ``remember`` has returned (acknowledged), flushed at once. An optional
second argument runs that many writer threads (their commits then share WAL flushes and
witness writes, ``audit.batching``). Its acknowledgements are lines of their own
(``ACK``), so that nothing else on its output (its log goes to stderr today) is ever taken for
one."""

from __future__ import annotations

import os
import sys
import threading

from memwarden import Memwarden, Settings

ACK = "acknowledged\t"


def acknowledged_in(output: bytes) -> dict[int, str]:
    """Memory id to text of every write ``output`` (a writer's) says was acknowledged. A line
    goes in one write to a pipe (shorter than PIPE_BUF): a kill leaves no line cut, and a line
    cut anyway (no tab after the id) was not acknowledged.

    The tests read a writer's first line, then the rest with ``communicate(timeout=...)``,
    which reads the pipe's descriptor itself: a buffered reader's first ``readline`` would have
    taken more than that line from the pipe, lost to ``communicate`` (the rest of the output
    then began inside a line: a wrong id, or none). So the writers' output is unbuffered
    (``bufsize=0``): a raw pipe's ``readline`` reads up to the newline and no further."""
    found: dict[int, str] = {}
    for line in output.decode("utf-8", "replace").splitlines():
        if line.startswith(ACK):
            memory_id, tab, text = line[len(ACK) :].partition("\t")
            if tab and memory_id.isdigit():
                found[int(memory_id)] = text
    return found


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
                    sys.stdout.write(f"{ACK}{memory.id}\t{text}\n")
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
