"""PyTorch mirrors of ember's layers and models (layers/, models/): the same computation and
exactly the same state_dict names, so that a G or D state_dict written by ember loads with
load_state_dict(strict=True). Used by make_golden.py (golden files for tests/test_parity.cpp)
and load_in_torch.py (loading an ember checkpoint). Works with PyTorch 1.13 and 2.x.

Spectral norm is torch.nn.utils.spectral_norm (names weight_orig, weight_u, weight_v)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

SN = nn.utils.spectral_norm


def stages_for(resolution):
    assert resolution in (32, 64, 128), resolution
    return {32: 3, 64: 4, 128: 5}[resolution]


def scaled(base, width):
    return max(1, int(round(base * width)))


class SelfAttention(nn.Module):
    """ember's SelfAttention: variant "article" (Cv = C, full-resolution keys, f and h with
    bias, g without (softmax cancels a key bias), no output conv) or "official" (keys/values max-pooled 2x2, Cv = C/2, no biases,
    output 1x1 conv "o" C/2 -> C). y = gamma * o + x; beta_i = softmax_j(f_i . g_j)."""

    def __init__(self, channels, variant="article"):
        super().__init__()
        assert channels % 8 == 0 and variant in ("article", "official")
        self.variant = variant
        bias = variant == "article"
        cv = channels if variant == "article" else channels // 2
        self.f = SN(nn.Conv2d(channels, channels // 8, 1, bias=bias))
        self.g = SN(nn.Conv2d(channels, channels // 8, 1, bias=False))
        self.h = SN(nn.Conv2d(channels, cv, 1, bias=bias))
        if variant == "official":
            self.o = SN(nn.Conv2d(cv, channels, 1, bias=False))
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        B, C, H, W = x.shape
        q = self.f(x).flatten(2)                      # [B, C/8, N]
        k, v = self.g(x), self.h(x)
        if self.variant == "official":
            k, v = F.max_pool2d(k, 2), F.max_pool2d(v, 2)
        k, v = k.flatten(2), v.flatten(2)             # [B, C/8, M], [B, Cv, M]
        beta = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # [B, N, M]
        o = torch.bmm(v, beta.transpose(1, 2)).reshape(B, -1, H, W)   # [B, Cv, H, W]
        if self.variant == "official":
            o = self.o(o)
        return self.gamma * o + x


class UpStage(nn.Module):
    def __init__(self, conv, channels):
        super().__init__()
        self.conv, self.bn = conv, nn.BatchNorm2d(channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class DownStage(nn.Module):
    def __init__(self, conv, batch_norm, slope):
        super().__init__()
        self.conv = conv
        if batch_norm:
            self.bn = nn.BatchNorm2d(conv.out_channels)
        self.slope = slope

    def forward(self, x):
        y = self.conv(x)
        if hasattr(self, "bn"):
            y = self.bn(y)
        return F.leaky_relu(y, self.slope)


# ---- SAGAN as the article describes it (models/sagan.h) ------------------------------------

class SaganGenerator(nn.Module):
    def __init__(self, resolution=128, width=1.0, z_dim=128, image_channels=3, attention="article"):
        super().__init__()
        ch_at = lambda r: scaled(2048 // r, width)
        attn_res = 16 if resolution == 32 else 32
        self.z_dim, self.c0 = z_dim, ch_at(4)
        self.fc = SN(nn.Linear(z_dim, 16 * self.c0, bias=False))  # BatchNorm follows: no bias
        self.bn0 = nn.BatchNorm2d(self.c0)
        self.ups = nn.ModuleList()
        ch, r, self.attn_after = self.c0, 8, -1
        for i in range(stages_for(resolution)):
            nxt = ch_at(r)
            self.ups.append(UpStage(SN(nn.ConvTranspose2d(ch, nxt, 4, 2, 1, bias=False)), nxt))
            ch = nxt
            if r == attn_res:
                self.attn_after = i
                self.attn = SelfAttention(ch, attention)
            r *= 2
        self.out = SN(nn.Conv2d(ch, image_channels, 3, 1, 1))

    def forward(self, z):
        x = F.relu(self.bn0(self.fc(z).reshape(z.shape[0], self.c0, 4, 4)))
        for i, up in enumerate(self.ups):
            x = up(x)
            if i == self.attn_after:
                x = self.attn(x)
        return torch.tanh(self.out(x))


class SaganDiscriminator(nn.Module):
    def __init__(self, resolution=128, width=1.0, image_channels=3, attention="article", slope=0.1):
        super().__init__()
        ch_at = lambda r: scaled(2048 // r, width)
        attn_res = 16 if resolution == 32 else 32
        self.slope = slope
        self.downs = nn.ModuleList()
        ch, r, self.attn_after = image_channels, resolution // 2, -1
        for i in range(stages_for(resolution)):
            nxt = ch_at(r)
            self.downs.append(SN(nn.Conv2d(ch, nxt, 4, 2, 1)))
            ch = nxt
            if r == attn_res:
                self.attn_after = i
                self.attn = SelfAttention(ch, attention)
            r //= 2
        self.fc = SN(nn.Linear(ch * 16, 1))

    def forward(self, x):
        for i, d in enumerate(self.downs):
            x = F.leaky_relu(d(x), self.slope)
            if i == self.attn_after:
                x = self.attn(x)
        return self.fc(x.flatten(1))


# ---- SAGAN, official ResNet form (models/sagan_resnet.h) -------------------------------------

def sn_conv(cin, cout, k):
    return SN(nn.Conv2d(cin, cout, k, 1, k // 2))


class ResBlockUp(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = sn_conv(cin, cout, 3)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = sn_conv(cout, cout, 3)
        self.shortcut = sn_conv(cin, cout, 1)

    def forward(self, x):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
        h = self.conv1(up(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(up(x))


class ResBlockDown(nn.Module):
    def __init__(self, cin, cout, downsample, first):
        super().__init__()
        self.downsample, self.first = downsample, first
        self.conv1 = sn_conv(cin, cout, 3)
        self.conv2 = sn_conv(cout, cout, 3)
        if downsample or cin != cout:
            self.shortcut = sn_conv(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.shortcut(F.avg_pool2d(x, 2))
        elif hasattr(self, "shortcut"):
            s = self.shortcut(x)
            if self.downsample:
                s = F.avg_pool2d(s, 2)
        return h + s


GEN_MULT = [16, 16, 8, 4, 2, 1]
DISC_MULT = [1, 2, 4, 8, 16]


def init_xavier(module):
    """Xavier uniform on every conv/linear weight (weight_orig under spectral norm), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
            nn.init.xavier_uniform_(w)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SaganResNetGenerator(nn.Module):
    def __init__(self, resolution=128, base=64, z_dim=128, image_channels=3, attention="official"):
        super().__init__()
        n = stages_for(resolution)
        skip = 5 - n
        attn_res = 16 if resolution == 32 else 32
        self.c0 = base * GEN_MULT[skip]
        self.fc = SN(nn.Linear(z_dim, 16 * self.c0))
        self.blocks = nn.ModuleList()
        ch, r, self.attn_after = self.c0, 8, -1
        for i in range(n):
            nxt = base * GEN_MULT[skip + 1 + i]
            self.blocks.append(ResBlockUp(ch, nxt))
            ch = nxt
            if r == attn_res:
                self.attn_after = i
                self.attn = SelfAttention(ch, attention)
            r *= 2
        self.bn = nn.BatchNorm2d(ch)
        self.out = sn_conv(ch, image_channels, 3)
        init_xavier(self)

    def forward(self, z):
        x = self.fc(z).reshape(z.shape[0], self.c0, 4, 4)
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i == self.attn_after:
                x = self.attn(x)
        return torch.tanh(self.out(F.relu(self.bn(x))))


