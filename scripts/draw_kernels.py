#!/usr/bin/env python3
"""Draws the kernel diagrams of docs/kernels.md as plain SVG (standard library only):

    python3 scripts/draw_kernels.py            # writes docs/images/kernel_*.svg

  kernel_mma_m16n8k8.svg       which lane holds which element of A, B and C in mma.sync m16n8k8 (TF32)
  kernel_attention_tiles.svg   the forward attention kernel's block tile and what each warp owns
  kernel_online_softmax.svg    the online-softmax rescaling over key tiles
  kernel_sn_tickets.svg        the spectral-norm column pass and its ticket reduction

The layouts are the ones the code uses (kernels/cuda/attention_kernels.cuh, spectral_norm.cu) and
the emulator rebuilds from the PTX ISA (tests/emulation/emu.h): g = lane / 4, q = lane % 4;
A regs {A(g,q), A(g+8,q), A(g,q+4), A(g+8,q+4)}, B regs {B(q,g), B(q+4,g)},
C regs {C(g,2q), C(g,2q+1), C(g+8,2q), C(g+8,2q+1)}.
"""
import colorsys
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "images")


class Svg:
    def __init__(self, w, h):
        self.w, self.h, self.items = w, h, []

    def rect(self, x, y, w, h, fill="none", stroke="#333", sw=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.items.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" '
                          f'stroke="{stroke}" stroke-width="{sw}"{d}/>')

    def text(self, x, y, s, size=12, anchor="middle", weight="normal", fill="#111"):
        s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        self.items.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'font-weight="{weight}" fill="{fill}" font-family="monospace">{s}</text>')

    def line(self, x1, y1, x2, y2, stroke="#333", sw=1, arrow=False):
        m = ' marker-end="url(#arrow)"' if arrow else ""
        self.items.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
                          f'stroke-width="{sw}"{m}/>')

    def save(self, name):
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.w}" height="{self.h}" '
                f'viewBox="0 0 {self.w} {self.h}">\n<defs><marker id="arrow" markerWidth="8" markerHeight="8" '
                f'refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>\n'
                f'<rect width="100%" height="100%" fill="white"/>\n')
        path = os.path.join(OUT, name)
        with open(path, "w") as f:
            f.write(head + "\n".join(self.items) + "\n</svg>\n")
        print("wrote", os.path.relpath(path))


def lane_color(lane):
    """One hue per group g = lane / 4 (8 groups), lighter for larger q = lane % 4."""
    g, q = divmod(lane, 4)
    r, gg, b = colorsys.hls_to_rgb(g / 8.0, 0.78 - 0.08 * q, 0.65)
    return "#%02x%02x%02x" % (int(r * 255), int(gg * 255), int(b * 255))


def draw_mma():
    cell = 34
    s = Svg(1180, 790)
    s.text(590, 24, "mma.sync.aligned.m16n8k8 (TF32): which lane (L) holds which element, and in which register (a0..a3, b0..b1, c0..c3)",
           13, weight="bold")
    s.text(590, 44, "g = lane / 4 (colour), q = lane % 4 (shade).  D[16x8] = A[16x8] * B[8x8] + C[16x8]", 12)

    def grid(x0, y0, rows, cols, title, owner):
        s.text(x0 + cols * cell / 2, y0 - 10, title, 13, weight="bold")
        for r in range(rows):
            s.text(x0 - 12, y0 + r * cell + cell / 2 + 4, str(r), 10)
            for c in range(cols):
                lane, reg = owner(r, c)
                s.rect(x0 + c * cell, y0 + r * cell, cell, cell, fill=lane_color(lane), stroke="#666", sw=0.5)
                s.text(x0 + c * cell + cell / 2, y0 + r * cell + 14, f"L{lane}", 10)
                s.text(x0 + c * cell + cell / 2, y0 + r * cell + 27, reg, 9, fill="#333")
        for c in range(cols):
            s.text(x0 + c * cell + cell / 2, y0 + rows * cell + 14, str(c), 10)

    def a_owner(r, c):  # A row-major 16 x 8: a0 (g, q), a1 (g+8, q), a2 (g, q+4), a3 (g+8, q+4)
        g, hi_r = r % 8, r // 8
        q, hi_c = c % 4, c // 4
        return g * 4 + q, "a%d" % (hi_r + 2 * hi_c)

    def b_owner(r, c):  # B 8 x 8 (k x n), "col": b0 (q, g), b1 (q+4, g)
        q, hi = r % 4, r // 4
        return c * 4 + q, "b%d" % hi

    def c_owner(r, c):  # C 16 x 8: c0 (g, 2q), c1 (g, 2q+1), c2 (g+8, 2q), c3 (g+8, 2q+1)
        g, hi_r = r % 8, r // 8
        q, odd = c // 2, c % 2
        return g * 4 + q, "c%d" % (2 * hi_r + odd)

    grid(40, 80, 16, 8, "A (16 x 8, row)", a_owner)
    grid(370, 80, 8, 8, "B (8 x 8, col)", b_owner)
    grid(700, 80, 16, 8, "C and D (16 x 8)", c_owner)
    notes = ["Each lane holds 4 elements of A, 2 of B and 4 of C: 32 lanes x 4 = 128 = 16 x 8.",
             "A row r is shared by the 4 lanes of group g = r % 8; a row k of B by the 8 lanes with q = k % 4.",
             "In ember's attention, A = the warp's 16 query rows, B = 8 keys (scores) or 8 value channels (P V^T),",
             "C = the fp32 accumulators; the SIMT variant computes exactly the same C elements per lane with FMAs."]
    for i, t in enumerate(notes):
        s.text(40, 680 + 20 * i, t, 12, anchor="start")
    s.save("kernel_mma_m16n8k8.svg")


