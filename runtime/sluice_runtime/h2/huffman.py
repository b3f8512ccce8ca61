"""HPACK's Huffman code (RFC 7541 §5.2, Appendix B) decoded a whole byte per step.

grpc-go sends every call's grpc-timeout as a new Huffman-coded literal, so every call
decodes one. `hpack`'s decoder walks the code four bits at a time: two table lookups and
two flag tests per byte, about 19,000 instructions for a timeout. Here a state is an inner
node of the code tree and one lookup per byte gives the next state and the bytes that byte
completes, about a third of that. The machine is built at import from `hpack`'s code table,
a nibble machine first and then composed into the byte machine (tens of milliseconds).
"""

from __future__ import annotations

from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

_EOS = 256  # the end-of-string symbol: never valid inside a string (§5.2)


def _tree() -> list[list[int]]:
    """The code tree as [child on bit 0, child on bit 1] per inner node, the root first.

    A child is an inner node's index, or a leaf as ~symbol (negative).
    """
    nodes = [[0, 0]]
    for symbol, (code, length) in enumerate(zip(REQUEST_CODES, REQUEST_CODES_LENGTH, strict=True)):
        node = 0
        for shift in range(length - 1, 0, -1):
            bit = code >> shift & 1
            if not nodes[node][bit]:
                nodes.append([0, 0])
                nodes[node][bit] = len(nodes) - 1
            node = nodes[node][bit]
        nodes[node][code & 1] = ~symbol
    return nodes


def _machine() -> tuple[list[int], list[bytes], frozenset[int]]:
    """Per (state << 8 | byte): the next state (shifted left 8) and the bytes emitted; and
    the states a string may end in. An extra last state is the error: it never leaves."""
    nodes = _tree()
    error = len(nodes)
    # The nibble machine: (next state, emitted) per (state, nibble).
    nibble: list[tuple[int, bytes]] = []
    for state in range(error):
        for value in range(16):
            node, emitted = state, b""
            for shift in (3, 2, 1, 0):
                child = nodes[node][value >> shift & 1]
                if child >= 0:
                    node = child
                elif ~child == _EOS:
                    node = error
                    break
                else:
                    node, emitted = 0, emitted + bytes([~child])
            nibble.append((node, emitted))
    nibble += [(error, b"")] * 16
    shared: dict[bytes, bytes] = {}  # one object per distinct emission: they repeat a lot
    shifted = [state << 8 for state in range(error + 1)]  # shared int objects, not 65,792
    following: list[int] = []
    emits: list[bytes] = []
    for state in range(error + 1):
        for high in range(16):  # a byte is its high nibble's step, then its low nibble's
            middle, first = nibble[state << 4 | high]
            for end, second in nibble[middle << 4 : (middle + 1) << 4]:
                following.append(shifted[end])
                emitted = first + second
                emits.append(shared.setdefault(emitted, emitted))
    # A string ends on a code boundary, or inside EOS's code with fewer than 8 bits of it
    # (the padding: all ones), which is the root and up to seven 1-bits down from it.
    accepting = {0}
    node = 0
    for _ in range(7):
        node = nodes[node][1]
        accepting.add(node << 8)
    return following, emits, frozenset(accepting)


_FOLLOWING, _EMITS, _ACCEPTING = _machine()


def decode(data: bytes) -> bytes:
    """The bytes a Huffman-coded string stands for; ValueError for EOS or bad padding."""
    state = 0
    parts = []
    for byte in data:
        step = state | byte
        parts.append(_EMITS[step])
        state = _FOLLOWING[step]
    if state not in _ACCEPTING:
        raise ValueError("not a Huffman-coded string (EOS inside, or padding that is not EOS)")
    return b"".join(parts)