class SaganResNetDiscriminator(nn.Module):
    def __init__(self, resolution=128, base=64, image_channels=3, attention="official"):
        super().__init__()
        n = stages_for(resolution)
        attn_res = 16 if resolution == 32 else 32
        self.blocks = nn.ModuleList()
        ch, r, self.attn_after = image_channels, resolution // 2, -1
        for i in range(n):
            nxt = base * DISC_MULT[i]
            self.blocks.append(ResBlockDown(ch, nxt, True, i == 0))
            ch = nxt
            if r == attn_res:
                self.attn_after = i
                self.attn = SelfAttention(ch, attention)
            r //= 2
        self.blocks.append(ResBlockDown(ch, ch, False, False))
        self.fc = SN(nn.Linear(ch, 1))
        init_xavier(self)

    def forward(self, x):
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i == self.attn_after:
                x = self.attn(x)
        return self.fc(F.relu(x).sum(dim=(2, 3)))


# ---- DCGAN (models/dcgan.h) --------------------------------------------------------------------

def init_dcgan(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DcganGenerator(nn.Module):
    def __init__(self, resolution=64, base=64, z_dim=128, image_channels=3):
        super().__init__()
        n = stages_for(resolution)
        ch = base << (n - 1)
        self.z_dim = z_dim
        self.ups = nn.ModuleList([UpStage(nn.ConvTranspose2d(z_dim, ch, 4, 1, 0, bias=False), ch)])
        for _ in range(1, n):
            self.ups.append(UpStage(nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), ch // 2))
            ch //= 2
        self.out = nn.ConvTranspose2d(ch, image_channels, 4, 2, 1, bias=False)
        init_dcgan(self)

    def forward(self, z):
        x = z.reshape(z.shape[0], self.z_dim, 1, 1)
        for u in self.ups:
            x = u(x)
        return torch.tanh(self.out(x))


class DcganDiscriminator(nn.Module):
    def __init__(self, resolution=64, base=64, image_channels=3, slope=0.2):
        super().__init__()
        n = stages_for(resolution)
        ch = base
        self.downs = nn.ModuleList([DownStage(nn.Conv2d(image_channels, ch, 4, 2, 1, bias=False), False, slope)])
        for _ in range(1, n):
            self.downs.append(DownStage(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), True, slope))
            ch *= 2
        self.out = nn.Conv2d(ch, 1, 4, 1, 0, bias=False)
        init_dcgan(self)

    def forward(self, x):
        for d in self.downs:
            x = d(x)
        return self.out(x).reshape(x.shape[0], 1)


# ---- losses (models/losses.h) ------------------------------------------------------------------

def d_loss_hinge(real, fake):
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_loss_hinge(fake):
    return -fake.mean()


def d_loss_bce(real, fake):
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) +
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def g_loss_bce(fake):
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def build(config):
    """(G, D) from the config JSON an ember checkpoint stores (dict)."""
    kind = config.get("model", "sagan")
    if kind == "sagan":
        kw = dict(resolution=config["resolution"], width=config["width"], image_channels=config["image_channels"],
                  attention=config["attention"])
        return (SaganGenerator(z_dim=config["z_dim"], **kw),
                SaganDiscriminator(slope=config.get("d_slope", 0.1), **kw))
    if kind == "sagan_resnet":
        kw = dict(resolution=config["resolution"], base=config["base"], image_channels=config["image_channels"],
                  attention=config["attention"])
        return SaganResNetGenerator(z_dim=config["z_dim"], **kw), SaganResNetDiscriminator(**kw)
    if kind == "dcgan":
        kw = dict(resolution=config["resolution"], base=config["base"], image_channels=config["image_channels"])
        return (DcganGenerator(z_dim=config["z_dim"], **kw),
                DcganDiscriminator(slope=config.get("d_slope", 0.2), **kw))
    raise ValueError("unknown model " + kind)
