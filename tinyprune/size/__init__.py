"""Storage (technique layer): the bytes of a compressed weight, exactly, stage by stage.

Deep Compression (Han, Mao & Dally, ICLR 2016) stores a pruned, weight-shared network in three
stages; each idea has its module here:

==============================  ===================================================================
Paper / lecture                 tinyprune.size
==============================  ===================================================================
Sec. 2, Fig. 2: CSR with        :mod:`.csr` -- :func:`csr_encode` (+ ``_naive`` twin),
relative indices, filler zero   :func:`csr_decode`, :class:`RelativeCSR`
Sec. 3, Fig. 3: weight sharing  :mod:`.codebook` -- :func:`codebook_encode`,
(codebook + b-bit indices)      :func:`codebook_from_indices`, :func:`codebook_decode`
Sec. 4, Fig. 5: Huffman coding  :mod:`.huffman` -- :func:`huffman_code_lengths`,
                                :func:`canonical_codes`, :func:`huffman_encode`,
                                :func:`huffman_decode` (+ ``_naive`` twins), :class:`HuffmanCode`
entropy bound                   :mod:`.entropy` -- :func:`entropy_bits`, :func:`entropy_bound_bits`
Fig. 1 / Table 1: the pipeline  :mod:`.accounting` -- :func:`storage_stages`,
                                :func:`model_storage_stages`, :func:`format_storage_stages`,
                                :func:`best_index_bits`
N:M (2:4) sparsity metadata     :mod:`.nm_bits` -- :func:`nm_storage_bits`,
                                :func:`nm_encode_positions`, :func:`nm_decode_positions`
the compressed model file       :mod:`.file` -- :func:`save_compressed`, :func:`load_compressed`,
                                :func:`read_header`, :class:`CompressedFileError`
==============================  ===================================================================

Bit packing of fixed-width integers is shared with other packages:
:mod:`tinyprune.common.bitpack`.
"""

from .accounting import (
    STORAGE_COLUMNS,
    best_index_bits,
    format_storage_stages,
    model_storage_stages,
    storage_stages,
)
from .codebook import (
    CodebookStorage,
    bits_for,
    codebook_decode,
    codebook_encode,
    codebook_from_indices,
)
from .csr import RelativeCSR, csr_decode, csr_encode, csr_encode_naive
from .entropy import entropy_bits, entropy_bound_bits
from .file import CompressedFileError, load_compressed, read_header, save_compressed
from .huffman import (
    HuffmanCode,
    HuffmanEncoded,
    canonical_codes,
    huffman_code_lengths,
    huffman_decode,
    huffman_decode_naive,
    huffman_encode,
    huffman_encode_naive,
)
from .nm_bits import (
    nm_decode_positions,
    nm_encode_positions,
    nm_encode_positions_naive,
    nm_position_bits,
    nm_storage_bits,
)

__all__ = [
    "STORAGE_COLUMNS", "CodebookStorage", "CompressedFileError", "HuffmanCode", "HuffmanEncoded",
    "RelativeCSR", "best_index_bits", "bits_for", "canonical_codes", "codebook_decode",
    "codebook_encode", "codebook_from_indices", "csr_decode", "csr_encode", "csr_encode_naive",
    "entropy_bits", "entropy_bound_bits", "format_storage_stages", "huffman_code_lengths",
    "huffman_decode", "huffman_decode_naive", "huffman_encode", "huffman_encode_naive",
    "load_compressed", "model_storage_stages", "nm_decode_positions", "nm_encode_positions",
    "nm_encode_positions_naive", "nm_position_bits", "nm_storage_bits", "read_header",
    "save_compressed", "storage_stages",
]
