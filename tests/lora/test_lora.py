"""LoRA weights are checked before anything is sent: sound files are described, broken ones refused
with a specific reason, pickles refused without ever being unpickled."""

from __future__ import annotations

import io
import json
import struct

import pytest
from safetensors import safe_open

from hubpress.errors import ConfigError, HubpressError
from hubpress.lora.weights import (
    InvalidWeightsError,
    LoraInfo,
    NotALoraError,
    PickleWeightsError,
    WeightsNotFoundError,
    find_weights,
    inspect_safetensors,
    read_header,
    shortest_unique_suffixes,
)
from hubpress.testdata.synth_lora import BROKEN_KINDS, _write_raw, write_broken, write_lora, write_streaming


@pytest.mark.parametrize("naming", ["peft", "kohya", "diffusers"])
def test_each_naming_is_recognised_and_described(tmp_path, naming):
    path = write_lora(tmp_path / "w.safetensors", naming=naming, rank=8, modules=10, hidden=16)
    info = inspect_safetensors(path)
    assert info.naming == naming
    assert info.rank == 8 and info.ranks == (8,)
    assert info.lora_layers == 10
    assert info.dtypes == ("F16",)
    assert info.metadata == {"format": "pt"}
    expected_params = 10 * 2 * 8 * 16 + (10 if naming == "kohya" else 0)  # kohya adds scalar alphas
    assert info.parameter_count == expected_params
    if naming == "kohya":
        assert info.alphas == (8.0,)
        assert "attn_to_q" in info.target_modules
    else:
        assert info.components == ("transformer",)
        assert {"to_q", "to_k", "to_v", "to_out.0", "add_q_proj"} <= set(info.target_modules)


def test_lora_info_round_trips_through_json(tmp_path):
    info = inspect_safetensors(write_lora(tmp_path / "w.safetensors", metadata={"ss_network_alpha": "4"}))
    data = json.loads(info.to_json())
    assert data["alphas"] == [4.0]
    assert LoraInfo.from_dict(data) == info


def test_target_modules_are_shortest_unambiguous_suffixes():
    paths = {
        ("attn", "to_q"),
        ("attn", "to_out", "0"),
        ("img_mlp", "net", "0", "proj"),
        ("txt_mlp", "net", "0", "proj"),
    }
    assert shortest_unique_suffixes(paths) == ("img_mlp.net.0.proj", "to_out.0", "to_q", "txt_mlp.net.0.proj")


def test_mixed_ranks_and_bf16_alpha_are_reported(tmp_path):
    alpha_bf16 = struct.pack("<f", 16.0)[2:]
    header = {
        "lora_unet_blocks_0_to_q.lora_down.weight": {
            "dtype": "F32",
            "shape": [2, 4],
            "data_offsets": [0, 32],
        },
        "lora_unet_blocks_0_to_q.lora_up.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [32, 64]},
        "lora_unet_blocks_0_to_k.lora_down.weight": {
            "dtype": "F32",
            "shape": [4, 4],
            "data_offsets": [64, 128],
        },
        "lora_unet_blocks_0_to_k.lora_up.weight": {
            "dtype": "F32",
            "shape": [4, 4],
            "data_offsets": [128, 192],
        },
        "lora_unet_blocks_0_to_k.alpha": {"dtype": "BF16", "shape": [], "data_offsets": [192, 194]},
    }
    path = _write_raw(tmp_path / "w.safetensors", header, bytes(192) + alpha_bf16)
    info = inspect_safetensors(path)
    assert info.ranks == (2, 4)
    assert info.alphas == (16.0,)
    assert info.target_modules == ("to_k", "to_q")
    assert info.dtypes == ("BF16", "F32")


def test_streamed_file_is_valid_and_near_the_target_size(tmp_path):
    path = write_streaming(tmp_path / "big.safetensors", target_bytes=2_000_000, rank=4, modules=16)
    assert abs(path.stat().st_size - 2_000_000) < 20_000
    info = inspect_safetensors(path)
    assert info.lora_layers == 16 and info.rank == 4
    with safe_open(str(path), framework="numpy") as f:
        assert len(list(f.keys())) == 32


EXPECTED_REASONS = {
    "huge_header": (InvalidWeightsError, "exceeds the 100000000-byte limit"),
    "offsets_past_end": (InvalidWeightsError, "past its end"),
    "overlapping": (InvalidWeightsError, "overlap"),
    "truncated": (InvalidWeightsError, "truncated"),
    "not_lora": (NotALoraError, "not a LoRA"),
    "pickle": (PickleWeightsError, "Python pickle"),
    "zip": (PickleWeightsError, "zip archive"),
    "bad_json": (InvalidWeightsError, "not valid JSON"),
    "bad_dtype": (InvalidWeightsError, "unknown dtype 'F128'"),
    "size_mismatch": (InvalidWeightsError, "needs 48 bytes but its offsets span 32"),
    "unpaired": (InvalidWeightsError, "lack their A/down or B/up half"),
}


