"""`router`: one artifact that sends each text to the sub-model for its language, by script.

    sentitune.json  {"method": "router", "options": {"routes": {"zh": "../chinese", "en": "default"},
                                                     "fallback": "en"}}

A route is named by a language code (``zh`` Chinese, ``ja`` Japanese, ``ko`` Korean, ``en``) and
points at a sentitune artifact: a path relative to the router's directory, an absolute path, or
``default`` (the shipped English model, ``sentitune.ENGLISH_MODEL_PATH``). Each text goes to the
route of its dominant script (``sentitune.methods.script``); texts whose language has no route, or
that have no letters, go to the fallback route, and ``unreadable_warning`` names the language it
could not route.

Each sub-model keeps its own calibration: ``logits`` returns every sub-model's logits already divided
by that sub-model's temperature, and the router's own temperature stays 1, so ``predict_proba``
equals the chosen sub-model's ``predict_proba`` on every text.

The shipped default (``sentitune.DEFAULT_MODEL_PATH``, src/sentitune/models/router) is a router, so
it offers what callers read from a single model, built from its sub-models: ``capabilities``,
``tokenizer`` and ``model`` (the torch weights) of its transformer route, a ``batch_size`` that
reaches every sub-model that has one, and ``meta.max_length``: the transformer route's window, and
lowering it (the server's MAX_LENGTH) lowers every sub-model's at its next call.

Compose one with ``build_router(out_dir, {"zh": path, "en": path})`` (refers to the sub-models
where they are) or ``sentitune train --method router --model zh=PATH,en=PATH --output-dir OUT``
(copies them into OUT, a self-contained artifact).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from sentitune.artifact import ArtifactMeta, read_meta, write_meta
from sentitune.errors import ArtifactError, SentituneError
from sentitune.methods.base import Capabilities, SentimentModel, check_texts
from sentitune.methods.script import LANGUAGES, dominant_script, script_name

DEFAULT_ROUTE = "default"  # a route value meaning the shipped English model
# the directory sentitune.ENGLISH_MODEL_PATH names (methods/ sits below the package root: no import)
ENGLISH_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"
ROUTABLE = tuple(LANGUAGES.values())


class RouterModel(SentimentModel):
    method = "router"

    def __init__(self, meta: ArtifactMeta | None = None, models: dict[str, SentimentModel] | None = None,
                 sources: dict[str, Path] | None = None):
        self.models = models or {}  # set first: the base class hashes them into the cache's model id
        self.sources = sources or {}  # route -> the directory its model was loaded from
        super().__init__(meta or ArtifactMeta(method=self.method))
        self._adopt_lengths()

    def _adopt_lengths(self) -> None:
        """``meta.max_length`` becomes the longest window of a transformer route (what the server's
        token check compares with); each sub-model's own stays the cap ``_cap_lengths`` never lifts."""
        self.own_max_length = {name: m.meta.max_length for name, m in self.models.items()}
        windows = [self.own_max_length[n] for n, m in self.models.items() if m.capabilities.tokenizer]
        if windows:
            self.meta.max_length = max(windows)

    def _cap_lengths(self) -> None:
        # a caller lowers meta.max_length (serving's MAX_LENGTH): every sub-model reads at most that
        for name, model in self.models.items():
            model.meta.max_length = min(self.own_max_length.get(name, model.meta.max_length), self.meta.max_length)

    @property
    def fallback(self) -> str:
        return self.meta.options.get("fallback", "en")

    # --- routing ---------------------------------------------------------------------------------
    def routes_for(self, texts: list[str]) -> list[str]:
        """The route name each text goes to."""
        return [self._route(dominant_script(t)) for t in texts]

    def readers_for(self, texts: list[str]) -> list[SentimentModel]:
        """The model that reads each text (through a router inside a router, its route's), each
        with the ``meta.max_length`` it reads at: this router's cap applied, as ``logits`` applies it."""
        self._cap_lengths()
        readers = [self.models[r] for r in self.routes_for(texts)]
        for model in self.models.values():
            if isinstance(model, RouterModel):
                idx = [i for i, m in enumerate(readers) if m is model]
                for i, leaf in zip(idx, model.readers_for([texts[i] for i in idx])):
                    readers[i] = leaf
        return readers

    def _route(self, script: str | None) -> str:
        language = LANGUAGES.get(script or "")
        return language if language in self.models else self.fallback

    def logits(self, texts: list[str]) -> np.ndarray:
        routes = self.routes_for(texts)
        self._cap_lengths()
        out = np.empty((len(texts), 2), dtype=np.float64)
        for name, model in self.models.items():
            idx = [i for i, r in enumerate(routes) if r == name]
            if idx:
                # divided by the sub-model's temperature here: the router's own stays 1
                out[idx] = np.asarray(model.logits([texts[i] for i in idx]), dtype=np.float64) / model.temperature
        return out

    def unreadable_warning(self, texts: list[str]) -> str | None:
        """Names the languages that had no route (scored by the fallback model), then whatever a
        sub-model says about the texts it was given."""
        scripts = [dominant_script(t) for t in texts]
        unrouted = Counter(s for s in scripts if s is not None and LANGUAGES.get(s) not in self.models)
        messages = []
        if unrouted:
            n = sum(unrouted.values())
            what = ", ".join(f"{script_name(s)}" for s, _ in unrouted.most_common())
            messages.append(
                f"{n} of {len(texts)} texts are in {what}, which this model has no route for "
                f"(routes: {', '.join(self.models)}); the {self.fallback!r} model scored them and may be wrong"
            )
        for name, model in self.models.items():
            routed = [t for t, s in zip(texts, scripts) if s not in unrouted and self._route(s) == name]
            if routed and (message := model.unreadable_warning(routed)):
                messages.append(f"{name} route: {message}")
        return "; ".join(messages) or None

    # --- what callers read from one model, built from the sub-models ---------------------------
    @property
    def capabilities(self) -> Capabilities:
        """Each ability some route has: ``explain`` answers for that route's texts (None for the
        others), ``batch_size`` reaches the routes that batch, ``tokenizer`` is the transformer route's."""
        found = [m.capabilities for m in self.models.values()]
        return Capabilities(explain=any(c.explain for c in found), batch_size=any(c.batch_size for c in found),
                            tokenizer=any(c.tokenizer for c in found))

    def transformer_route(self) -> str | None:
        """The route whose tokenizer and torch weights callers see (the fallback first), or None."""
        names = sorted(self.models, key=lambda n: n != self.fallback)
        return next((n for n in names if self.models[n].capabilities.tokenizer), None)

    @property
    def tokenizer(self) -> Any:
        route = self.transformer_route()
        return self.models[route].tokenizer if route else None

    @property
    def model(self) -> Any:
        """The transformer route's torch module (what the server reads to say which precision runs)."""
        route = self.transformer_route()
        return getattr(self.models[route], "model", None) if route else None

    @property
    def batch_size(self) -> int | None:
        route = next((n for n, m in self.models.items() if m.capabilities.batch_size), None)
        return self.models[route].batch_size if route else None

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        for model in self.models.values():
            if model.capabilities.batch_size:
                model.batch_size = value

    def explain(self, texts, labels=None) -> list[str | None]:
        """Each route that can explain answers for its texts; texts of the others get None."""
        if not self.capabilities.explain:
            raise SentituneError(f"no route of this router ({', '.join(self.models)}) can explain its predictions")
        texts = check_texts(texts)
        routes, out = self.routes_for(texts), [None] * len(texts)
        for name, model in self.models.items():
            idx = [i for i, r in enumerate(routes) if r == name]
            if idx and model.capabilities.explain:
                given = None if labels is None else [labels[i] for i in idx]
                for i, reason in zip(idx, model.explain([texts[i] for i in idx], given)):
                    out[i] = reason
        return out

    # --- the rest of the interface ---------------------------------------------------------------
    def fit(self, train: list[dict], val: list[dict] | None = None, config: Any = None, *,
            metrics: Any = None) -> "RouterModel":
        """``sentitune train --method router --model zh=PATH,en=PATH``: nothing is trained; the
        sub-models are loaded, and ``save`` copies them into the output directory."""
        spec = getattr(config, "model", None) or ""
        routes = parse_routes(spec)
        self.sources = {name: resolve_ref(ref, Path.cwd()) for name, ref in routes.items()}
        self.models = {name: load_submodel(path, ()) for name, path in self.sources.items()}
        self.meta.options = {"routes": {name: name for name in routes}, "fallback": "en"}
        self.meta.base_model = describe(self.models)
        self._adopt_lengths()
        if config is not None:  # a temperature fitted on top would change every sub-model's probabilities
            config.calibrate = False
        return self

    def save_weights(self, directory: Path) -> list[str]:
        """Each sub-model into a sub-directory named after its route: a self-contained artifact."""
        files = []
        for name, model in self.models.items():
            source, target = self.sources.get(name), directory / name
            if source is None:
                model.save(target)
            elif source.resolve() != target.resolve():  # a loaded model may not be savable (merged LoRA): copy
                shutil.copytree(source, target, dirs_exist_ok=True)
            files += [f"{name}/{f}" for f in read_meta(target).files]
        self.meta.options = {**self.meta.options, "routes": {name: name for name in self.models}}
        return files

    @classmethod
    def from_artifact(cls, directory: Path, meta: ArtifactMeta, *, precision: str | None = None,
                      device: str | None = None, _router_chain: tuple = ()) -> "RouterModel":
        """Loads every sub-model, passing ``precision`` and ``device`` on to each."""
        chain = _router_chain
        here = Path(directory).resolve()
        routes = check_routes(meta.options.get("routes"), meta.options.get("fallback", "en"), directory)
        models, sources = {}, {}
        for name, ref in routes.items():
            path = sources[name] = resolve_ref(ref, here)
            if path.resolve() in (*chain, here):
                raise ArtifactError(f"router {directory}: route {name!r} leads back to a router that contains it")
            try:
                models[name] = load_submodel(path, (*chain, here), precision=precision, device=device)
            except ArtifactError as exc:
                raise ArtifactError(f"router {directory}: route {name!r}: {exc}") from None
        return cls(meta, models, sources)

    def to(self, device: str) -> "RouterModel":
        for model in self.models.values():
            model.to(device)
        return self

    def _model_id(self) -> str:
        # a shared cache must tell routers apart by what their sub-models are, not only by routes
        parts = [self.meta.model_dump_json(), *(m._model_id() for m in self.models.values())]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def __repr__(self) -> str:
        return f"RouterModel({describe(self.models)})"


