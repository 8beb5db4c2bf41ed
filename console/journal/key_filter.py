"""A Bloom filter of the journal's stored keys: "never stored" without a database query.

Most keys the core looks up (is this SOS a resend?) were never seen; the filter answers
those from memory, and only a hit (a stored key, or about 1 % of the others) costs a
query. A Bloom filter has no false negatives: a key once added always tests present.

It grows by adding a layer twice the size of the last when the last is full (a
scalable Bloom filter), so it never has to read the keys back; each layer's rate is
half the one before, so all layers together stay under the target rate.

The hashes are Python's ``hash(str)``, which is per process: the filter is rebuilt at
every open and never stored.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FALSE_POSITIVE_RATE: Final = 0.01  # all layers together
MIN_CAPACITY: Final = 1 << 16  # keys in the first layer at the least
RECENT_KEYS: Final = 50_000  # stored keys found by a query, remembered to spare the next
BULK: Final = 8192  # keys hashed per numpy step when adding many
KEYS_CHUNK: Final = 10_000  # keys per query when streaming them into the filter

_M64: Final = (1 << 64) - 1


def _mix(h: int) -> int:
    """splitmix64's finaliser: a second hash from the first, for double hashing."""
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _M64
    return h ^ (h >> 31)


def _mix_array(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # The same as _mix, in uint64 arithmetic that wraps as the masks above do.
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


class _Layer:
    """One fixed-size Bloom filter: ``capacity`` keys at ``rate`` false positives."""

    def __init__(self, capacity: int, rate: float) -> None:
        self.capacity = capacity
        bits = math.ceil(-capacity * math.log(rate) / (math.log(2) ** 2))
        self.size = max(64, bits + (-bits % 8))  # whole bytes
        self.hashes = max(1, round(self.size / capacity * math.log(2)))
        self.count = 0
        self.bits = bytearray(self.size // 8)
        # The same memory as numpy sees it, for adding many keys at once.
        self.array = np.frombuffer(self.bits, dtype=np.uint8)

    def positions(self, h1: int, h2: int) -> list[int]:
        size = self.size
        return [((h1 + i * h2) & _M64) % size for i in range(self.hashes)]

    def add(self, h1: int, h2: int) -> None:
        bits = self.bits
        for pos in self.positions(h1, h2):
            bits[pos >> 3] |= 1 << (pos & 7)
        self.count += 1

    def __contains__(self, hashes: tuple[int, int]) -> bool:
        bits = self.bits
        return all(bits[pos >> 3] & (1 << (pos & 7)) for pos in self.positions(*hashes))

    def add_array(self, h1: npt.NDArray[np.uint64], h2: npt.NDArray[np.uint64]) -> None:
        steps = np.arange(self.hashes, dtype=np.uint64)
        with np.errstate(over="ignore"):
            pos = (h1[:, None] + steps[None, :] * h2[:, None]) % np.uint64(self.size)
        byte = (pos >> np.uint64(3)).astype(np.intp).ravel()
        mask = (np.uint64(1) << (pos & np.uint64(7))).astype(np.uint8).ravel()
        np.bitwise_or.at(self.array, byte, mask)
        self.count += len(h1)


class KeyFilter:
    """Which keys may have been stored: no false negatives, ~``rate`` false positives."""

    def __init__(self, capacity: int = MIN_CAPACITY, rate: float = FALSE_POSITIVE_RATE) -> None:
        if capacity < 1 or not 0 < rate < 1:
            raise ValueError(
                f"a key filter needs capacity ≥ 1 and 0 < rate < 1, not {capacity}, {rate}"
            )
        self.rate = rate
        self._layers = [_Layer(capacity, rate / 2)]

    @property
    def count(self) -> int:
        """Keys added (a key added twice counts twice)."""
        return sum(layer.count for layer in self._layers)

    @property
    def capacity(self) -> int:
        return sum(layer.capacity for layer in self._layers)

    @property
    def layers(self) -> int:
        return len(self._layers)

    @property
    def nbytes(self) -> int:
        return sum(len(layer.bits) for layer in self._layers)

    def add(self, key: str) -> None:
        h1 = hash(key) & _M64
        self._room().add(h1, _mix(h1) | 1)

    def add_many(self, keys: Iterable[str]) -> None:
        """Add every key of ``keys`` (an iterator is consumed in steps of BULK)."""
        chunk: list[int] = []
        for key in keys:
            chunk.append(hash(key))
            if len(chunk) >= BULK:
                self._add_hashes(chunk)
                chunk = []
        if chunk:
            self._add_hashes(chunk)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        h1 = hash(key) & _M64
        hashes = (h1, _mix(h1) | 1)
        return any(hashes in layer for layer in self._layers)

    def _room(self) -> _Layer:
        last = self._layers[-1]
        if last.count < last.capacity:
            return last
        # Full: a new layer twice as big, at half the rate, so the sum stays under `rate`.
        rate = self.rate / 2 ** (len(self._layers) + 1)
        self._layers.append(_Layer(last.capacity * 2, rate))
        return self._layers[-1]

    def _add_hashes(self, hashes: list[int]) -> None:
        h1 = np.array(hashes, dtype=np.int64).view(np.uint64)
        while len(h1):
            layer = self._room()
            take = min(len(h1), layer.capacity - layer.count)
            part = h1[:take]
            with np.errstate(over="ignore"):
                layer.add_array(part, _mix_array(part) | np.uint64(1))
            h1 = h1[take:]


class StoredKeys:
    """What a journal knows of its stored keys without asking the database.

    ``filter`` holds every key stored up to ``upto`` (the seq its last pass or commit
    covered); ``recent`` the keys a query found stored, which are stored for good
    (append-only). The journal's lock guards it.
    """

    def __init__(self) -> None:
        self.filter = KeyFilter()
        self.upto = 0
        self._recent: OrderedDict[str, None] = OrderedDict()

    def rebuild(self, keys: Iterable[str], upto: int) -> None:
        """Start afresh from every key stored up to seq ``upto`` (one streaming pass).

        Sized for ``upto`` keys and as many again (no more keys than records can be
        stored), so a journal that doubles still fits its first layer.
        """
        self.filter = KeyFilter(max(MIN_CAPACITY, 2 * upto))
        self.filter.add_many(keys)
        self.upto = upto

    def add_rows(self, rows: Sequence[tuple[object, ...]], upto: int) -> None:
        """Rows just stored (journal rows: the key is field 6); the filter now covers ``upto``."""
        self.filter.add_many(key for row in rows if isinstance(key := row[6], str) and key)
        self.upto = max(self.upto, upto)

    def known(self, key: str) -> bool | None:
        """True: stored. False: never stored up to ``upto``. None: only a query can tell."""
        if key in self._recent:
            return True
        return None if key in self.filter else False

    def remember(self, key: str) -> None:
        recent = self._recent
        recent[key] = None
        recent.move_to_end(key)
        if len(recent) > RECENT_KEYS:
            recent.popitem(last=False)


def stream_keys(
    query: Callable[[str, Sequence[object]], list[Any]],
    mark: str,
    after_seq: int = 0,
    upto: int | None = None,
) -> Iterator[str]:
    """The non-empty keys of the journal rows with after_seq < seq (<= upto), in chunks of
    ``KEYS_CHUNK``, through a backend's ``_query`` and its parameter mark ("?" or "%s")."""
    if after_seq == 0 and upto is None:
        # Every key: walk the partial key index alone (index-only), in key order.
        sql = f"SELECT key FROM journal WHERE key <> '' AND key > {mark} ORDER BY key LIMIT {mark}"
        last = ""
        while keys := [row[0] for row in query(sql, (last, KEYS_CHUNK))]:
            yield from keys
            last = keys[-1]
        return
    sql = (
        f"SELECT seq, key FROM journal WHERE seq > {mark} AND seq <= {mark} AND key <> '' "
        f"ORDER BY seq LIMIT {mark}"
    )
    end = (1 << 62) if upto is None else upto
    while rows := query(sql, (after_seq, end, KEYS_CHUNK)):
        yield from (row[1] for row in rows)
        after_seq = int(rows[-1][0])
