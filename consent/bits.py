"""Bit-level reading and writing for IAB strings (pure).

TCF and GPP pack fields MSB-first into base64url text without padding. Every
read is bounds-checked and reports the field it was reading, so a truncated
string yields a clear ConsentSignalError, never an IndexError.
"""

from __future__ import annotations

import re

from consent.errors import ConsentSignalError

# fullmatch, not match: "$" also matches before a final newline ("abc\n").
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}


def decode_b64url(text: str, what: str) -> tuple[int, int]:
    """Base64url text as (value, bit length), six bits a character: IAB strings are
    defined on the character bits, so a trailing partial byte still counts."""
    if not _B64URL.fullmatch(text):
        raise ConsentSignalError(f"{what} is not base64url (A-Z a-z 0-9 - _)")
    value = 0
    for ch in text:
        value = (value << 6) | _INDEX[ch]
    return value, 6 * len(text)


class BitReader:
    def __init__(self, data: tuple[int, int], what: str) -> None:
        self._value, self._length = data
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return self._length - self._pos

    @property
    def position(self) -> int:
        return self._pos

    def uint(self, n: int, field: str) -> int:
        if n == 0:
            return 0
        if self._pos + n > self._length:
            raise ConsentSignalError(
                f"{self._what} ends early: needed {n} bits for {field} at bit {self._pos},"
                f" only {self.remaining} left"
            )
        shift = self._length - self._pos - n
        self._pos += n
        return (self._value >> shift) & ((1 << n) - 1)

    def flag(self, field: str) -> bool:
        return self.uint(1, field) == 1

    def bitfield(self, n: int, field: str) -> set[int]:
        """n bits, bit i (1-based) set means id i is in the set."""
        value = self.uint(n, field)
        return {i + 1 for i in range(n) if value >> (n - 1 - i) & 1}

    def letters(self, count: int, field: str) -> str:
        out = []
        for _ in range(count):
            code = self.uint(6, field)
            if code > 25:
                raise ConsentSignalError(f"{self._what}: {field} holds {code}, not a letter A-Z")
            out.append(chr(ord("A") + code))
        return "".join(out)

    def fibonacci(self, field: str) -> int:
        """Fibonacci-coded positive integer (Zeckendorf, terminated by '11')."""
        fib = [1, 2]
        total = 0
        prev = 0
        i = 0
        while True:
            bit = self.uint(1, field)
            if bit and prev:
                if total == 0:
                    raise ConsentSignalError(f"{self._what}: {field} is an empty Fibonacci code")
                return total
            if i >= 60:
                raise ConsentSignalError(f"{self._what}: {field} Fibonacci code is too long")
            while len(fib) <= i:
                fib.append(fib[-1] + fib[-2])
            if bit:
                total += fib[i]
            prev = bit
            i += 1


class BitWriter:
    def __init__(self) -> None:
        self._value = 0
        self._length = 0

    def uint(self, value: int, n: int) -> None:
        if value < 0 or value >= 1 << n:
            raise ValueError(f"{value} does not fit in {n} bits")
        self._value = (self._value << n) | value
        self._length += n

    def flag(self, value: bool) -> None:
        self.uint(int(value), 1)

    def bitfield(self, ids: set[int] | frozenset[int], n: int) -> None:
        for i in range(1, n + 1):
            self.flag(i in ids)

    def letters(self, text: str) -> None:
        for ch in text:
            self.uint(ord(ch) - ord("A"), 6)

    def fibonacci(self, value: int) -> None:
        if value < 1:
            raise ValueError("Fibonacci coding needs a positive integer")
        fib = [1, 2]
        while fib[-1] <= value:
            fib.append(fib[-1] + fib[-2])
        bits = [0] * len(fib)
        rest = value
        for i in range(len(fib) - 1, -1, -1):
            if fib[i] <= rest:
                bits[i] = 1
                rest -= fib[i]
        while bits and bits[-1] == 0:
            bits.pop()
        for b in bits:
            self.uint(b, 1)
        self.uint(1, 1)

    def b64(self, *, byte_align: bool = True) -> str:
        """Base64url of the bits, padded with zero bits to whole characters (or to
        whole bytes first, as TCF encoders do)."""
        length = self._length + (-self._length % 8 if byte_align else 0)
        pad = -length % 6
        value = self._value << (length - self._length + pad)
        n = (length + pad) // 6
        return "".join(_ALPHABET[(value >> (6 * (n - 1 - i))) & 63] for i in range(n))
