r"""Canonical Huffman coding of a symbol stream: optimal code lengths, real bits, fast decoding.

Deep Compression's third stage (Han, Mao & Dally, ICLR 2016, Sec. 4, Fig. 5) Huffman-codes the
quantized weight indices and the sparse relative indices: both are far from uniform, so frequent
symbols get short code words and the stream shrinks by 20-30% more.

* :func:`huffman_code_lengths` -- Huffman's algorithm (1952): repeatedly merge the two least
  frequent subtrees; a symbol's code length is its leaf depth. The lengths minimise the total
  cost :math:`\sum_s f_s \ell_s` over all prefix codes, and the average length lies in
  :math:`[H, H + 1)` (Shannon entropy :math:`H`, :mod:`tinyprune.size.entropy`).
* :func:`canonical_codes` -- the canonical code for those lengths (Schwartz & Kallick 1964, as in
  DEFLATE, RFC 1951 Sec. 3.2.2): symbols sorted by (length, symbol) get consecutive code values,
  so the lengths alone describe the code. The table is stored as one 6-bit length per symbol
  (:meth:`HuffmanCode.to_bytes`).
* :func:`huffman_encode` / :func:`huffman_decode` -- a real bit string (bytes, most significant
  bit first) and back; :func:`huffman_encode_naive` and :func:`huffman_decode_naive` are the
  readable loop twins (bit by bit), tested to agree.

**One-symbol alphabets.** A stream of one repeated symbol carries no information: its code word is
empty (0 bits, average length :math:`0 = H`) and its bit string is empty; the decoder repeats the
symbol ``n_symbols`` times. The table then has all lengths 0 and names the symbol as the last one
of the (truncated) alphabet: :class:`HuffmanCode` keeps symbols ``0 .. K-1`` where ``K - 1`` is the
largest symbol used.

**Fast decoding without a loop per symbol** (:func:`huffman_decode`). Every bit position ``i`` of
the stream is treated as if a code word started there:

1. the next ``L`` bits (``L`` = longest code length) at every position are read at once (for
   each bit offset inside a byte, from a 32- or 64-bit word at every byte); in a canonical code,
   the length of the word starting with window ``w`` is the first length whose left-aligned upper
   limit exceeds ``w`` (``np.searchsorted``, or a lookup table of ``2**L`` entries when
   ``L <= 16`` and the stream is long enough to pay for it). This gives
   ``next[i] = i + length(i)``;
2. the true words are the chain ``0 -> next[0] -> next[next[0]] -> ...``. The stream is cut into
   blocks of ``S = 1024`` bits. The chain enters a block within its first ``L`` bits, so from each
   of these ``L`` candidate entries the chain is followed to its exit from the block, all walks
   in lock step; walks that meet merge (one future), so each bit position is visited at most
   once. A loop over the *blocks* (not the symbols) links them: the entry of block ``b + 1`` is
   the exit of the true entry of block ``b``;
3. all blocks are then walked in lock step from their entries (``S`` rounds at most, one
   vectorized step per round over all blocks), which lists every word start in order;
4. the symbols are read from the windows at the word starts.

A code whose words all have the same length (``2**L`` equally frequent symbols) is read directly
with :func:`~tinyprune.common.bitpack.unpack_bits`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from tinyprune.common.bitpack import pack_bits, packed_nbytes, unpack_bits
from tinyprune.nn.validation import check_int

__all__ = ["MAX_CODE_LENGTH", "HuffmanCode", "HuffmanEncoded", "canonical_codes",
           "huffman_code_lengths", "huffman_decode", "huffman_decode_naive", "huffman_encode",
           "huffman_encode_naive"]

MAX_CODE_LENGTH = 57  # a 64-bit window shifted by up to 7 bits still holds 57 bits
LENGTH_BITS = 6  # bits per code length in the stored table (lengths 0..57 < 64)
_BLOCK_BITS = 1024  # block size of the chain walk (>= MAX_CODE_LENGTH)
_TABLE_MAX_L = 16  # direct lookup table of 2**L lengths up to this L


# ------------------------------------------------------------------------------ code lengths
def _check_freqs(freqs):
    if not isinstance(freqs, np.ndarray):
        freqs = np.asarray(freqs)
    if freqs.ndim != 1 or freqs.dtype.kind not in "ui":
        raise TypeError(f"freqs: expected a 1-D integer array of symbol counts, got "
                        f"{freqs.dtype} of shape {freqs.shape}")
    if freqs.size and int(freqs.min()) < 0:
        raise ValueError(f"freqs: expected counts >= 0, got min {int(freqs.min())}")
    return freqs


def huffman_code_lengths(freqs) -> np.ndarray:
    """Optimal prefix-code lengths for symbol counts (Huffman's algorithm).

    Parameters
    ----------
    freqs : array of int, shape ``(K,)``
        Count of each symbol ``0 .. K-1`` (``>= 0``).

    Returns
    -------
    ndarray of uint8, shape ``(K,)``
        Code length of each symbol; 0 for unused symbols, and 0 for the only symbol when just one
        is used (see the module docstring). Ties are merged in a fixed order (count, then the
        order in which subtrees were made), so the result is deterministic.

    Raises
    ------
    ValueError
        Negative counts, or a code longer than :data:`MAX_CODE_LENGTH` bits would be needed
        (only for counts spanning more than ~10^11, far beyond any weight tensor).
    """
    freqs = _check_freqs(freqs)
    lengths = np.zeros(freqs.size, dtype=np.uint8)
    used = np.flatnonzero(freqs)  # (u,) symbols with a count
    if used.size < 2:
        return lengths
    # heap of (count, tie-break id, node); leaves 0..u-1, merged subtrees u, u+1, ...
    heap = [(int(freqs[s]), i, i) for i, s in enumerate(used.tolist())]
    heapq.heapify(heap)
    parent = [-1] * (2 * used.size - 1)
    node = used.size
    while len(heap) > 1:  # one merge per used symbol: a loop over the alphabet, not the stream
        fa, _, a = heapq.heappop(heap)
        fb, _, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (fa + fb, node, node))
        node += 1
    depth = [0] * len(parent)
    for n in range(len(parent) - 2, -1, -1):  # parents are made after their children
        depth[n] = depth[parent[n]] + 1
    leaf_depth = np.array(depth[:used.size], dtype=np.int64)
    if leaf_depth.max() > MAX_CODE_LENGTH:
        raise ValueError(f"freqs: the Huffman code needs {leaf_depth.max()} bits for a symbol, "
                         f"more than the {MAX_CODE_LENGTH} supported")
    lengths[used] = leaf_depth
    return lengths


def _check_lengths(lengths, name="lengths"):
    if not isinstance(lengths, np.ndarray) or lengths.ndim != 1 or lengths.dtype.kind not in "ui":
        raise TypeError(f"{name}: expected a 1-D integer array of code lengths, got "
                        f"{getattr(lengths, 'dtype', type(lengths).__name__)}")
    if lengths.size and (int(lengths.min()) < 0 or int(lengths.max()) > MAX_CODE_LENGTH):
        raise ValueError(f"{name}: expected lengths in [0, {MAX_CODE_LENGTH}], got min "
                         f"{int(lengths.min())}, max {int(lengths.max())}")
    used = lengths[lengths > 0].astype(np.int64)
    if used.size:
        top = int(used.max())
        kraft = sum(int(c) << (top - int(n)) for n, c in zip(*np.unique(used, return_counts=True),
                                                             strict=True))
        if used.size == 1 or kraft != 1 << top:  # Huffman codes are complete: sum 2^-l == 1
            raise ValueError(f"{name}: not a complete prefix code (Kraft sum "
                             f"{kraft}/2^{top}, {used.size} code words; expected exactly 1)")
    return lengths.astype(np.uint8)


def canonical_codes(lengths) -> np.ndarray:
    r"""Canonical code values for code lengths (DEFLATE's rule).

    Symbols sorted by (length, symbol) receive consecutive integers; moving to a longer length
    appends zeros: :math:`\text{first}_{\ell} = (\text{first}_{\ell-1} + n_{\ell-1}) \cdot 2`.
    The code word of symbol ``s`` is the ``lengths[s]``-bit binary form of ``codes[s]``.

    Parameters
    ----------
    lengths : ndarray of int, shape ``(K,)``, a complete prefix code (or all zeros)

    Returns
    -------
    ndarray of uint64, shape ``(K,)`` (0 for unused symbols)

    Examples
    --------
    >>> canonical_codes(np.array([2, 1, 3, 3])).tolist()  # 10, 0, 110, 111
    [2, 0, 6, 7]
    """
    lengths = _check_lengths(lengths)
    t = _Tables(lengths)
    codes = np.zeros(lengths.size, dtype=np.uint64)
    codes[t.sorted_symbols] = t.sorted_codes
    return codes


class _Tables:
    """Canonical decoding tables for complete code lengths (at least two used symbols)."""

    def __init__(self, lengths):
        used = np.flatnonzero(lengths)
        self.L = int(lengths.max()) if used.size else 0
        order = np.lexsort((used, lengths[used]))  # by length, then symbol
        self.sorted_symbols = used[order]  # (u,)
        sorted_len = lengths[self.sorted_symbols].astype(np.int64)  # (u,)
        count = np.bincount(sorted_len, minlength=self.L + 1)  # (L + 1,) words per length
        first = [0] * (self.L + 1)  # first code value of each length (Python ints)
        code = 0
        for n in range(1, self.L + 1):
            code = (code + int(count[n - 1])) << 1 if n > 1 else 0
            first[n] = code
        self.count, self.first = count, first
        offset = np.concatenate([[0], np.cumsum(count)])[:-1]  # (L + 1,) sorted index of 1st
        self.offset = offset
        rank = np.arange(used.size) - offset[sorted_len]  # (u,) position within its length
        self.sorted_codes = (np.array(first, dtype=np.uint64)[sorted_len]
                             + rank.astype(np.uint64))  # (u,)
        present = np.flatnonzero(count)  # lengths with words, ascending
        self.present = present.astype(np.uint8)
        # left-aligned upper limit of each present length's code values, increasing
        self.limits = np.array([(first[n] + int(count[n])) << (self.L - n) for n in present],
                               dtype=np.uint64)
        self._table = None

    def length_of(self, win):
        """Length of the word starting with each ``L``-bit window (unsigned int array)."""
        if self.L <= _TABLE_MAX_L and (self._table is not None or win.size >= 1 << self.L):
            if self._table is None:  # length of every possible window
                every = np.arange(1 << self.L, dtype=np.uint64)
                self._table = self.present[np.searchsorted(self.limits, every, side="right")]
            return self._table[win]
        return self.present[np.searchsorted(self.limits, win.astype(np.uint64), side="right")]

    def symbol_of(self, win, length):
        """Symbol of the word of length ``length`` starting with window ``win``."""
        n = length.astype(np.int64)
        value = (win >> (self.L - length).astype(np.uint64)).astype(np.int64)  # the code value
        first = np.array(self.first, dtype=np.int64)
        return self.sorted_symbols[self.offset[n] + value - first[n]]


# ------------------------------------------------------------------------------ code object
@dataclass(frozen=True)
class HuffmanCode:
    """A canonical prefix code given by its lengths (see the module docstring).

    Attributes
    ----------
    lengths : ndarray of uint8, shape ``(K,)``
        Code length per symbol ``0 .. K-1``; either a complete prefix code, or all zeros with
        ``K >= 1`` (the one-symbol code of symbol ``K - 1``), or ``K = 0`` (empty stream).
    """

    lengths: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "lengths", _check_lengths(self.lengths))

    @classmethod
    def from_frequencies(cls, freqs) -> HuffmanCode:
        """The Huffman code of symbol counts, alphabet truncated after the last used symbol."""
        freqs = _check_freqs(freqs)
        used = np.flatnonzero(freqs)
        k = int(used[-1]) + 1 if used.size else 0
        return cls(huffman_code_lengths(freqs[:k]))

    @property
    def alphabet_size(self) -> int:
        return int(self.lengths.size)

    @property
    def single_symbol(self) -> int | None:
        """The symbol of a one-symbol code (0 bits per symbol), else ``None``."""
        if self.lengths.size and not self.lengths.any():
            return self.lengths.size - 1
        return None

    @property
    def codes(self) -> np.ndarray:
        """:func:`canonical_codes` of the lengths, uint64, shape ``(K,)``."""
        return canonical_codes(self.lengths)

    def encoded_bits(self, symbols) -> int:
        """Exact length of the bit string of ``symbols`` under this code."""
        return int(self.lengths.astype(np.int64)[_check_symbols(symbols, self)].sum())

    @property
    def table_nbytes(self) -> int:
        """Bytes of :meth:`to_bytes`: ``K`` as uint32 + ``K`` lengths of 6 bits."""
        return 4 + packed_nbytes(self.alphabet_size, LENGTH_BITS)

    def to_bytes(self) -> bytes:
        """The table: alphabet size ``K`` (uint32, little-endian), then ``K`` 6-bit lengths."""
        return (np.uint32(self.alphabet_size).astype("<u4").tobytes()
                + pack_bits(self.lengths, LENGTH_BITS).tobytes())

    @classmethod
    def from_bytes(cls, data) -> HuffmanCode:
        """Read a table written by :meth:`to_bytes` (validated: a complete prefix code)."""
        data = bytes(data)
        if len(data) < 4:
            raise ValueError(f"data: expected at least 4 bytes (alphabet size), got {len(data)}")
        k = int(np.frombuffer(data[:4], dtype="<u4")[0])
        need = packed_nbytes(k, LENGTH_BITS)
        if len(data) != 4 + need:
            raise ValueError(f"data: a table of {k} lengths takes {4 + need} bytes, got "
                             f"{len(data)}")
        return cls(unpack_bits(np.frombuffer(data, np.uint8, offset=4), LENGTH_BITS, k))


@dataclass(frozen=True)
class HuffmanEncoded:
    """A Huffman-coded stream.

    Attributes
    ----------
    code : HuffmanCode
    data : ndarray of uint8, shape ``(ceil(n_bits / 8),)``
        The code words back to back, most significant bit first, zero-padded.
    n_symbols : int
    n_bits : int
    """

    code: HuffmanCode
    data: np.ndarray
    n_symbols: int
    n_bits: int

    @property
    def payload_nbytes(self) -> int:
        return packed_nbytes(self.n_bits, 1)

    @property
    def nbytes(self) -> int:
        """Payload bytes + code table bytes."""
        return self.payload_nbytes + self.code.table_nbytes


# ------------------------------------------------------------------------------ encoding
def _check_symbols(symbols, code=None):
    if not isinstance(symbols, np.ndarray) or symbols.dtype.kind not in "ui":
        raise TypeError(f"symbols: expected an integer ndarray, got "
                        f"{getattr(symbols, 'dtype', type(symbols).__name__)}")
    flat = symbols.reshape(-1)
    if flat.size and int(flat.min()) < 0:
        raise ValueError(f"symbols: expected symbols >= 0, got min {int(flat.min())}")
    if code is not None and flat.size:
        top = int(flat.max())
        single = code.single_symbol
        if single is not None:
            if int(flat.min()) != single or top != single:
                raise ValueError(f"symbols: the one-symbol code codes only symbol {single}")
        elif top >= code.alphabet_size or np.any(code.lengths[flat] == 0):
            raise ValueError("symbols: a symbol has no code word in this code")
    return flat.astype(np.intp)


def _prepare(symbols, code):
    if code is None:
        flat = _check_symbols(symbols)
        code = HuffmanCode.from_frequencies(np.bincount(flat) if flat.size
                                            else np.zeros(0, np.int64))
    elif not isinstance(code, HuffmanCode):
        raise TypeError(f"code: expected a HuffmanCode or None, got {type(code).__name__}")
    return _check_symbols(symbols, code), code


def huffman_encode(symbols, code=None) -> HuffmanEncoded:
    """Encode a symbol stream into a bit string (vectorized).

    Each symbol's code word, left-aligned in a big-endian word of 8, 16, 32 or 64 bits, is
    unpacked into a bit matrix ``(n, width)``; the first ``length`` bits of every row, read in
    row order, are the stream (``np.packbits``).

    Parameters
    ----------
    symbols : ndarray of int, any shape (flattened in C order), entries ``>= 0``
    code : HuffmanCode, optional
        Default: the Huffman code of the stream's own symbol counts.

    Returns
    -------
    HuffmanEncoded
    """
    flat, code = _prepare(symbols, code)
    if code.single_symbol is not None or flat.size == 0:
        return HuffmanEncoded(code, np.zeros(0, np.uint8), int(flat.size), 0)
    lens = code.lengths.astype(np.int64)[flat]  # (n,)
    width = 8
    while width < int(code.lengths.max()):
        width *= 2
    word = code.codes[flat] << (width - lens).astype(np.uint64)  # (n,) left-aligned
    word = word.astype(f">u{width // 8}")
    bits = np.unpackbits(word.view(np.uint8).reshape(flat.size, width // 8), axis=1)  # (n, width)
    keep = np.arange(width) < lens[:, None]  # (n, width)
    return HuffmanEncoded(code, np.packbits(bits[keep]), int(flat.size), int(lens.sum()))


def huffman_encode_naive(symbols, code=None) -> HuffmanEncoded:
    """Loop twin of :func:`huffman_encode`: the code words as text, joined (for tests)."""
    flat, code = _prepare(symbols, code)
    if code.single_symbol is not None or flat.size == 0:
        return HuffmanEncoded(code, np.zeros(0, np.uint8), int(flat.size), 0)
    codes, lens = code.codes.tolist(), code.lengths.tolist()
    text = "".join(format(codes[s], f"0{lens[s]}b") for s in flat.tolist())
    bits = np.array([c == "1" for c in text], dtype=bool)
    return HuffmanEncoded(code, np.packbits(bits), int(flat.size), len(text))


# ------------------------------------------------------------------------------ decoding
def _check_encoded(enc):
    if not isinstance(enc, HuffmanEncoded):
        raise TypeError(f"enc: expected a HuffmanEncoded, got {type(enc).__name__}")
    n = check_int(enc.n_symbols, "enc.n_symbols", minimum=0)
    n_bits = check_int(enc.n_bits, "enc.n_bits", minimum=0)
    data = enc.data
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 1:
        raise TypeError("enc.data: expected a 1-D uint8 array")
    if data.size < packed_nbytes(n_bits, 1):
        raise ValueError(f"enc.data: {data.size} bytes cannot hold {n_bits} bits")
    code = enc.code
    single = code.single_symbol
    if code.alphabet_size == 0 and n:
        raise ValueError(f"enc: {n} symbols but an empty code")
    if (single is not None or code.alphabet_size == 0) and n_bits:
        raise ValueError(f"enc.n_bits: a one-symbol or empty code has 0 bits, got {n_bits}")
    if single is None and code.alphabet_size and n_bits < n:
        raise ValueError(f"enc.n_bits: {n} symbols need at least {n} bits, got {n_bits}")
    return n, n_bits, data, code


def _byte_words(data, width):
    """Big-endian ``width``-bit word starting at every byte of ``data`` (zero past the end)."""
    nb = data.size
    dt = np.uint32 if width == 32 else np.uint64
    padded = np.zeros(nb + width // 8, dtype=np.uint8)
    padded[:nb] = data
    word = np.zeros(nb, dtype=dt)  # (nb,)
    for k in range(width // 8):
        word |= padded[k:k + nb].astype(dt) << dt(width - 8 - 8 * k)
    return word


def _windows(data, positions, L):
    """The ``L`` bits starting at each given bit position, as uint64 (zero bits past the end)."""
    word = _byte_words(data, 64)
    shift = (positions & 7).astype(np.uint64)
    return (word[positions >> 3] << shift) >> np.uint64(64 - L)


def _lengths_everywhere(data, n_bits, t):
    """Code length of the word that would start at every bit position, uint8 ``(n_bits,)``.

    Computed per bit offset ``k`` inside a byte, on contiguous arrays: the window at bit
    ``8 j + k`` is ``(word_j >> (width - L - k)) & (2**L - 1)``, then the eight offsets are
    interleaved.
    """
    L = t.L
    width = 32 if L <= 25 else 64  # a window shifted by up to 7 bits must fit the word
    dt = np.uint32 if width == 32 else np.uint64
    word = _byte_words(data, width)  # (nb,)
    mask = dt((1 << L) - 1)
    out = np.empty((word.size, 8), dtype=np.uint8)  # (nb, 8): byte j, bit offset k
    for k in range(8):
        out[:, k] = t.length_of((word >> dt(width - L - k)) & mask)
    return out.reshape(-1)[:n_bits]


def _block_exits(nxt, n_bits, L):
    """Exit of every candidate entry: for block ``b`` and offset ``o < L``, the first position
    ``>= (b + 1) * S`` on the chain from ``b * S + o`` (module docstring, step 2).

    All candidates walk in lock step; a walk that steps on a position another walk of its block
    has reached stops and takes that walk's exit (same position, same future), so every bit
    position is visited at most once. Returns ``(exits, n_cand)``, ``exits`` of shape
    ``(n_blocks * n_cand,)`` indexed by ``b * n_cand + o``.
    """
    S, itype = _BLOCK_BITS, nxt.dtype
    n_blocks = -(-n_bits // S)
    n_cand = min(L, S)
    block = np.repeat(np.arange(n_blocks, dtype=itype), n_cand)  # (lanes,)
    start = block * S + np.tile(np.arange(n_cand, dtype=itype), n_blocks)  # (lanes,)
    target = np.arange(start.size, dtype=itype)  # lane -> lane it merged into (itself if not)
    exits = np.full(start.size, n_bits, dtype=itype)
    owner = np.full(n_bits, -1, dtype=itype)  # lane that reached each position first
    act = np.flatnonzero(start < n_bits).astype(itype)  # active lanes
    pos = start[act]  # (active,) current position of each active lane
    end = np.minimum((block[act] + 1) * S, n_bits).astype(itype)  # (active,) its block's end
    owner[pos] = act
    while act.size:  # one word per round; at most S rounds
        q = nxt[pos]  # (active,) next word start
        inside = q < end
        if not inside.all():  # walks leaving their block: record the exit
            exits[act[~inside]] = q[~inside]
            act, q, end = act[inside], q[inside], end[inside]
        prev = owner[q]
        hit = prev >= 0  # reached earlier by another walk: merge into it
        if hit.any():
            target[act[hit]] = prev[hit]
            act, q, end = act[~hit], q[~hit], end[~hit]
        owner[q] = act  # walks arriving together: one of them owns the position
        won = owner[q] == act
        if not won.all():
            target[act[~won]] = owner[q[~won]]
            act, q, end = act[won], q[won], end[won]
        pos = q
    while True:  # follow merges to the walk that exited (merge positions increase: no cycles)
        nxt_target = target[target]
        if np.array_equal(nxt_target, target):
            break
        target = nxt_target
    return exits[target], n_cand


def _chain(nxt, n_bits, L):
    """Word starts: the chain 0 -> nxt[0] -> ... below ``n_bits`` (module docstring, 2-3)."""
    S, itype = _BLOCK_BITS, nxt.dtype
    exits, n_cand = _block_exits(nxt, n_bits, L)
    n_blocks = -(-n_bits // S)
    entries = np.full(n_blocks, n_bits, dtype=itype)
    e = 0
    for b in range(n_blocks):  # one step per block of S bits, not per symbol
        if e >= n_bits:
            break
        entries[b] = e
        e = int(exits[b * n_cand + e - b * S])
    lane_end = np.minimum((np.arange(n_blocks, dtype=itype) + 1) * S, n_bits)  # (n_blocks,)
    starts = np.full((S, n_blocks), -1, dtype=itype)  # (round, lane)
    cur = entries.copy()
    rounds = 0
    while rounds < S:  # lock step over all blocks: one word per block per round
        active = cur < lane_end
        if not active.any():
            break
        starts[rounds] = np.where(active, cur, -1)
        cur = np.where(active, nxt[np.minimum(cur, n_bits - 1)], cur)
        rounds += 1
    chain = starts[:rounds].T.reshape(-1)  # block by block, in order
    return chain[chain >= 0], e


def huffman_decode(enc: HuffmanEncoded) -> np.ndarray:
    """Decode a :class:`HuffmanEncoded` stream, vectorized (see the module docstring).

    Returns
    -------
    ndarray of intp, shape ``(n_symbols,)``

    Raises
    ------
    ValueError
        The bit string does not split into exactly ``n_symbols`` code words of ``n_bits`` bits.
    """
    n, n_bits, data, code = _check_encoded(enc)
    if code.single_symbol is not None:
        return np.full(n, code.single_symbol, dtype=np.intp)
    if n == 0:
        if n_bits:
            raise ValueError(f"enc: 0 symbols but {n_bits} bits")
        return np.zeros(0, dtype=np.intp)
    t = _Tables(code.lengths)
    if t.present.size == 1:  # every word has length L (e.g. 2**L equally frequent symbols)
        if n_bits != n * t.L:
            raise ValueError(f"enc: {n} code words of {t.L} bits need {n * t.L} bits, "
                             f"got {n_bits}")
        if t.L <= 32:
            return t.sorted_symbols[unpack_bits(data, t.L, n).astype(np.intp)].astype(np.intp)
    itype = np.int32 if n_bits < 2**31 - 2 * _BLOCK_BITS else np.int64
    nxt = np.arange(n_bits, dtype=itype)  # (n_bits,)
    nxt += _lengths_everywhere(data, n_bits, t)  # next word start if a word started here
    starts, end = _chain(nxt, n_bits, t.L)
    if starts.size != n or end != n_bits:
        raise ValueError(f"enc: the bit string splits into {starts.size} code words ending at bit "
                         f"{end}, expected {n} words ending at bit {n_bits}")
    win = _windows(data, starts, t.L)  # (n,)
    return t.symbol_of(win, t.length_of(win)).astype(np.intp)


def huffman_decode_naive(enc: HuffmanEncoded) -> np.ndarray:
    """Loop twin of :func:`huffman_decode`: read bit by bit until a code word is complete.

    With ``first[l]`` the first canonical code value of length ``l`` and ``count[l]`` the number
    of words of that length, the ``l`` bits read so far form a word when
    ``0 <= value - first[l] < count[l]``.
    """
    n, n_bits, data, code = _check_encoded(enc)
    if code.single_symbol is not None:
        return np.full(n, code.single_symbol, dtype=np.intp)
    out = np.zeros(n, dtype=np.intp)
    if n == 0:
        return out
    t = _Tables(code.lengths)
    bits = np.unpackbits(data, count=n_bits).tolist()
    i = 0
    for j in range(n):
        value, length = 0, 0
        while True:
            if i >= n_bits:
                raise ValueError(f"enc: the bit string ends inside code word {j}")
            value = (value << 1) | bits[i]
            i += 1
            length += 1
            if length <= t.L and 0 <= value - t.first[length] < int(t.count[length]):
                out[j] = t.sorted_symbols[t.offset[length] + value - t.first[length]]
                break
    if i != n_bits:
        raise ValueError(f"enc: {n} code words end at bit {i}, expected {n_bits}")
    return out