def draw_attention_tiles():
    s = Svg(1000, 560)
    s.text(500, 24, "attn_fwd: one block = 64 queries x one chunk of <= 128 value channels; 4 warps x 16 query rows",
           13, weight="bold")
    # score tile: queries (rows) x keys (cols)
    x0, y0, qh, kw = 60, 80, 5, 9  # px per query row, px per key column
    s.text(x0 + 16 * kw, y0 - 12, "S = Q^T K for one key tile (32 keys)", 12)
    colors = ["#f4a6a6", "#a6d4f4", "#b8f4a6", "#f4dba6"]
    for w in range(4):
        s.rect(x0, y0 + w * 16 * qh, 32 * kw, 16 * qh, fill=colors[w], stroke="#333")
        s.text(x0 + 16 * kw, y0 + w * 16 * qh + 8 * qh + 4, f"warp {w}: queries {16*w}..{16*w+15} x 32 keys", 11)
        for k8 in range(1, 4):
            s.line(x0 + 8 * k8 * kw, y0 + w * 16 * qh, x0 + 8 * k8 * kw, y0 + (w + 1) * 16 * qh, stroke="#777", sw=0.5)
    s.text(x0 - 30, y0 + 32 * qh, "64 q", 11)
    s.text(x0 + 16 * kw, y0 + 64 * qh + 18, "4 mma n-steps of 8 keys per warp (16 x 8 each)", 11)
    # shared memory tiles
    sx = 420
    s.text(sx + 230, 70, "shared memory of the block", 12, weight="bold")
    tiles = [("Qs [dk_pad][72]", "resident: the block's 64 queries (A of S = Q^T K)", "#eeeeee"),
             ("Ks [dk_pad][40]", "key tile: 32 keys, loaded by all 128 threads", "#dde8ff"),
             ("Vs [128][36]", "value tile: 128 channels x 32 keys (B of O += P V^T)", "#ddffdd"),
             ("Ps [4][16][36]", "per warp: its 16 x 32 P tile (A of O += P V^T)", "#ffe8cc")]
    for i, (name, what, fill) in enumerate(tiles):
        y = 90 + i * 62
        s.rect(sx, y, 150, 44, fill=fill)
        s.text(sx + 75, y + 27, name, 12)
        s.text(sx + 165, y + 27, what, 11, anchor="start")
    s.text(sx, 350, "strides 72, 40, 36: 8 (or 4) mod 32, so the 4 rows x 8 columns a fragment", 11, anchor="start")
    s.text(sx, 366, "read touches 32 different banks (no bank conflicts)", 11, anchor="start")
    # per-warp output
    s.text(60, 470, "registers per warp: O [16 queries x 128 channels] = 16 mma tiles of 16 x 8 -> 64 floats per lane;", 11,
           anchor="start")
    s.text(60, 488, "running max m and sum l for each of its rows (lanes of a group g share rows g and g+8).", 11, anchor="start")
    s.text(60, 506, "Per key tile: load Ks, Vs -> __syncthreads -> S (registers) -> online softmax -> P to Ps -> O += P V^T.",
           11, anchor="start")
    s.text(60, 524, "grid = (ceil(N/64), ceil(dv/128), B); padding keys get score -inf, padding channels load 0.", 11,
           anchor="start")
    s.save("kernel_attention_tiles.svg")


