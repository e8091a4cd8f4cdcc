#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Valid inputs (so the fuzzer starts deep inside each format) and crafted hostile ones (each a
known way to break a reader). Committed: CI replays them without Python. Rerun after changing
this script; files named crash-* or found-* (inputs the fuzzers found, added by hand) are kept.
The image seeds are the hostile-image corpus (scripts/make_hostile_images.py), copied.
"""
import json
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz" / "corpus"


def st_file(header, data=b"", length=None):
    """A safetensors file: 8-byte little-endian header length, header text, data."""
    h = header if isinstance(header, bytes) else header.encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def safetensors_seeds():
    f32 = struct.pack("<6f", 1.0, -2.5, float("nan"), float("inf"), 0.0, 3e-45)
    every = {"__metadata__": {"format": "ember-checkpoint-1", "step": "3"},
             "w": entry("F32", [2, 3], 0, 24), "h": entry("F16", [3], 24, 30), "b": entry("BF16", [], 30, 32),
             "e": entry("F64", [0, 4], 32, 32), "l": entry("I64", [1], 32, 40), "i": entry("I32", [1, 1], 40, 44),
             "u": entry("U8", [4], 44, 48)}
    data48 = f32 + bytes(range(24))
    ok_a = json.dumps({"a": entry("F32", [2], 0, 8)})
    s = {
        "ok_every_dtype": st_file(json.dumps(every), data48),
        "ok_scalar": st_file(json.dumps({"s": entry("F32", [], 0, 4)}), f32[:4]),
        "ok_empty_header": st_file("{}"),
        "ok_metadata_only": st_file('{"__metadata__":{"k":"v"}}    '),
        "ok_padded": st_file(ok_a + "      ", f32[:8]),
        "ok_zero_sized": st_file(json.dumps({"z": entry("U8", [0, 9], 0, 0), "y": entry("F32", [5, 0], 0, 0)})),
        "bad_length_absurd": st_file(ok_a, f32[:8], length=1 << 62),
        "bad_length_past_end": st_file(ok_a, f32[:8], length=len(ok_a) + 9),
        "bad_short_file": b"\x05\x00\x00",
        "bad_truncated_data": st_file(ok_a, f32[:5]),
        "bad_trailing_bytes": st_file(ok_a, f32[:12]),
        "bad_duplicate_key": st_file('{"a":' + json.dumps(entry("F32", [2], 0, 8)) + ',"a":'
                                     + json.dumps(entry("F32", [2], 0, 8)) + "}", f32[:8]),
        "bad_overlap": st_file(json.dumps({"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 4, 8)}), f32[:8]),
        "bad_gap": st_file(json.dumps({"a": entry("F32", [1], 4, 8)}), f32[:8]),
        "bad_shape_overflow": st_file(json.dumps({"a": entry("F32", [1 << 62, 1 << 62, 0], 0, 0)})),
        "bad_shape_huge": st_file(json.dumps({"a": entry("U8", [4294967296, 4294967296], 0, 8)}), f32[:8]),
        "bad_rank_9": st_file(json.dumps({"a": entry("U8", [1] * 9, 0, 1)}), b"\x01"),
        "bad_negative": st_file(json.dumps({"a": entry("F32", [-2], 0, 8)}), f32[:8]),
        "bad_float_offsets": st_file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0.0,8e0]}}', f32[:8]),
        "bad_big_numbers": st_file('{"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,99999999999999999999999]}}'),
        "bad_dtype": st_file(json.dumps({"a": entry("Q7", [2], 0, 8)}), f32[:8]),
        "bad_not_object": st_file("[1,2,3]"),
        "bad_metadata_value": st_file('{"__metadata__":{"step":3}}'),
        "bad_utf8": st_file(b'{"\xff\xfe":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x00"),
        "bad_deep_arrays": st_file('{"a":' + "[" * 5000 + "]" * 5000 + "}"),
        "bad_deep_objects": st_file('{"a":' + '{"k":' * 5000 + "0" + "}" * 5000 + "}"),
        "many_keys": st_file('{"__metadata__":{' + ",".join(f'"{i}":""' for i in range(3000)) + "}}"),
    }
    return {k + ".safetensors": v for k, v in s.items()}


def idx(magic, dims, payload=b""):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_seeds():
    px = bytes((i * 7) % 256 for i in range(2 * 28 * 28))
    return {
        "ok_images_2x28x28.idx": idx(0x803, [2, 28, 28], px),
        "ok_images_0.idx": idx(0x803, [0, 28, 28]),
        "ok_images_1x30x30.idx": idx(0x803, [1, 30, 30], bytes(900)),
        "ok_labels.idx": idx(0x801, [5], bytes([0, 1, 9, 3, 4])),
        "bad_wrap_2_64.idx": idx(0x803, [16, 1 << 30, 1 << 30]),
        "bad_wrap_max.idx": idx(0x803, [0xFFFFFFFF] * 3),
        "bad_rows_odd.idx": idx(0x803, [1, 29, 28], bytes(29 * 28)),
        "bad_rows_too_big.idx": idx(0x803, [1, 40, 40], bytes(1600)),
        "bad_rows_negative_int.idx": idx(0x803, [1, 0x80000000, 1]),
        "bad_zero_rows.idx": idx(0x803, [3, 0, 28]),
        "bad_truncated.idx": idx(0x803, [2, 28, 28], px[:1000]),
        "bad_trailing.idx": idx(0x801, [2], b"\x01\x02\x03"),
        "bad_magic.idx": idx(0x0D03, [1, 1, 1], b"\x00"),
        "bad_short_header.idx": b"\x00\x00\x08\x03\x00\x00",
        "bad_empty.idx": b"",
        "bad_4_dims.idx": idx(0x804, [1, 2, 2, 2], bytes(8)),
    }


def config_seeds():
    train = {"data": "", "out": "runs/x", "size": 32, "arch": "sagan", "attention": "article", "width": 0.25,
             "batch": 16, "steps": 100, "lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9, "n_dis": 1,
             "device": "auto", "seed": 1, "sample_every": 10, "checkpoint_every": 50, "log_every": 1, "crop": 0,
             "flip": True, "workers": 2, "deterministic": False, "ema": 0.999, "channels": 1}
    s = {
        "ok_sagan": {"model": "sagan", "resolution": 32, "width": 0.25, "z_dim": 128, "image_channels": 1,
                     "attention": "article", "d_slope": 0.1},
        "ok_sagan_resnet": {"model": "sagan_resnet", "resolution": 64, "base": 32, "z_dim": 128,
                            "image_channels": 3, "attention": "official"},
        "ok_dcgan": {"model": "dcgan", "resolution": 32, "base": 64, "z_dim": 100, "image_channels": 3,
                     "d_slope": 0.2},
        "ok_train": train,
        "ok_empty_object": {},
        "bad_types": {"resolution": "32", "width": [1], "z_dim": None, "attention": 7},
        "bad_negative": {"resolution": -32, "base": -1, "z_dim": -5, "image_channels": -3, "batch": -1},
        "bad_fractions": {"resolution": 32.5, "z_dim": 0.5, "base": 1e-9, "size": 64.9},
        "bad_huge": {"resolution": 1 << 40, "base": 1 << 62, "z_dim": 2147483648, "steps": 1 << 63,
                     "seed": -1, "batch": 4294967297},
        "bad_attention": {"attention": "neither", "arch": "gan", "device": "tpu"},
        "train_bad_ranges": dict(train, beta1=1.0, beta2=1.5, lr_g=-1, lr_d=0, size=48, n_dis=0, workers=-3),
    }
    out = {k + ".json": json.dumps(v).encode() for k, v in s.items()}
    out.update({
        "bad_big_exponents.json": b'{"resolution":1e400,"width":1e39,"z_dim":-1e400,"d_slope":1e-400,"lr_g":1e309}',
        "bad_not_json.json": b'{"resolution":32,',
        "bad_array.json": b"[32, 64]",
        "bad_deep.json": b"[" * 3000 + b"]" * 3000,
        "bad_duplicate.json": b'{"resolution":32,"resolution":64}',
        "bad_nul.json": b'{"attention":"art\\u0000icle"}',
        "bad_empty.json": b"",
    })
    return out


def main():
    targets = {"safetensors": safetensors_seeds(), "idx": idx_seeds(), "model_config": config_seeds()}
    for target, files in targets.items():
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            if not old.name.startswith(("crash-", "found-")):
                old.unlink()
        for name, data in sorted(files.items()):
            (d / name).write_bytes(data)
        print(f"{target}: {len(files)} seeds")
    d = CORPUS / "image"
    d.mkdir(parents=True, exist_ok=True)
    for old in d.iterdir():
        if not old.name.startswith(("crash-", "found-")):
            old.unlink()
    images = sorted(p for p in (ROOT / "tests" / "hostile_images").iterdir() if p.name != "notes.txt")
    for p in images:
        shutil.copyfile(p, d / p.name)
    print(f"image: {len(images)} seeds (tests/hostile_images)")


if __name__ == "__main__":
    main()
