"""Writes the PyTorch golden files that tests/test_parity.cpp compares ember against.

    python3 tests/parity/make_golden.py        (PyTorch >= 1.13; run from anywhere)

Each case builds a module from tests/parity/ember_models.py (the PyTorch mirror of ember's layer
or model, with identical state_dict names), takes its float32 state_dict and float32 inputs,
then runs forward and backward in float64 on exactly those values (so the reference carries no
float32 rounding of its own; the test's tolerance covers ember's float32 arithmetic only), and
writes one safetensors file tests/golden/<case>.safetensors with:
    in.<name>        inputs (float32)
    sd.<name>        the module's state_dict before the forward (what ember loads, strict)
    out              the training-mode output;  grad_out  the gradient fed to backward
    grad.<param>     parameter gradients;       grad_in.<name>  input gradients
    after.<buffer>   buffers after the forward (spectral-norm u, v; BatchNorm running stats)
    out_eval         (some cases) the eval-mode output after the training forward
Every attention gamma is set non-zero (it is 0 at initialisation, which would hide the block).
The files are small (all together well under 2 MB) and committed; CI never needs PyTorch.
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ember_models as em  # noqa: E402
import st  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")
SN = nn.utils.spectral_norm


def uni(*shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape) * (hi - lo) + lo


def set_gammas(module, value):
    for m in module.modules():
        if isinstance(m, em.SelfAttention):
            m.gamma.data.fill_(value)


def write(name, tensors, meta=None):
    path = os.path.join(OUT, name + ".safetensors")
    st.save(path, tensors, meta or {})
    print(f"{name}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


def run_case(name, module, inputs, fwd=lambda m, x: m(x["x"]), eval_too=False, meta=None):
    """Forward (training mode) + backward in float64 from the module's float32 state."""
    sd = {k: v.detach().clone() for k, v in module.state_dict().items()}
    m = module.double().train()
    xs = {k: v.double().requires_grad_(True) for k, v in inputs.items()}
    out = fwd(m, xs)
    grad_out = uni(*out.shape)
    out.backward(grad_out.double())
    t = {}
    t.update({"in." + k: v for k, v in inputs.items()})
    t.update({"sd." + k: v for k, v in sd.items()})
    t["out"] = out.detach()
    t["grad_out"] = grad_out
    for k, p in m.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reached {k}"
        t["grad." + k] = p.grad
    t.update({"grad_in." + k: v.grad for k, v in xs.items()})
    t.update({"after." + k: b.detach() for k, b in m.named_buffers()})
    if eval_too:
        m.eval()
        with torch.no_grad():
            t["out_eval"] = fwd(m, xs)
    write(name, t, meta)


def layers():
    torch.manual_seed(1)
    run_case("sn_linear", SN(nn.Linear(7, 5)), {"x": uni(3, 7)}, eval_too=True)
    torch.manual_seed(2)
    run_case("sn_conv", SN(nn.Conv2d(3, 4, 3, 2, 1)), {"x": uni(2, 3, 7, 7)}, eval_too=True)
    torch.manual_seed(3)
    run_case("sn_conv_transpose", SN(nn.ConvTranspose2d(4, 3, 4, 2, 1)), {"x": uni(2, 4, 5, 5)}, eval_too=True)
    torch.manual_seed(4)
    bn = nn.BatchNorm2d(5)
    with torch.no_grad():  # non-trivial affine parameters and running statistics
        bn.weight.copy_(uni(5, lo=0.5, hi=1.5))
        bn.bias.copy_(uni(5))
        bn.running_mean.copy_(uni(5))
        bn.running_var.copy_(uni(5, lo=0.5, hi=2.0))
    run_case("batch_norm", bn, {"x": uni(4, 5, 3, 3, lo=-2, hi=3)}, eval_too=True)
    for variant, seed in (("article", 5), ("official", 6)):
        torch.manual_seed(seed)
        a = em.SelfAttention(16, variant)
        set_gammas(a, 0.7)
        run_case("attention_" + variant, a, {"x": uni(2, 16, 6, 6)}, eval_too=True)


