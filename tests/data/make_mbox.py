#!/usr/bin/env python3
"""Writes an mbox of the SpamAssassin corpus (scripts/corpus.sh) in one variant.

    make_mbox.py VARIANT CORPUS_DIR OUT [--min-bytes N]

VARIANT is mboxo, mboxrd, mboxcl or mboxcl2 (the four of
https://www.loc.gov/preservation/digital/formats/fdd/fdd000383.shtml):

- mboxo:   a body line starting "From " gets one ">"; nothing else changes.
- mboxrd:  a body line starting ">*From " gets one more ">".
- mboxcl:  as mboxo, plus a Content-Length: header counting the stored body.
- mboxcl2: no quoting; a Content-Length: header frames the body.

Messages are the corpus files in sorted order. A file without a "From " line
gets one made from its Date: header. Every message is followed by one blank
line (the last one too, as writers do); a message without a final newline
gets one first (the mbox format has no way to keep it otherwise), except the
last message of the file, which is then written as it is, with no blank line
after it. With --min-bytes the whole corpus is repeated
until the mbox is at least N bytes (the throughput benchmark's 1 GB mbox).

This is the only writer of corpus mboxes: tests and benchmarks call it, and
the corpus itself is never committed.
"""

import email.utils
import os
import re
import sys
import time

VARIANTS = ("mboxo", "mboxrd", "mboxcl", "mboxcl2")
FROM_LINE = re.compile(rb"^From ", re.M)
RD_LINE = re.compile(rb"^(>*From )", re.M)
CL_HEADER = re.compile(rb"^Content-Length:[^\n]*\n", re.M | re.I)


def corpus_files(corpus):
    files = []
    for group in sorted(os.listdir(corpus)):
        d = os.path.join(corpus, group)
        if os.path.isdir(d):
            files += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".txt")]
    return files


def split_envelope(raw):
    """(From_ line with its LF, the message) for one corpus file."""
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        return raw[: nl + 1], raw[nl + 1 :]
    date = None
    m = re.search(rb"^Date:[ \t]*([^\n]*)", raw, re.M | re.I)
    if m:
        try:
            date = email.utils.parsedate_to_datetime(m.group(1).decode("latin-1")).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            date = None
    stamp = time.asctime(time.gmtime(date if date is not None else 1_000_000_000))
    return b"From MAILER-DAEMON " + stamp.encode() + b"\n", raw


def encode(variant, msg):
    """The message as stored in the mbox (quoted, with Content-Length)."""
    if variant in ("mboxo", "mboxcl"):
        msg = FROM_LINE.sub(b">From ", msg)
    elif variant == "mboxrd":
        msg = RD_LINE.sub(rb">\1", msg)
    if variant in ("mboxcl", "mboxcl2"):
        sep = msg.find(b"\n\n")
        if sep < 0:
            head, body = msg if msg.endswith(b"\n") else msg + b"\n", b""
        else:
            head, body = msg[: sep + 1], msg[sep + 2 :]
        head = CL_HEADER.sub(b"", head)
        msg = head + b"Content-Length: %d\n\n" % len(body) + body
    return msg


def main():
    args = sys.argv[1:]
    min_bytes = 0
    if "--min-bytes" in args:
        i = args.index("--min-bytes")
        min_bytes = int(args[i + 1])
        del args[i : i + 2]
    if len(args) != 3 or args[0] not in VARIANTS:
        sys.exit(__doc__)
    variant, corpus, out = args
    messages = []
    for path in corpus_files(corpus):
        with open(path, "rb") as f:
            envelope, msg = split_envelope(f.read())
        messages.append((envelope, msg))
    written = 0
    with open(out, "wb") as f:
        while True:
            for i, (envelope, msg) in enumerate(messages):
                last = i == len(messages) - 1 and written >= min_bytes
                if not msg.endswith(b"\n") and not last:
                    msg += b"\n"
                chunk = envelope + encode(variant, msg)
                if msg.endswith(b"\n"):
                    chunk += b"\n"
                f.write(chunk)
                written += len(chunk)
            if written >= min_bytes:
                break


if __name__ == "__main__":
    main()
