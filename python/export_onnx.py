#!/usr/bin/env python3
"""Exports a HF TrOCR checkpoint to ONNX for ONNX Runtime (#15), on the GPU machine (torch there).

    python3 python/export_onnx.py --model-dir DIR --out OUT

OUT/encoder.onnx: pixel_values [batch, 3, H, W] -> cross_keys, cross_values [layers, batch, heads,
    tokens, head_dim]: HF's encoder, the enc_to_dec_proj where the model has one, and every decoder
    layer's cross-attention K/V, computed once per image as generate() does on its first step.
OUT/decoder.onnx: input_ids [rows, 1], position [1] (tokens before this one), past_keys,
    past_values [layers, rows, heads, past, head_dim], cross_keys, cross_values -> logits
    [rows, vocab], present_keys, present_values (past + 1). One step with the KV cache.
OUT/export.json: the sizes and token ids the loop in python/ort_generate.py reads.

The decoder step is written here from HF's own modules (its Linear and LayerNorm layers, TrOCR's
post-LN order, q scaled before the product), so that the exported graph is the model's math with
plain tensors instead of HF's cache objects; ort_generate.py --check compares its ids with HF's.
"""
import argparse
import json
import os

import torch
from transformers import VisionEncoderDecoderModel


def heads_first(x, heads):
    """[rows, tokens, width] -> [rows, heads, tokens, head_dim]."""
    rows, tokens, width = x.shape
    return x.reshape(rows, tokens, heads, width // heads).transpose(1, 2)


class EncoderWithCrossKeys(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.encoder = model.encoder
        self.projection = getattr(model, "enc_to_dec_proj", None)
        self.layers = model.decoder.model.decoder.layers
        self.heads = model.config.decoder.decoder_attention_heads

    def forward(self, pixel_values):
        states = self.encoder(pixel_values=pixel_values).last_hidden_state
        if self.projection is not None:
            states = self.projection(states)
        keys = [heads_first(layer.encoder_attn.k_proj(states), self.heads) for layer in self.layers]
        values = [heads_first(layer.encoder_attn.v_proj(states), self.heads) for layer in self.layers]
        return torch.stack(keys), torch.stack(values)


class DecoderStep(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        config = model.config.decoder
        if not config.use_learned_position_embeddings:
            raise SystemExit("export_onnx.py: only learned decoder positions are exported")
        decoder = model.decoder.model.decoder
        self.embed_tokens, self.embed_positions = decoder.embed_tokens, decoder.embed_positions
        self.layernorm_embedding = decoder.layernorm_embedding
        # transformers 5's TrOCRScaledWordEmbedding scales in its own forward; older releases
        # kept embed_scale on the decoder and multiplied there.
        scales_itself = hasattr(decoder.embed_tokens, "embed_scale")
        self.scale = 1.0 if scales_itself else getattr(decoder, "embed_scale", None) or (
            config.d_model ** 0.5 if config.scale_embedding else 1.0)
        self.layers = decoder.layers
        self.output_projection = model.decoder.output_projection
        self.heads = config.decoder_attention_heads

    def attend(self, attention, hidden, keys, values):
        """HF's TrOCRAttention for one query token: q scaled, softmax over the keys, out_proj."""
        head_dim = keys.shape[-1]
        query = heads_first(attention.q_proj(hidden) * head_dim ** -0.5, self.heads)
        weights = torch.softmax(query @ keys.transpose(2, 3), dim=-1)
        context = (weights @ values).transpose(1, 2).reshape(hidden.shape)
        return attention.out_proj(context)

    def forward(self, input_ids, position, past_keys, past_values, cross_keys, cross_values):
        # TrOCRLearnedPositionalEmbedding: row position + 2.
        hidden = self.embed_tokens(input_ids) * self.scale + self.embed_positions.weight[position + 2].unsqueeze(0)
        if self.layernorm_embedding is not None:
            hidden = self.layernorm_embedding(hidden)
        present_keys, present_values = [], []
        for index, layer in enumerate(self.layers):
            attention = layer.self_attn
            keys = torch.cat([past_keys[index], heads_first(attention.k_proj(hidden), self.heads)], dim=2)
            values = torch.cat([past_values[index], heads_first(attention.v_proj(hidden), self.heads)], dim=2)
            present_keys.append(keys)
            present_values.append(values)
            hidden = layer.self_attn_layer_norm(hidden + self.attend(attention, hidden, keys, values))
            hidden = layer.encoder_attn_layer_norm(
                hidden + self.attend(layer.encoder_attn, hidden, cross_keys[index], cross_values[index]))
            feed_forward = layer.fc2(layer.activation_fn(layer.fc1(hidden)))
            hidden = layer.final_layer_norm(hidden + feed_forward)
        logits = self.output_projection(hidden)[:, 0, :]
        return logits, torch.stack(present_keys), torch.stack(present_values)


def export(module, arguments, path, input_names, output_names, dynamic_axes):
    """The TorchScript exporter where this torch still has it, else torch.export's (which takes
    the same dynamic_axes and turns them into dynamic shapes)."""
    common = dict(input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes)
    try:
        torch.onnx.export(module, arguments, path, opset_version=17, dynamo=False, **common)
    except Exception as failure:  # noqa: BLE001 - any failure of the old exporter: try the new one
        print(f"export_onnx.py: the TorchScript exporter failed ({failure}); trying dynamo=True")
        torch.onnx.export(module, arguments, path, opset_version=18, dynamo=True, **common)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    model = VisionEncoderDecoderModel.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    config, decoder_config = model.config, model.config.decoder
    size = config.encoder.image_size
    height, width = (size, size) if isinstance(size, int) else size
    layers, heads = decoder_config.decoder_layers, decoder_config.decoder_attention_heads
    head_dim = decoder_config.d_model // heads
    os.makedirs(args.out, exist_ok=True)
    with torch.inference_mode():
        pixels = torch.randn(2, 3, height, width)
        encoder = EncoderWithCrossKeys(model)
        cross_keys, cross_values = encoder(pixels)
        export(encoder, (pixels,), os.path.join(args.out, "encoder.onnx"), ["pixel_values"],
               ["cross_keys", "cross_values"],
               {"pixel_values": {0: "batch"}, "cross_keys": {1: "batch"}, "cross_values": {1: "batch"}})
        past = torch.randn(layers, 2, heads, 3, head_dim)
        cache_axes = {1: "rows", 3: "past"}
        export(DecoderStep(model), (torch.tensor([[5], [6]]), torch.tensor([3]), past, past.clone(), cross_keys,
                                    cross_values),
               os.path.join(args.out, "decoder.onnx"),
               ["input_ids", "position", "past_keys", "past_values", "cross_keys", "cross_values"],
               ["logits", "present_keys", "present_values"],
               {"input_ids": {0: "rows"}, "past_keys": cache_axes, "past_values": cache_axes,
                "cross_keys": {1: "rows"}, "cross_values": {1: "rows"}, "logits": {0: "rows"},
                "present_keys": cache_axes, "present_values": cache_axes})
    generation = model.generation_config
    meta = dict(layers=layers, heads=heads, head_dim=head_dim, vocab=decoder_config.vocab_size, height=height,
                width=width, decoder_start=config.decoder_start_token_id, eos=generation.eos_token_id,
                pad=generation.pad_token_id, max_positions=decoder_config.max_position_embeddings)
    json.dump(meta, open(os.path.join(args.out, "export.json"), "w"), indent=1)
    print("exported", args.model_dir, "->", args.out, meta)


if __name__ == "__main__":
    main()
