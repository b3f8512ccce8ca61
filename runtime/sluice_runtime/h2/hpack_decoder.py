"""HPACK (RFC 7541) decoding of request header blocks, lean enough for every gRPC call.

The `hpack` package's decoder builds a HeaderTuple and walks several Python layers per field;
on a gRPC call with one call in flight it was about an eighth of the event loop's time
(bench/results/optimizations.md). This one decodes straight into (name, value) byte pairs.
It reuses what `hpack` gets right: the static table and the Huffman code table (decoded
by huffman.py). Tests check it against `hpack`'s encoder, dynamic table evictions included.
"""

from __future__ import annotations

from hpack.table import HeaderTable

from sluice_runtime.h2 import huffman
from sluice_runtime.h2.frames import ConnectionFailure, ErrorCode

_ENTRY_OVERHEAD = 32  # RFC 7541 §4.1


def _sized(field: tuple[bytes, bytes]) -> tuple[tuple[bytes, bytes], int]:
    """A field with its size as the header list and the table count it (§4.1)."""
    return field, len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD


# The static table's fields with their sizes, then the dynamic table's (newest first), in
# one list indexed as HPACK indexes them: an indexed field, most of a request's, is one
# lookup whichever table holds it, and its size needs no arithmetic.
_STATIC = [_sized(field) for field in HeaderTable.STATIC_TABLE]
_DYNAMIC = len(_STATIC)  # where the dynamic entries start in that list


def _fail(message: str) -> ConnectionFailure:
    return ConnectionFailure(ErrorCode.COMPRESSION_ERROR, message)


class HeaderDecoder:
    """One connection's request-header decoder: its dynamic table lives as long as it does."""

    def __init__(self, max_table_size: int = 4096, max_list_size: int = 65536) -> None:
        self._limit = max_table_size  # what we announced; the peer may go lower
        self._max = max_table_size
        self._max_list = max_list_size
        self._entries = list(_STATIC)  # static, then dynamic newest first
        self._size = 0  # of the dynamic entries

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The header list a block encodes; a malformed block is a COMPRESSION_ERROR."""
        headers: list[tuple[bytes, bytes]] = []
        entries = self._entries
        position, end, listed = 0, len(block), 0
        try:
            while position < end:
                first = block[position]
                if first & 0x80:  # indexed field, nearly always a one-byte index
                    if first != 0xFF:
                        index = first & 0x7F
                        position += 1
                    else:
                        index, position = _integer(block, position, 7)
                    if not 0 < index <= len(entries):
                        raise _fail(f"header index {index} out of range")
                    field, size = entries[index - 1]
                elif first & 0x40:  # literal, added to the table
                    field, position = self._literal(block, position, 6)
                    field, size = entry = _sized(field)
                    self._add(entry)
                elif first & 0x20:  # dynamic table size update
                    if headers:
                        raise _fail("table size update after a header field")
                    size, position = _integer(block, position, 5)
                    if size > self._limit:
                        raise _fail(f"table size {size} above the limit {self._limit}")
                    self._max = size
                    self._evict(0)
                    continue
                else:  # literal without indexing (0x00) or never indexed (0x10)
                    field, position = self._literal(block, position, 4)
                    field, size = _sized(field)
                listed += size
                if listed > self._max_list:
                    raise _fail(f"header list larger than {self._max_list} bytes")
                headers.append(field)
        except IndexError:
            raise _fail("header block cut short") from None
        return headers

    def _literal(self, block: bytes, position: int, prefix: int) -> tuple[tuple[bytes, bytes], int]:
        index, position = _integer(block, position, prefix)
        if not index:
            name, position = _string(block, position)
        elif index <= len(self._entries):
            name = self._entries[index - 1][0][0]
        else:
            raise _fail(f"header index {index} out of range")
        value, position = _string(block, position)
        return (name, value), position

    def _add(self, entry: tuple[tuple[bytes, bytes], int]) -> None:
        size = entry[1]
        if size > self._max:  # too big for the table: it empties the table (§4.4)
            del self._entries[_DYNAMIC:]
            self._size = 0
            return
        self._evict(size)
        self._entries.insert(_DYNAMIC, entry)
        self._size += size

    def _evict(self, room: int) -> None:
        while self._size + room > self._max:
            self._size -= self._entries.pop()[1]


def _integer(block: bytes, position: int, prefix: int) -> tuple[int, int]:
    """An HPACK integer with a `prefix`-bit prefix (§5.1) and where the next field starts."""
    limit = (1 << prefix) - 1
    value = block[position] & limit
    position += 1
    if value < limit:
        return value, position
    shift = 0
    while True:
        byte = block[position]
        position += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift > 28:
            raise _fail("HPACK integer too large")


def _string(block: bytes, position: int) -> tuple[bytes, int]:
    """A string literal (§5.2), Huffman-coded or raw."""
    coded = block[position] & 0x80
    length, position = _integer(block, position, 7)
    end = position + length
    if end > len(block):
        raise _fail("header string cut short")
    raw = block[position:end]
    if not coded:
        return raw, end
    try:
        return huffman.decode(raw), end
    except ValueError as error:
        raise _fail(f"bad Huffman string: {error}") from None
