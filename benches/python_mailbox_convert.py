#!/usr/bin/env python3
"""The peer for benches/convert_mbox.sh: Python's mailbox module converting
an mbox to a Maildir the way its documentation shows (mbox -> Maildir, each
message added as a message object, Status flags carried over).

    python_mailbox_convert.py MBOX MAILDIR

Prints the number of messages. Python's Maildir fsyncs each file it writes
(mailbox._sync_close) but never the directories.
"""

import mailbox
import sys


def main():
    src, dst = sys.argv[1:]
    inbox = mailbox.mbox(src, create=False)
    maildir = mailbox.Maildir(dst, create=True)
    n = 0
    for message in inbox:
        maildir.add(message)
        n += 1
    print(n)


if __name__ == "__main__":
    main()
