"""Write a BERT-family model (a sentence-transformers embedder or a one-logit cross-encoder) as a GGUF file that
a llama.cpp server serves on its ``/v1/embeddings`` or ``/v1/rerank`` endpoint.

Why: a CPU node or a laptop can then share one llama.cpp process per model among every worker, like the cluster's
vLLM servers, and evolve's own trained embedders and rerankers can be served the same way. Weights stay float32, so
the server's scores match the in-process model's closely (measured in ``tests/pipelines/test_remote_servers.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

EMBEDDER, RERANKER = "embedder", "reranker"


def _pooling(folder: Path) -> str:
    """'mean' or 'cls', from a sentence-transformers Pooling module (mean when there is none)."""
    modules = folder / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if module.get("type", "").endswith("Pooling"):
                config = json.loads((folder / module["path"] / "config.json").read_text(encoding="utf-8"))
                if config.get("pooling_mode_cls_token"):
                    return "cls"
    return "mean"


def export_bert_gguf(folder: Path | str, out: Path | str, kind: str = EMBEDDER, name: str | None = None) -> Path:
    """``folder`` (a sentence-transformers or Hugging Face BERT directory) as a float32 GGUF at ``out``.

    ``kind`` 'embedder' keeps the model's pooling (mean or CLS); 'reranker' writes the pooler and the one-logit
    classifier as llama.cpp's rank head (``tanh(W_p h_cls + b_p)`` then ``W_c x + b_c``, what Hugging Face's
    ``BertForSequenceClassification`` computes). Anything but BERT is refused with the architecture named.
    """
    import gguf
    from safetensors.numpy import load_file

    from pipelines.embedders import transformer_subfolder  # (pipelines.embedders imports this package)

    folder = Path(folder)
    hf = transformer_subfolder(folder)
    config = json.loads((hf / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "bert":
        raise ValueError(f"{folder}: only BERT models export to GGUF here (model_type {config.get('model_type')!r})")
    tensors = load_file(str(hf / "model.safetensors"))
    blocks = int(config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, blocks)
    writer = gguf.GGUFWriter(str(out), "bert")
    writer.add_name(name or folder.name)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(blocks)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
    writer.add_causal_attention(False)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    if kind == RERANKER:
        writer.add_pooling_type(gguf.PoolingType.RANK)
    else:
        writer.add_pooling_type(gguf.PoolingType.CLS if _pooling(folder) == "cls" else gguf.PoolingType.MEAN)
    _write_vocab(writer, hf, int(config.get("type_vocab_size", 2)))
    written = 0
    for key, value in tensors.items():
        short = key.removeprefix("bert.")
        if short.endswith("position_ids"):
            continue
        stem, _, suffix = short.rpartition(".")
        if short.startswith("pooler.dense."):
            if kind != RERANKER:
                continue
            target = "cls"
        elif short.startswith("classifier."):
            if kind != RERANKER:
                continue
            target = "cls.output"
        else:
            target = names.get_name(stem)
            if target is None:
                raise ValueError(f"{folder}: tensor {key} has no GGUF name")
        writer.add_tensor(f"{target}.{suffix}", np.ascontiguousarray(value, dtype=np.float32))
        written += 1
    if kind == RERANKER and not any(k.startswith(("classifier.", "bert.pooler")) for k in tensors):
        raise ValueError(f"{folder}: no classifier head to serve as a reranker")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(out)


def _write_vocab(writer, folder: Path, token_types: int) -> None:  # type: ignore[no-untyped-def]
    """llama.cpp's WordPiece vocabulary: special tokens as they are, others in 'phantom space' form (a word start
    gets U+2581, a continuation loses its '##'), which is how llama.cpp's converter writes BERT vocabularies."""
    import gguf

    if (folder / "vocab.txt").is_file():
        tokens = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    else:  # a fast tokenizer saved alone (transformers 5 writes no vocab.txt)
        model = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]
        if model.get("type") != "WordPiece":
            raise ValueError(f"{folder}: a BERT GGUF needs a WordPiece vocabulary, not {model.get('type')!r}")
        tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda item: item[1])]
    special = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    types, written = [], []
    for token in tokens:
        if token in special:
            types.append(gguf.TokenType.CONTROL)
            written.append(token)
        else:
            types.append(gguf.TokenType.NORMAL)
            written.append(token[2:] if token.startswith("##") else "\u2581" + token)
    writer.add_token_type_count(token_types)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(written)
    writer.add_token_types(types)
    ids = {t: i for i, t in enumerate(tokens)}
    for token, add in (("[CLS]", writer.add_bos_token_id), ("[SEP]", writer.add_sep_token_id),
                       ("[UNK]", writer.add_unk_token_id), ("[PAD]", writer.add_pad_token_id),
                       ("[MASK]", writer.add_mask_token_id)):
        if token in ids:
            add(ids[token])
