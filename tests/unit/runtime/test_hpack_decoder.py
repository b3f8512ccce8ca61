"""Our HPACK decoder against the `hpack` package's encoder: the same header lists come back,
block after block, with Huffman strings, sensitive fields, table size updates and evictions."""

from __future__ import annotations

import random

import hpack
import pytest
from sluice_runtime.h2.frames import ConnectionFailure, ErrorCode
from sluice_runtime.h2.hpack_decoder import HeaderDecoder

Headers = list[tuple[bytes, bytes]]


def random_headers(rng: random.Random) -> Headers:
    common = [
        (b":method", b"POST"),
        (b":path", b"/inference.GRPCInferenceService/ModelInfer"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ]
    fields = rng.sample(common, rng.randint(0, len(common)))
    for _ in range(rng.randint(0, 6)):
        name = "x-" + "".join(rng.choices("abcdefgh-", k=rng.randint(1, 12)))
        value = "".join(rng.choices("0123456789abcdefXYZ %/=", k=rng.randint(0, 200)))
        fields.append((name.encode(), value.encode()))
    fields.append((b"grpc-timeout", f"{rng.randint(1, 99999999)}m".encode()))
    return fields


@pytest.mark.parametrize("table_size", [4096, 256, 0])
@pytest.mark.parametrize("huffman", [True, False])
def test_hpacks_encoding_decodes_to_the_same_lists(table_size: int, huffman: bool) -> None:
    rng = random.Random(table_size + huffman)
    encoder = hpack.Encoder()
    encoder.header_table_size = table_size  # announced in the first block: an update
    decoder = HeaderDecoder()
    for _ in range(300):
        headers = random_headers(rng)
        sent = [hpack.NeverIndexedHeaderTuple(n, v) if n == b"x-a" else (n, v) for n, v in headers]
        assert decoder.decode(encoder.encode(sent, huffman=huffman)) == headers


def test_a_table_size_update_mid_stream_evicts_and_then_holds() -> None:
    encoder = hpack.Encoder()
    decoder = HeaderDecoder()
    big = [(b"x-big", b"v" * 1000)] * 1 + [(b"x-other", b"w" * 1000)]
    assert decoder.decode(encoder.encode(big)) == big
    encoder.header_table_size = 1500
    assert decoder.decode(encoder.encode(big)) == big
    assert decoder.decode(encoder.encode(big)) == big


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (b"\x80", "index 0"),
        (b"\xff\x00", "out of range"),  # index 127: past the static table, the dynamic is empty
        (b"\x40\x05ab", "cut short"),  # a name of 5 bytes with 2 present
        (b"\x3f\xe2\x1f", "above the limit"),  # table size 4097 > 4096
        (b"\x82\x20", "after a header field"),
        (b"\xff\xff\xff\xff\xff\xff\x01", "too large"),
    ],
)
def test_malformed_blocks_are_compression_errors(block: bytes, problem: str) -> None:
    with pytest.raises(ConnectionFailure) as caught:
        HeaderDecoder().decode(block)
    assert caught.value.code is ErrorCode.COMPRESSION_ERROR
    assert problem in caught.value.message


def test_a_header_list_over_the_limit_is_refused() -> None:
    block = hpack.Encoder().encode([(b"x-a", b"v" * 100)] * 10)
    with pytest.raises(ConnectionFailure):
        HeaderDecoder(max_list_size=1000).decode(block)
