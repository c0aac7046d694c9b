#!/usr/bin/env python3
"""The straightforward PyTorch trainer that bench/versus_pytorch runs beside sweep: a ReLU SAE with
L1 sparsity and, optionally, the dense absorption penalty of the README and bfloat16 products
(autocast), trained with Adam on the `activations` tensor of a safetensors file, batches in file
order. Prints the training tokens/s
(steps only, after one warm-up step). A benchmark's reference, not part of the tool."""
import argparse
import json
import struct
import time

import torch


def load_activations(path):
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        meta = header["activations"]
        assert meta["dtype"] == "F32", "expects F32 activations"
        start, end = meta["data_offsets"]
        f.seek(8 + header_len + start)
        data = bytearray(f.read(end - start))
    return torch.frombuffer(data, dtype=torch.float32).view(*meta["shape"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--d-sae", type=int, default=768)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--l1", type=float, default=0.15)
    p.add_argument("--penalty", action="store_true", help="the dense absorption penalty")
    p.add_argument("--tau", type=float, default=0.8)
    p.add_argument("--rho", type=float, default=5.0)
    p.add_argument("--lam", type=float, default=0.1)
    p.add_argument("--beta", type=float, default=0.99)
    p.add_argument("--active", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--bf16", action="store_true", help="matrix products in bfloat16 (CPU autocast)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    x_all = load_activations(a.data)
    d_in = x_all.shape[1]
    torch.manual_seed(0)
    dec = torch.randn(a.d_sae, d_in)
    dec /= dec.norm(dim=1, keepdim=True)
    W_dec = dec.clone().requires_grad_()
    W_enc = dec.t().clone().requires_grad_()
    b_enc = torch.zeros(a.d_sae, requires_grad=True)
    b_dec = torch.zeros(d_in, requires_grad=True)
    opt = torch.optim.Adam([W_enc, W_dec, b_enc, b_dec], lr=a.lr)
    P = torch.zeros(a.d_sae)
    Q = torch.zeros(a.d_sae, a.d_sae)
    eye = torch.eye(a.d_sae, dtype=torch.bool)

    def step(x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            f = torch.relu((x - b_dec) @ W_enc + b_enc)
            x_hat = f @ W_dec + b_dec
        loss = (x - x_hat).pow(2).sum(1).mean() + a.l1 * f.abs().sum(1).mean()
        if a.penalty:
            with torch.no_grad():
                act = (f > 0).float()
                P.mul_(a.beta).add_(act.mean(0), alpha=1 - a.beta)
                Q.mul_(a.beta).add_(act.t() @ act / x.shape[0], alpha=1 - a.beta)
                R = torch.where(P[:, None] * P[None, :] > 0, Q / (P[:, None] * P[None, :]).clamp_min(1e-30), 0.0)
            unit = W_dec / W_dec.norm(dim=1, keepdim=True)
            C = unit @ unit.t()
            with torch.no_grad():
                on = P > a.active
                mask = on[:, None] & on[None, :] & ~eye & (C > a.tau) & (R > a.rho)
                weight = torch.where(mask, R - a.rho, 0.0)
            loss = loss + a.lam * (weight * C).sum()
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():
            unit = W_dec / W_dec.norm(dim=1, keepdim=True)
            W_dec.grad -= (W_dec.grad * unit).sum(1, keepdim=True) * unit
        opt.step()
        with torch.no_grad():
            W_dec.div_(W_dec.norm(dim=1, keepdim=True))
        return loss.item()

    rows = x_all.shape[0]
    batch_at = lambda s: x_all[(s * a.batch) % (rows - a.batch + 1):][: a.batch]
    step(batch_at(0))
    start = time.perf_counter()
    for s in range(1, a.steps + 1):
        loss = step(batch_at(s))
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_second": a.steps * a.batch / seconds, "seconds": seconds, "final_loss": loss,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
