"""The byte-a-step Huffman decoder against `hpack`'s encoder and its nibble decoder."""

from __future__ import annotations

import random

import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from sluice_runtime.h2 import huffman

ENCODER = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def test_every_byte_value_and_random_strings_come_back() -> None:
    rng = random.Random(7)
    strings = [bytes(range(256)), b"", b"9999975u", b"grpc-go/1.79.0"]
    strings += [rng.randbytes(rng.randrange(1, 60)) for _ in range(3000)]
    for text in strings:
        assert huffman.decode(ENCODER.encode(text)) == text


def test_arbitrary_bytes_are_accepted_or_refused_as_hpack_does() -> None:
    rng = random.Random(11)
    refused = 0
    for _ in range(20000):
        data = rng.randbytes(rng.randrange(1, 7))
        try:
            expected: bytes | None = decode_huffman(data)
        except Exception:  # hpack's HPACKDecodingError
            expected = None
        try:
            got: bytes | None = huffman.decode(data)
        except ValueError:
            got = None
        assert got == expected, data
        refused += got is None
    assert 0 < refused < 20000  # both kinds were tried


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff\xff",  # 30 ones: EOS itself inside the string
        b"\x00",  # '0' (00000) then 000 of padding: padding must be ones
        ENCODER.encode(b"a") + b"\xff",  # a whole byte of padding: at most seven bits
    ],
)
def test_eos_and_bad_padding_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="Huffman"):
        huffman.decode(data)
