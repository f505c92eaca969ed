"""`consentry access hash-password`: print an argon2id hash for
``[[access.users]] password_hash``. The password is read from the terminal
without echo (twice), or from standard input when it is not a terminal; it is
never printed or written anywhere."""

from __future__ import annotations

import argparse
import getpass
import sys

from collector.cli.common import fail


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("access", help="console users and API tokens")
    asub = a.add_subparsers(dest="access_cmd", required=True)
    asub.add_parser("hash-password", help="print an argon2id hash for [[access.users]]")
    a.set_defaults(fn=cmd_access)


def cmd_access(args: argparse.Namespace) -> int:
    from collector.access.principals import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            return fail("access hash-password: the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 12:
        return fail("access hash-password: use at least 12 characters")
    print(hash_password(password))
    return 0
