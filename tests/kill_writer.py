"""A writer process for the kill -9 soak: writes memories until killed, printing the id and
text of each one once ``remember`` has returned (acknowledged), flushed at once."""

from __future__ import annotations

import os
import sys

from memwarden import Memwarden, Settings


def main() -> None:
    name = sys.argv[1]
    with Memwarden(Settings()) as mw:
        index = 0
        while True:
            text = f"writer {name} fact {index} pid {os.getpid()}"
            memory = mw.remember("atlas", text, status="active").memory
            if index % 3 == 0:
                mw.update(memory.id, content=text + " revised")
                text += " revised"
            sys.stdout.write(f"{memory.id}\t{text}\n")
            sys.stdout.flush()
            index += 1


if __name__ == "__main__":
    main()