def draw_online_softmax():
    s = Svg(1000, 420)
    s.text(500, 24, "Online softmax over key tiles (one query row): rescale what was summed when the maximum grows",
           13, weight="bold")
    tiles = [("tile 1", "max 2.0"), ("tile 2", "max 5.0"), ("tile 3", "max 3.0")]
    ms = [2.0, 5.0, 5.0]
    for i, (name, mx) in enumerate(tiles):
        x = 40 + i * 310
        s.rect(x, 60, 280, 40, fill="#dde8ff")
        s.text(x + 140, 78, f"{name}: 32 scores s_j", 12)
        s.text(x + 140, 94, f"(tile {mx})", 11)
        s.rect(x, 150, 280, 120, fill="#f7f7f7")
        s.text(x + 140, 170, f"m{i+1} = max(m{i}, tile max) = {ms[i]:.1f}", 11)
        s.text(x + 140, 192, f"alpha = e^(m{i} - m{i+1})" + (" = 0 (m0 = -inf)" if i == 0 else
                                                            (" = e^-3" if i == 1 else " = 1")), 11)
        s.text(x + 140, 214, f"l{i+1} = alpha l{i} + sum_j e^(s_j - m{i+1})", 11)
        s.text(x + 140, 236, f"O{i+1} = alpha O{i} + sum_j e^(s_j - m{i+1}) v_j", 11)
        s.text(x + 140, 258, "every exponent <= 0: no overflow", 10, fill="#555")
        s.line(x + 140, 100, x + 140, 150, arrow=True)
        if i < 2:
            s.line(x + 280, 210, x + 310, 210, arrow=True)
    s.text(500, 310, "After the last tile: o = O / l,  lse = m + log l  (stored, so the backward recomputes p_ij = e^(s_ij - lse_i)).",
           12)
    s.text(500, 334, "Softmax (variant 3) merges two partial pairs the same way: m' = max(m1, m2), s' = s1 e^(m1-m') + s2 e^(m2-m');",
           12)
    s.text(500, 354, "while both are empty (m = -inf) the pair stays (-inf, 0): e^(-inf - -inf) would be NaN.", 12)
    s.text(500, 380, "The kernels work in base 2: x = s log2(e), then exp2f (one instruction).", 12)
    s.save("kernel_online_softmax.svg")


def draw_sn_tickets():
    s = Svg(1000, 520)
    s.text(500, 24, "Spectral norm, column pass (launch 1): v' = Wm^T u, finished on the device by the last block of each column tile",
           13, weight="bold")
    x0, y0, bw, bh = 60, 70, 110, 60
    for rt in range(3):
        for ct in range(3):
            s.rect(x0 + ct * bw, y0 + rt * bh, bw, bh, fill="#dde8ff" if ct != 1 else "#ffe8cc")
            s.text(x0 + ct * bw + bw / 2, y0 + rt * bh + 26, f"block ({ct},{rt})", 11)
            s.text(x0 + ct * bw + bw / 2, y0 + rt * bh + 42, f"rows tile {rt}", 10, fill="#555")
    s.text(x0 + 1.5 * bw, y0 - 10, "Wm tiled: 3 row tiles x 3 column tiles (grid.y x grid.x)", 11)
    # the tickets of column tile 1
    cx = x0 + 1.5 * bw
    s.line(cx, y0 + 3 * bh, cx, 288, stroke="#c60", arrow=True)
    s.rect(cx - 125, 290, 250, 30, fill="#ffe8cc", stroke="#c60")
    s.text(cx, 309, "ticket counter: 0 -> 1 -> 2 -> 3", 11)
    s.text(cx, 340, "each block: the partial of v' for its 4*TX columns over its rows", 11)
    sx = 470
    steps = [(0, "1. write the partial to workspace p1[row tile][columns]"),
             (0, "2. __threadfence(): the partial is visible device-wide"),
             (0, "3. t = atomicAdd(&g_tickets[column tile], 1)"),
             (0, "4. t == row_tiles - 1: this block is the last to arrive:"),
             (1, "read every row tile's partial (__ldcg: L2, never a stale L1 line),"),
             (1, "add them in a fixed order (deterministic, unlike float atomics),"),
             (1, "write v' for these columns and this tile's share of ||v'||^2,"),
             (1, "reset g_tickets[column tile] = 0 for the next launch"),
             (0, "   otherwise: done (blocks never wait for each other)")]
    s.text(sx, 80, "column tile 1 (orange), in every block:", 12, anchor="start", weight="bold")
    for i, (indent, t) in enumerate(steps):
        s.text(sx + 24 * indent, 104 + i * 20, t.strip(), 11, anchor="start")
    s.text(500, 390, "Launch 2 (row pass) reads ||v'|| (every block adds the column tiles' shares in the same order),", 12)
    s.text(500, 410, "computes t = Wm v with two more ticket levels: the last block of each row tile finishes t for its rows,", 12)
    s.text(500, 430, "the last of those computes ||t||, u = t / max(||t||, eps) and sigma = u . t: two launches, no host sync.", 12)
    s.text(500, 460, "PyTorch's sequence (lab version 1) issues ~13 launches for the same step; one block alone (version 2)", 12)
    s.text(500, 480, "needs no tickets but leaves all multiprocessors but one idle.", 12)
    s.save("kernel_sn_tickets.svg")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    draw_mma()
    draw_attention_tiles()
    draw_online_softmax()
    draw_sn_tickets()
