"""Loads checkpoints written by ember into the PyTorch modules of ember_models.py with
load_state_dict(strict=True) and checks that PyTorch computes the same outputs as ember did.

    # 1. ember writes the checkpoints and its own outputs for fixed inputs:
    EMBER_EXPORT_DIR=/tmp/ember_export build/tests/ember_tests "[.torch_export]"
    # 2. PyTorch loads them:
    python3 tests/parity/load_in_torch.py /tmp/ember_export

For each model (SAGAN article form with the official attention variant, SAGAN ResNet, DCGAN,
all 32x32 and small) it loads
  * the plain G and D files (<name>_G.safetensors): exactly a PyTorch state_dict;
  * the training checkpoint (<name>_checkpoint.safetensors): the "G." / "D." entries, prefix
    stripped (optimizer state "opt_G.m.<param>" etc. is checked to name real parameters);
and compares G(z) and D(x) in eval mode and in training mode (one more power iteration and
batch statistics, from the same saved state) with ember's outputs, within 1e-4 relative.
The files are read with this directory's st.py and, when the `safetensors` package is
installed, also with safetensors.torch.load_file (the two must agree).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ember_models as em  # noqa: E402
import st  # noqa: E402

try:
    import safetensors.torch as sft
except ImportError:  # optional cross-check
    sft = None

TOL = 1e-4


def read(path):
    tensors, meta = st.load(path)
    if sft is not None:
        other = sft.load_file(path)
        assert other.keys() == tensors.keys(), f"{path}: safetensors package sees other names"
        for k in tensors:
            assert torch.equal(other[k].float(), tensors[k]), f"{path}: {k} differs between readers"
    return tensors, meta


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def strip(tensors, prefix):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def check_outputs(name, G, D, io, source):
    worst = 0.0
    with torch.no_grad():
        for mode in ("eval", "train"):
            G.train(mode == "train")
            D.train(mode == "train")
            for key, out in ((f"G_{mode}", G(io["z"])), (f"D_{mode}", D(io["x"]))):
                e = rel(out, io[key])
                worst = max(worst, e)
                status = "ok" if e <= TOL else "MISMATCH"
                print(f"  {name} {source}: {key:8s} relative error {e:.2e} {status}")
                assert e <= TOL, f"{name} {source}: {key} differs from ember ({e:.3e})"
    return worst


def main(folder):
    print(f"torch {torch.__version__}; safetensors package: {'yes' if sft else 'no'}")
    for name in ("sagan", "sagan_resnet", "dcgan"):
        io, io_meta = read(os.path.join(folder, f"{name}_io.safetensors"))
        config = json.loads(io_meta["config"])
        # Plain module files: a PyTorch state_dict each.
        G, D = em.build(config)
        g_sd, g_meta = read(os.path.join(folder, f"{name}_G.safetensors"))
        d_sd, _ = read(os.path.join(folder, f"{name}_D.safetensors"))
        assert json.loads(g_meta["config"]) == config
        G.load_state_dict(g_sd, strict=True)
        D.load_state_dict(d_sd, strict=True)
        print(f"{name}: G {len(g_sd)} tensors, D {len(d_sd)} tensors loaded with strict=True")
        check_outputs(name, G, D, io, "module files")
        # The training checkpoint: G. and D. entries; optimizer state names real parameters.
        ck, meta = read(os.path.join(folder, f"{name}_checkpoint.safetensors"))
        assert meta["format"] == "ember-checkpoint-1" and json.loads(meta["config"]) == config
        G2, D2 = em.build(config)
        G2.load_state_dict(strip(ck, "G."), strict=True)
        D2.load_state_dict(strip(ck, "D."), strict=True)
        for opt, model in (("opt_G.", G2), ("opt_D.", D2)):
            params = dict(model.named_parameters())
            for k, v in strip(ck, opt).items():
                slot, pname = k.split(".", 1)
                assert slot in ("m", "v") and pname in params and params[pname].shape == v.shape, k
        print(f"{name}: checkpoint step {meta['step']}, {len(ck)} tensors; G and D loaded with strict=True")
        check_outputs(name, G2, D2, io, "checkpoint")
    print("all ember checkpoints load into PyTorch and reproduce ember's outputs")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ember_export")
