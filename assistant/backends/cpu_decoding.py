"""Fast single-token decoding on a CPU: 4- or 8-bit weights and a plain attention for one query.

Weights: weight-only quantization; activations are never quantized.

Generating one token multiplies a single row of activations by every weight matrix, so on a CPU
the time goes to reading weights and to per-call overhead, not to arithmetic. Packed 4-bit
weights (groups of 32, each with a scale and an offset, the layout of GGUF's Q4_1) or 8-bit
weights (one scale per output row) are read 2-4x faster by torch's int4/int8 matrix kernels.
Activations are never quantized: quantizing them too (torch's dynamic int8) made SmolLM2-135M
answer "What is the capital of France?" with French gibberish. The packed kernels take bfloat16
rows: with float32 rows the int4 kernel ran at a quarter of the speed on an AVX2 CPU (6 vs 28
tokens/s), so a float32 model's one decoding row is cast to bfloat16 for the packed product and
back (576 values a layer), while everything else, the prefill included, stays float32.

A prompt's prefill multiplies hundreds of rows at once, where the dense GEMM is 2x faster than
the packed kernels, so each layer keeps its dense weight for that and the packed copy for decoding.

Attention: for one query token, torch's bf16 flash-attention kernel on the CPU spends ~0.2-0.3 ms
per layer in set-up (measured at 300-600 cached tokens), 3-4x two small matmuls and a softmax.
DECODE_ATTENTION does that for one query and hands anything longer (the prefill) to SDPA.
"""
from __future__ import annotations

import torch

GROUP = 32  # 4-bit group size: GGUF's Q4_0/Q4_1 blocks are 32 weights along the input dimension
PREFILL_ROWS = 4  # above this many rows a call is a prefill and uses the dense weight
INNER_K_TILES = 2


class QuantizedLinear(torch.nn.Module):
    def __init__(self, linear: torch.nn.Linear, bits: int):
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"{bits}-bit weights: use 4 or 8")
        self.bits = bits
        self.out_features, self.in_features = linear.weight.shape
        self.weight = linear.weight  # the dense weight, shared (a tied lm_head keeps sharing it)
        self.bias = linear.bias
        weight = linear.weight.detach().float()
        if bits == 4:
            packed, scales_and_zeros = _pack_int4(weight)
            self.register_buffer("packed", packed)
            self.register_buffer("scales_and_zeros", scales_and_zeros)
        else:
            scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127
            self.register_buffer("int8_weight", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
            self.register_buffer("scales", scale.to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if rows.shape[0] > PREFILL_ROWS or rows.dtype not in (torch.bfloat16, torch.float32):
            out = torch.nn.functional.linear(rows, self.weight, self.bias)
        else:
            packed_rows = rows.to(torch.bfloat16).contiguous()
            if self.bits == 4:
                out = torch.ops.aten._weight_int4pack_mm_for_cpu(packed_rows, self.packed, GROUP,
                                                                 self.scales_and_zeros)
            else:
                out = torch.ops.aten._weight_int8pack_mm(packed_rows, self.int8_weight, self.scales)
            out = out.to(rows.dtype)
            if self.bias is not None:
                out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, bits={self.bits}"


def _pack_int4(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric 4-bit groups: w ≈ (q - 8) * scale + zero, q in 0..15 (torch's int4pack layout)."""
    rows, cols = weight.shape
    groups = weight.reshape(rows, cols // GROUP, GROUP)
    low, high = groups.amin(-1), groups.amax(-1)
    scale = ((high - low) / 15).clamp(min=1e-8)
    q = torch.round((groups - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32).reshape(rows, cols)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, INNER_K_TILES)
    zero = low + scale * 8
    scales_and_zeros = torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
    return packed, scales_and_zeros


DECODE_ATTENTION = "memchat_decode"


def decode_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Attention in transformers' interface: [batch, heads, q, dim] in, [batch, q, heads, dim] out."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if query.shape[2] != 1 or dropout or kwargs.get("softcap") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)  # the query heads sharing each key head
    scores = torch.matmul(grouped, key.transpose(-1, -2)) * (scaling if scaling is not None else dim ** -0.5)
    if attention_mask is not None:  # [batch, 1, 1, keys]: bool (True = attend) or additive
        mask = attention_mask[..., : key.shape[2]]
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = torch.softmax(scores.float(), dim=-1).to(value.dtype)
    out = torch.matmul(weights, value)  # [batch, kv_heads, group, dim]
    return out.reshape(batch, heads, 1, dim).transpose(1, 2), None


def use_decode_attention(model) -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(DECODE_ATTENTION, decode_attention)
    AttentionMaskInterface.register(DECODE_ATTENTION, sdpa_mask)  # the same masks SDPA gets
    model.set_attn_implementation(DECODE_ATTENTION)


def quantize_for_decoding(model: torch.nn.Module, block_bits: int, head_bits: int) -> int:
    """Swap the model's Linear layers for QuantizedLinear in place; returns how many were swapped.

    block_bits applies to the transformer blocks, head_bits to the output projection (lm_head),
    which decides between 49k tokens and is kept at 8 bits, as GGUF files keep their embeddings.
    """
    if not hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu"):
        return 0  # an older torch: plain bf16 still works
    output = model.get_output_embeddings()
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, torch.nn.Linear):
                continue
            bits = head_bits if child is output else block_bits
            if bits == 4 and child.in_features % GROUP:
                bits = 8
            setattr(parent, name, QuantizedLinear(child, bits))
            swapped += 1
    return swapped