# --- composing a router ----------------------------------------------------------------------------
def build_router(out_dir: str | Path, routes: dict[str, str | Path], *, copy: bool = False) -> Path:
    """Write a router artifact to ``out_dir`` sending each language to ``routes[language]``.

    ``routes`` maps ``zh``/``ja``/``ko``/``en`` to artifact directories (or ``"default"``, the
    shipped English model); ``en`` is required, since it takes every text no other route does. By
    default the router refers to the sub-models where they are, by paths relative to ``out_dir``
    (move them together); ``copy=True`` copies them into ``out_dir`` instead.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stored, files = {}, []
    for name, ref in check_routes(dict(routes), "en", out).items():
        if ref == DEFAULT_ROUTE and not copy:
            stored[name] = ref
            continue
        source = resolve_ref(str(ref), Path.cwd())
        sub = read_meta(source)
        if copy:
            shutil.copytree(source, out / name, dirs_exist_ok=True)
            stored[name] = name
            files += [f"{name}/{f}" for f in sub.files]
        else:
            stored[name] = os.path.relpath(source.resolve(), out.resolve())
    meta = ArtifactMeta(method="router", files=files, options={"routes": stored, "fallback": "en"})
    write_meta(out, meta)
    model = RouterModel.from_artifact(out, read_meta(out))  # fails now, not at first use, if a route is broken
    meta.base_model = describe(model.models)
    write_meta(out, meta)
    return out


def parse_routes(spec: str) -> dict[str, str]:
    """``"zh=models/chinese,en=default"`` -> ``{"zh": "models/chinese", "en": "default"}``."""
    pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
    if not pairs or any(len(p) != 2 or not p[1].strip() for p in pairs):
        raise SentituneError(f"router: --model must list routes as zh=PATH,en=PATH (got {spec!r})")
    return check_routes({k.strip(): v.strip() for k, v in pairs}, "en", "--model")


def check_routes(routes: Any, fallback: str, where: Any) -> dict[str, str]:
    if not isinstance(routes, dict) or not routes:
        raise ArtifactError(f"router {where}: options.routes must map languages to model paths")
    unknown = [name for name in routes if name not in ROUTABLE]
    if unknown:
        raise ArtifactError(f"router {where}: unknown route {unknown[0]!r}; routes are named {', '.join(ROUTABLE)}")
    if fallback not in routes:
        raise ArtifactError(f"router {where}: needs an {fallback!r} route for the texts no other route takes")
    return {name: str(ref) for name, ref in routes.items()}


def route_summary(directory: str | Path) -> list[str]:
    """One line per route of the router at ``directory`` ("zh -> .../models/chinese (tfidf, char ...)"),
    from the metadata alone: nothing is loaded."""
    fallback = read_meta(directory).options.get("fallback", "en")
    lines = []
    for name, path in route_dirs(directory).items():
        sub = read_meta(path)
        extra = "; and every text of a language without a route" if name == fallback else ""
        lines.append(f"{name} -> {path} ({sub.method}: {sub.base_model or 'own'}{extra})")
    return lines


def route_dirs(directory: str | Path) -> dict[str, Path]:
    """Route -> the directory of its sub-model, for the router at ``directory`` (its metadata only).

    What names a router's weights is its own sentitune.json *and* these directories' (a sub-model
    retrained in place changes the router's scores, not its sentitune.json)."""
    meta = read_meta(directory)
    routes = check_routes(meta.options.get("routes"), meta.options.get("fallback", "en"), directory)
    return {name: resolve_ref(ref, Path(directory).resolve()).resolve() for name, ref in routes.items()}


def describe(models: dict[str, SentimentModel]) -> str:
    return ", ".join(f"{name}={m.meta.method}:{m.meta.base_model or 'own'}" for name, m in models.items())


def resolve_ref(ref: str, base: Path) -> Path:
    """A sub-model reference (a router's route, an ensemble's member) as a path: relative to ``base``."""
    if ref == DEFAULT_ROUTE:
        return ENGLISH_MODEL_DIR
    path = Path(ref).expanduser()
    return path if path.is_absolute() else base / path


def load_submodel(path: Path, chain: tuple, **kwargs: Any) -> SentimentModel:
    """The artifact at ``path``; ``chain``: the routers it is inside of, so a loop is caught."""
    from sentitune.methods import get_method

    meta = read_meta(path)
    if meta.method == RouterModel.method:  # a router inside a router: carry the chain to catch loops
        return RouterModel.from_artifact(path, meta, _router_chain=chain, **kwargs)
    return get_method(meta.method).from_artifact(path, meta, **kwargs)