@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_each_broken_variant_is_refused_with_its_reason(tmp_path, kind):
    path = write_broken(tmp_path / f"{kind}.safetensors", kind)
    error, reason = EXPECTED_REASONS[kind]
    with pytest.raises(error) as caught:
        inspect_safetensors(path)
    assert reason in str(caught.value)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ConfigError)


def test_pickle_renamed_to_safetensors_says_how_to_convert(tmp_path):
    path = write_broken(tmp_path / "pytorch_lora_weights.safetensors", "pickle")
    with pytest.raises(PickleWeightsError, match="never unpickles") as caught:
        inspect_safetensors(path)
    assert "save_file" in str(caught.value)


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".ckpt", ".pth"])
def test_pickle_extensions_are_refused_without_reading(tmp_path, suffix):
    path = tmp_path / f"pytorch_lora_weights{suffix}"
    path.write_bytes(b"whatever: never read")
    with pytest.raises(PickleWeightsError, match="convert|Convert"):
        inspect_safetensors(path)
    with pytest.raises(PickleWeightsError):
        find_weights(path)


def test_gaps_in_the_data_section_are_refused_by_safetensors(tmp_path):
    header = {
        "m.lora_A.weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]},
        "m.lora_B.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [32, 64]},
    }
    path = _write_raw(tmp_path / "gap.safetensors", header, bytes(72))
    with pytest.raises(InvalidWeightsError, match="safetensors refuses to open it"):
        inspect_safetensors(path)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {}}', "duplicate key"),
        (b'{"__metadata__": {"x": 1}}', "__metadata__ must map strings to strings"),
        (b'{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', "non-negative integers"),
        (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', "begin after end"),
        (b'["not", "an", "object"]', "not an object"),
        (b'{"\xff": 1}', "not valid UTF-8"),
    ],
)
def test_strict_header_checks(raw, reason):
    blob = len(raw).to_bytes(8, "little") + raw + bytes(8)
    with pytest.raises(InvalidWeightsError, match=reason):
        read_header(io.BytesIO(blob), len(blob), "remote.safetensors")


def test_too_short_and_oversized_length_prefixes():
    with pytest.raises(InvalidWeightsError, match="too short"):
        read_header(io.BytesIO(b"\x01\x02"), 2, "x.safetensors")
    blob = (500).to_bytes(8, "little") + b"{}"
    with pytest.raises(InvalidWeightsError, match="does not fit in the file"):
        read_header(io.BytesIO(blob), len(blob), "x.safetensors")


def test_find_weights_rules(tmp_path):
    single = tmp_path / "single"
    write_lora(single / "adapter.safetensors")
    assert find_weights(single).name == "adapter.safetensors"

    preferred = tmp_path / "preferred"
    write_lora(preferred / "other.safetensors")
    write_lora(preferred / "pytorch_lora_weights.safetensors")
    assert find_weights(preferred).name == "pytorch_lora_weights.safetensors"

    file = preferred / "other.safetensors"
    assert find_weights(file) == file


def test_several_safetensors_in_a_directory_are_listed(tmp_path):
    write_lora(tmp_path / "a.safetensors")
    write_lora(tmp_path / "b.safetensors")
    with pytest.raises(WeightsNotFoundError) as caught:
        find_weights(tmp_path)
    assert "a.safetensors, b.safetensors" in str(caught.value)


def test_no_weights_says_what_was_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(
        WeightsNotFoundError, match="pytorch_lora_weights.safetensors.*single \\*.safetensors"
    ):
        find_weights(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        find_weights(tmp_path / "missing")


def test_directory_with_only_pickles_is_refused_with_conversion_advice(tmp_path):
    (tmp_path / "pytorch_lora_weights.bin").write_bytes(b"\x80\x04...")
    with pytest.raises(PickleWeightsError, match="pytorch_lora_weights.bin"):
        find_weights(tmp_path)


def test_errors_are_hubpress_errors(tmp_path):
    path = write_broken(tmp_path / "x.safetensors", "not_lora")
    with pytest.raises(HubpressError):
        inspect_safetensors(path)


def test_a_remote_file_is_checked_from_its_header_before_download(tmp_path, s3):
    from hubpress.lora.weights import inspect_stream
    from hubpress.storage.files import open_storage

    _, bucket = s3
    storage = open_storage(f"s3://{bucket}/run")
    good = write_lora(tmp_path / "good.safetensors", rank=4, modules=3)
    bad = write_broken(tmp_path / "bad.safetensors", "offsets_past_end")
    storage.put_file("good.safetensors", good)
    storage.put_file("bad.safetensors", bad)
    sizes = {f.relpath: f.size for f in storage.list()}

    body = storage.open("good.safetensors")
    info = inspect_stream(body, sizes["good.safetensors"], storage.uri("good.safetensors"))
    body.close()
    assert info.rank == 4 and info.lora_layers == 3 and info.file_name == "good.safetensors"
    with pytest.raises(InvalidWeightsError, match="past its end"):
        inspect_stream(storage.open("bad.safetensors"), sizes["bad.safetensors"], "bad.safetensors")
