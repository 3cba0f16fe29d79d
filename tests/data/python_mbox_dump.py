#!/usr/bin/env python3
"""The independent reader: Python's mailbox module reads an mbox, and each
message is written to OUT_DIR/000001, 000002, ... with the variant's quoting
undone, for a test to compare with what ownmail stored.

    python_mbox_dump.py VARIANT MBOX OUT_DIR

Python's mbox class frames by "From " lines and does not unquote; the
unquoting below is the one each variant defines (mboxrd: one ">" off every
">*From " line; mboxo and mboxcl: ">From " only). Prints the number of
messages.

VARIANT mboxcl2 is special: Python cannot frame mboxcl2 (a body may hold an
unquoted "From " line, which only Content-Length tells from a message
start), so MBOX must then be the mboxrd twin written by make_mbox.py from
the same corpus; each message is read and unquoted as mboxrd, and the
expected mboxcl2 message is that plus the Content-Length: header the
mboxcl2 writer adds (make_mbox.encode).
"""

import mailbox
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_mbox  # noqa: E402

UNQUOTE = {
    "mboxo": (re.compile(rb"^>From ", re.M), b"From "),
    "mboxcl": (re.compile(rb"^>From ", re.M), b"From "),
    "mboxrd": (re.compile(rb"^>(>*From )", re.M), rb"\1"),
}


def main():
    variant, path, out = sys.argv[1:]
    box = mailbox.mbox(path, create=False)
    os.makedirs(out, exist_ok=True)
    n = 0
    for n, key in enumerate(box.iterkeys(), 1):
        data = box.get_bytes(key)
        if variant == "mboxcl2":
            pattern, repl = UNQUOTE["mboxrd"]
            data = make_mbox.encode("mboxcl2", pattern.sub(repl, data))
        else:
            pattern, repl = UNQUOTE[variant]
            data = pattern.sub(repl, data)
        with open(os.path.join(out, "%06d" % n), "wb") as f:
            f.write(data)
    print(n)


if __name__ == "__main__":
    main()