def models():
    z_dim, batch = 8, 2
    cases = {
        "sagan": (lambda: em.SaganGenerator(32, 1 / 16, z_dim, 3, "article"),
                  lambda: em.SaganDiscriminator(32, 1 / 16, 3, "article", 0.1)),
        "sagan_resnet": (lambda: em.SaganResNetGenerator(32, 8, z_dim, 3, "official"),
                         lambda: em.SaganResNetDiscriminator(32, 8, 3, "official")),
        "dcgan": (lambda: em.DcganGenerator(32, 4, z_dim, 3), lambda: em.DcganDiscriminator(32, 4, 3, 0.2)),
    }
    for i, (name, (mk_g, mk_d)) in enumerate(cases.items()):
        torch.manual_seed(100 + i)
        g = mk_g()
        set_gammas(g, 0.5)
        run_case(name + "_G", g, {"z": torch.randn(batch, z_dim)}, fwd=lambda m, x: m(x["z"]))
        d = mk_d()
        set_gammas(d, 0.5)
        run_case(name + "_D", d, {"x": uni(batch, 3, 32, 32)})


def losses():
    torch.manual_seed(7)
    real, fake = uni(6, 1, lo=-2.5, hi=2.5), uni(6, 1, lo=-2.5, hi=2.5)
    t = {"in.real": real, "in.fake": fake}
    for kind, d_fn, g_fn in (("hinge", em.d_loss_hinge, em.g_loss_hinge), ("bce", em.d_loss_bce, em.g_loss_bce)):
        r, f = real.double().requires_grad_(), fake.double().requires_grad_()
        ld = d_fn(r, f)
        ld.backward()
        t[f"out.d_{kind}"], t[f"grad.d_{kind}.real"], t[f"grad.d_{kind}.fake"] = ld.detach().reshape(1), r.grad, f.grad
        f2 = fake.double().requires_grad_()
        lg = g_fn(f2)
        lg.backward()
        t[f"out.g_{kind}"], t[f"grad.g_{kind}.fake"] = lg.detach().reshape(1), f2.grad
    write("losses", t)


def adam():
    """Three alternating D/G steps of the article SAGAN (32x32, width 1/16) with Adam:
    TTUR lr 1e-4 (G) / 4e-4 (D), betas (0, 0.9), hinge loss, real and fake through D as one batch."""
    torch.manual_seed(11)
    z_dim, batch, steps = 8, 2, 3
    G = em.SaganGenerator(32, 1 / 16, z_dim, 3, "article")
    D = em.SaganDiscriminator(32, 1 / 16, 3, "article", 0.1)
    set_gammas(G, 0.3)
    set_gammas(D, 0.3)
    t = {}
    t.update({"sd.G." + k: v.detach().clone() for k, v in G.state_dict().items()})
    t.update({"sd.D." + k: v.detach().clone() for k, v in D.state_dict().items()})
    G, D = G.double().train(), D.double().train()
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=4e-4, betas=(0.0, 0.9))
    for s in range(steps):
        z_d, real, z_g = torch.randn(batch, z_dim), uni(batch, 3, 32, 32), torch.randn(batch, z_dim)
        t[f"in.z_d.{s}"], t[f"in.real.{s}"], t[f"in.z_g.{s}"] = z_d, real, z_g
        fake = G(z_d.double()).detach()
        logits = D(torch.cat([real.double(), fake]))
        ld = em.d_loss_hinge(logits[:batch], logits[batch:])
        opt_d.zero_grad()
        ld.backward()
        opt_d.step()
        lg = em.g_loss_hinge(D(G(z_g.double())))
        opt_g.zero_grad()
        lg.backward()
        opt_g.step()
        t[f"out.loss_d.{s}"], t[f"out.loss_g.{s}"] = ld.detach().reshape(1), lg.detach().reshape(1)
    t.update({"after.G." + k: v.detach() for k, v in G.state_dict().items()})
    t.update({"after.D." + k: v.detach() for k, v in D.state_dict().items()})
    write("adam_steps", t, {"steps": str(steps), "batch": str(batch)})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    print("torch", torch.__version__)
    layers()
    models()
    losses()
    adam()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"total {total} bytes")
    assert total < 2_000_000, "golden files must stay under 2 MB"
