"""``python -m devtools``: the local stand-ins ``make run`` needs, on loopback, until Ctrl-C.

An SMTP capture on ``--smtp-port`` (default ``SMTP_PORT``, else 1025) that keeps every e-mail
the worker sends (invitations, approval links) in the Maildir ``--mail-dir`` (default
``DEV_MAIL_DIR``, else ``.dev/mail``), where ``passerelle mail list`` and the ``/dev/mail`` page
read them, and prints a line for each, so the demo works offline; and, with
``--platforms-port``, the social platforms simulator (``SOCIAL_BASE_URLS`` pointed at
``http://127.0.0.1:<port>/<platform>``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from devtools.platforms import PlatformSimulator
from devtools.smtp import Mailbox


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve the development stand-ins on loopback.")
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("SMTP_PORT", "1025")))
    # In a container, the others reach it on the container's network (compose.yaml).
    parser.add_argument("--smtp-host", default="127.0.0.1", help="Interface to listen on")
    parser.add_argument(
        "--mail-dir", type=Path, default=Path(os.environ.get("DEV_MAIL_DIR") or ".dev/mail")
    )
    parser.add_argument("--platforms-port", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = argument_parser().parse_args(argv)
    mailbox = Mailbox(args.smtp_port, args.mail_dir, host=args.smtp_host)
    mailbox.start()
    print(
        f"devtools: SMTP capture on {args.smtp_host}:{args.smtp_port}, "
        f"e-mails kept in {args.mail_dir}",
        flush=True,
    )
    sim = None
    if args.platforms_port is not None:
        sim = PlatformSimulator(accounts_from_seed=True, record_requests=False)
        sim.start(args.platforms_port)
        print(f"devtools: platform simulator on {sim.url}", flush=True)
    shown = 0
    try:
        while True:
            # Messages arrive on the SMTP thread; the list only grows, so a count is enough.
            for message in mailbox.messages[shown:]:
                print(f"devtools: e-mail to {message['To']}: {message['Subject']}", flush=True)
                shown += 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        mailbox.stop()
        if sim is not None:
            sim.stop()


if __name__ == "__main__":
    main()
